"""The ``.metrics()`` facade: what ``create_*`` accepts, refuses and builds.

Dynamo checks, in this order: duplicate user label keys, the name (sanitised
and prefixed), reserved auto-label keys, the node's auto labels, then the
metric library's own validation; a refused ``create_*`` registers nothing.
"""

import logging

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.dynamo.facade import Metrics
from dyn_metrics.errors import (
    AlreadyRegisteredError,
    DescriptorConflictError,
    InvalidBucketsError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
)
from dyn_metrics.registry import Registry
from tests.goldens import AUTO_KEYS, mask_uptime, runtime

# -- create_* validation, in Dynamo's order ------------------------------------------------


def _node(drt, where):
    if where == "runtime":
        return drt
    ns = drt.namespace("@@@" if where == "bad_namespace" else "ns")
    if where in ("namespace", "bad_namespace"):
        return ns
    comp = ns.component("comp")
    return comp if where == "component" else comp.endpoint("ep")


def _existing_counter(m):
    m.create_counter("m", "Help")


CREATE_ERROR_ROWS = [
    # (id, node, setup, call, exception, message prefix, probe that the name is still free)
    (
        "duplicate_label_key",
        "endpoint",
        None,
        lambda m: m.create_counter("m", "h", [("a", "1"), ("a", "2")]),
        InvalidLabelsError,
        "Duplicate label key 'a' found in labels",
        True,
    ),
    (
        "duplicate_label_key_vec_const",
        "endpoint",
        None,
        lambda m: m.create_countervec("m", "h", ["v"], [("a", "1"), ("a", "1")]),
        InvalidLabelsError,
        "Duplicate label key 'a' found in labels",
        True,
    ),
    *[
        (
            f"reserved_const_{k}",
            "endpoint",
            None,
            lambda m, k=k: m.create_counter("m", "h", [(k, "x")]),
            InvalidLabelsError,
            f"Label '{k}' is automatically added by auto-label injection "
            "and cannot be manually set",
            True,
        )
        for k in AUTO_KEYS
    ],
    *[
        (
            f"reserved_const_runtime_{k}",
            "runtime",
            None,
            lambda m, k=k: m.create_gauge("m", "h", {k: "x"}),
            InvalidLabelsError,
            f"Label '{k}' is automatically added",
            True,
        )
        for k in AUTO_KEYS
    ],
    *[
        (
            f"reserved_variable_{k}",
            "component",
            None,
            lambda m, k=k: m.create_countervec("m", "h", ["ok", k]),
            InvalidLabelsError,
            f"Variable label name '{k}' conflicts with auto-injected const label "
            "and cannot be used",
            True,
        )
        for k in AUTO_KEYS
    ],
    (
        "bad_namespace",
        "bad_namespace",
        None,
        lambda m: m.create_counter("m", "h"),
        InvalidNameError,
        "Input '@@@' contains only invalid characters and cannot be sanitized into a valid "
        "Prometheus label",
        True,
    ),
    (
        "name_empty",
        "endpoint",
        None,
        lambda m: m.create_counter("", "h"),
        InvalidNameError,
        "metric name should be valid or sanitizable",
        True,
    ),
    (
        "name_unsanitizable",
        "endpoint",
        None,
        lambda m: m.create_gauge("@@@", "h"),
        InvalidNameError,
        "metric name should be valid or sanitizable",
        True,
    ),
    (
        "name_underscores",
        "namespace",
        None,
        lambda m: m.create_intcounter("___", "h"),
        InvalidNameError,
        "metric name should be valid or sanitizable",
        True,
    ),
    (
        "name_not_str",
        "endpoint",
        None,
        lambda m: m.create_counter(None, "h"),
        InvalidNameError,
        "metric name should be valid or sanitizable",
        True,
    ),
    (
        "empty_help",
        "endpoint",
        None,
        lambda m: m.create_counter("m", ""),
        InvalidValueError,
        "empty help string",
        True,
    ),
    (
        "empty_help_vec",
        "namespace",
        None,
        lambda m: m.create_intgaugevec("m", "", ["a"]),
        InvalidValueError,
        "empty help string",
        True,
    ),
    (
        "bad_const_label_name",
        "endpoint",
        None,
        lambda m: m.create_counter("m", "h", [("1x", "v")]),
        InvalidNameError,
        "'1x' is not a valid label name",
        True,
    ),
    (
        "bad_variable_label_name",
        "endpoint",
        None,
        lambda m: m.create_gaugevec("m", "h", ["ok", "1x"]),
        InvalidNameError,
        "'1x' is not a valid label name",
        True,
    ),
    (
        "duplicate_variable_label_name",
        "endpoint",
        None,
        lambda m: m.create_countervec("m", "h", ["a", "a"]),
        InvalidLabelsError,
        "duplicate variable label name a",
        True,
    ),
    (
        "histogram_const_le",
        "component",
        None,
        lambda m: m.create_histogram("m", "h", [("le", "1")]),
        InvalidLabelsError,
        "`le` is not allowed as label name in histograms",
        True,
    ),
    (
        "histogramvec_variable_le",
        "component",
        None,
        lambda m: m.create_histogramvec("m", "h", ["le"]),
        InvalidLabelsError,
        "`le` is not allowed as label name in histograms",
        True,
    ),
    (
        "buckets_not_increasing",
        "component",
        None,
        lambda m: m.create_histogram("m", "h", buckets=[1, 2, 1]),
        InvalidBucketsError,
        "histogram buckets must be in increasing order: 2 >= 1",
        True,
    ),
    (
        "histogramvec_buckets_not_increasing",
        "component",
        None,
        lambda m: m.create_histogramvec("m", "h", ["a"], buckets=[0.5, 0.25]),
        InvalidBucketsError,
        "histogram buckets must be in increasing order: 0.5 >= 0.25",
        True,
    ),
    *[
        (
            f"vec_without_label_names_{name}",
            "endpoint",
            None,
            lambda m, name=name: getattr(m, f"create_{name.lower()}")("m", "h", []),
            InvalidLabelsError,
            f"{name} requires const_labels parameter",
            True,
        )
        for name in ("CounterVec", "GaugeVec", "IntCounterVec", "IntGaugeVec", "HistogramVec")
    ],
    (
        "same_metric_twice",
        "endpoint",
        _existing_counter,
        lambda m: m.create_counter("m", "Help"),
        AlreadyRegisteredError,
        "Failed to register metric: Duplicate metrics collector registration attempted",
        False,
    ),
    (
        "same_name_different_help",
        "endpoint",
        _existing_counter,
        lambda m: m.create_counter("m", "Other help"),
        DescriptorConflictError,
        "Failed to register metric: a previously registered descriptor with the same "
        "fully-qualified name",
        False,
    ),
    (
        "same_name_different_type",
        "endpoint",
        _existing_counter,
        lambda m: m.create_gauge("m", "Help"),
        DescriptorConflictError,
        "Failed to register metric: a previously registered descriptor with the same "
        "fully-qualified name",
        False,
    ),
    (
        "same_name_different_label_names",
        "endpoint",
        _existing_counter,
        lambda m: m.create_counter("m", "Help", [("extra", "x")]),
        DescriptorConflictError,
        "Failed to register metric: a previously registered descriptor with the same "
        "fully-qualified name",
        False,
    ),
    # Dynamo's order of the checks: duplicates, name, reserved keys, auto labels, library.
    (
        "order_duplicate_before_name",
        "endpoint",
        None,
        lambda m: m.create_counter("", "h", [("worker_id", "1"), ("worker_id", "2")]),
        InvalidLabelsError,
        "Duplicate label key 'worker_id'",
        True,
    ),
    (
        "order_name_before_reserved",
        "endpoint",
        None,
        lambda m: m.create_counter("@@@", "h", [("worker_id", "1")]),
        InvalidNameError,
        "metric name should be valid or sanitizable",
        True,
    ),
    (
        "order_reserved_before_help",
        "endpoint",
        None,
        lambda m: m.create_counter("m", "", [("dynamo_endpoint", "1")]),
        InvalidLabelsError,
        "Label 'dynamo_endpoint' is automatically added",
        True,
    ),
    (
        "order_reserved_before_bad_namespace",
        "bad_namespace",
        None,
        lambda m: m.create_counter("m", "h", [("worker_id", "1")]),
        InvalidLabelsError,
        "Label 'worker_id' is automatically added",
        True,
    ),
    (
        "order_bad_namespace_before_help",
        "bad_namespace",
        None,
        lambda m: m.create_counter("m", ""),
        InvalidNameError,
        "Input '@@@' contains only invalid characters",
        True,
    ),
]


@pytest.mark.parametrize(
    "where, setup, call, exc, prefix, probe",
    [r[1:] for r in CREATE_ERROR_ROWS],
    ids=[r[0] for r in CREATE_ERROR_ROWS],
)
def test_create_rejects_and_leaves_registry_unchanged(where, setup, call, exc, prefix, probe):
    drt = runtime()
    node = _node(drt, where)
    m = node.metrics()
    # Registered directly, so that even the "@@@" namespace has a non-empty scrape.
    m.registry.register(dm.Gauge("baseline", "Baseline")).set(1)
    if setup is not None:
        setup(m)
    before = mask_uptime(m.prometheus_expfmt())
    with pytest.raises(exc) as info:
        call(m)
    assert type(info.value) is exc
    assert str(info.value).startswith(prefix), str(info.value)
    assert mask_uptime(m.prometheus_expfmt()) == before
    if probe:
        # Any collector named like the failed metric would clash with this one.
        m.registry.register(dm.Gauge("dynamo_component_m", "Probe", {"probe": "1"}))


def _metrics():
    return dm.DistributedRuntime(config=SystemConfig()).namespace("ns").metrics()


@pytest.mark.parametrize(
    "args, error, prefix",
    [
        # Dynamo's order: the name is checked before a missing label-name list,
        (("@#$%", "h", []), dm.InvalidNameError, "metric name should be valid or sanitizable"),
        # and duplicate user label keys before that too.
        (
            ("ok", "h", [], [("a", "1"), ("a", "2")]),
            dm.InvalidLabelsError,
            "Duplicate label key 'a' found in labels",
        ),
        (("ok", "h", []), dm.InvalidLabelsError, "CounterVec requires const_labels parameter"),
    ],
)
def test_create_vec_checks_in_dynamo_order(args, error, prefix):
    with pytest.raises(error) as info:
        _metrics().create_countervec(*args)
    assert str(info.value).startswith(prefix)


def test_create_vec_takes_label_names_from_any_iterable():
    vec = _metrics().create_countervec("r", "h", (n for n in ["method", "status"]))
    assert vec.desc.label_names == ("method", "status")
    vec.with_label_values("GET", "200").inc()


# -- what create_* builds ------------------------------------------------------------------


FACADE_BUCKET_ROWS = [
    # (buckets given to create_histogram / create_histogramvec, bounds kept)
    (None, dm.DEFAULT_BUCKETS),
    ([], dm.DEFAULT_BUCKETS),
    ([0.5, 1, float("inf")], (0.5, 1.0)),
    (dm.linear_buckets(1, 1, 3), (1.0, 2.0, 3.0)),
]


@pytest.mark.parametrize("given, kept", FACADE_BUCKET_ROWS)
def test_create_histogram_buckets(given, kept):
    m = runtime().namespace("ns").metrics()
    assert m.create_histogram("h", "h", buckets=given).desc.buckets == kept
    assert m.create_histogramvec("hv", "h", ["a"], buckets=given).desc.buckets == kept


def test_create_already_registered_keeps_existing_and_new():
    m = runtime().namespace("ns").metrics()
    first = m.create_counter("m", "h")
    with pytest.raises(AlreadyRegisteredError) as info:
        m.create_counter("m", "h")
    assert info.value.existing is first
    assert info.value.new is not first and info.value.new.desc.name == "dynamo_component_m"


def test_same_name_on_sibling_endpoints_is_allowed():
    comp = runtime().namespace("ns").component("c")
    a = comp.endpoint("a").metrics().create_counter("m", "h")
    b = comp.endpoint("b").metrics().create_counter("m", "h")
    same = comp.endpoint("a").metrics().create_counter("m", "h")  # a new Endpoint object
    assert a is not b and a is not same


def test_same_name_different_const_values_on_one_node_is_allowed():
    m = runtime().namespace("ns").component("c").metrics()
    m.create_counter("m", "h", [("shard", "b")]).inc()
    m.create_counter("m", "h", {"shard": "a"}).inc_by(2)
    assert m.prometheus_expfmt().splitlines()[2:] == [
        'dynamo_component_m{dynamo_component="c",dynamo_namespace="ns",shard="a"} 2',
        'dynamo_component_m{dynamo_component="c",dynamo_namespace="ns",shard="b"} 1',
    ]


NAME_ROWS = [
    # (given, full metric name)
    ("requests_total", "dynamo_component_requests_total"),
    ("123metric", "dynamo_component__123metric"),
    ("test.name", "dynamo_component_test_name"),
    ("my-metric name", "dynamo_component_my_metric_name"),
    ("vllm:tokens", "dynamo_component_vllm:tokens"),
    ("_x", "dynamo_component__x"),
]


@pytest.mark.parametrize("given, full", NAME_ROWS)
def test_create_prefixes_and_sanitises_name(given, full):
    for node in (runtime(), runtime().namespace("ns").component("c").endpoint("e")):
        assert node.metrics().create_counter(given, "h").desc.name == full


def test_facade_over_a_plain_registry_adds_the_given_auto_labels():
    registry = Registry()
    m = Metrics(registry, lambda: [("dynamo_namespace", "ns")])
    assert m.registry is registry
    m.create_counter("c_total", "h", {"k": "v"}).inc()
    assert registry.prometheus_expfmt().splitlines()[2] == (
        'dynamo_component_c_total{dynamo_namespace="ns",k="v"} 1'
    )


# -- scrape callbacks through the facade ---------------------------------------------------


def test_update_callbacks_in_registration_order_through_facade():
    m = runtime().namespace("ns").metrics()
    counter = m.create_intcounter("n_total", "h")
    calls = []
    for step in (1, 10, 100):
        m.register_prometheus_update_callback(
            lambda step=step: (calls.append(step), counter.inc_by(step))
        )
    m.prometheus_expfmt()
    assert counter.get() == 111 and calls == [1, 10, 100]
    m.prometheus_expfmt()
    assert counter.get() == 222


def test_raising_callbacks_through_facade_are_logged(caplog):
    m = runtime().namespace("ns").component("c").metrics()
    m.create_gauge("g", "h").set(1)

    def fail():
        raise RuntimeError("boom")

    m.register_prometheus_update_callback(fail)
    m.register_prometheus_expfmt_callback(fail)
    m.register_prometheus_expfmt_callback(lambda: 42)
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        text = m.prometheus_expfmt()
    assert text == (
        "# HELP dynamo_component_g h\n# TYPE dynamo_component_g gauge\n"
        'dynamo_component_g{dynamo_component="c",dynamo_namespace="ns"} 1\n'
    )
    assert len([r for r in caplog.records if r.name.startswith("dyn_metrics")]) == 3


MAX_CHILDREN_ROWS = [
    # (config max_children, label sets created, series served)
    (None, 5, 5),
    (2, 5, 3),  # two children and the shared __overflow__ one
    (0, 3, 1),
]


@pytest.mark.parametrize("limit, created, served", MAX_CHILDREN_ROWS)
def test_hierarchy_vecs_take_the_runtimes_max_children(limit, created, served):
    drt = dm.DistributedRuntime(config=SystemConfig(max_children=limit))
    m = drt.namespace("ns").component("c").endpoint("e").metrics()
    vecs = [
        m.create_countervec("c_total", "C", ["k"]),
        m.create_intcountervec("ic_total", "IC", ["k"]),
        m.create_gaugevec("g", "G", ["k"]),
        m.create_intgaugevec("ig", "IG", ["k"]),
        m.create_histogramvec("h", "H", ["k"], buckets=[1]),
    ]
    for vec in vecs[:4]:
        for i in range(created):
            vec.with_label_values(str(i)).inc()
    for i in range(created):
        vecs[4].with_label_values(str(i)).observe(0.5)
    text = drt.metrics().prometheus_expfmt()
    for name in ("c_total", "ic_total", "g", "ig", "h_count"):
        lines = [x for x in text.splitlines() if x.startswith(f"dynamo_component_{name}{{")]
        assert len(lines) == served, (name, lines)
    assert ('k="__overflow__"' in text) is (limit is not None)


# -- the second release's create_*: unit=, info, stateset -----------------------------------

UNIT_ROWS = [
    # (create call, unit) -> OpenMetrics # UNIT line of the prefixed family
    (lambda m, u: m.create_counter("io_seconds_total", "h", unit=u), "seconds"),
    (lambda m, u: m.create_intcounter("rx_bytes_total", "h", unit=u), "bytes"),
    (lambda m, u: m.create_gauge("temp_celsius", "h", unit=u), "celsius"),
    (lambda m, u: m.create_intgauge("mem_bytes", "h", unit=u), "bytes"),
    (lambda m, u: m.create_histogram("lat_seconds", "h", unit=u), "seconds"),
    (lambda m, u: m.create_countervec("tx_bytes_total", "h", ["k"], unit=u), "bytes"),
    (lambda m, u: m.create_intcountervec("ev_items_total", "h", ["k"], unit=u), "items"),
    (lambda m, u: m.create_gaugevec("q_items", "h", ["k"], unit=u), "items"),
    (lambda m, u: m.create_intgaugevec("slots_items", "h", ["k"], unit=u), "items"),
    (lambda m, u: m.create_histogramvec("size_bytes", "h", ["k"], unit=u), "bytes"),
]


@pytest.mark.parametrize("create, unit", UNIT_ROWS)
def test_create_takes_a_unit_and_refuses_one_the_name_does_not_end_in(create, unit):
    m = _metrics()
    metric = create(m, unit)
    assert metric.desc.unit == unit
    assert metric.desc.name.startswith("dynamo_component_")
    m2 = _metrics()
    with pytest.raises(InvalidNameError, match="must end in '_parsecs'"):
        create(m2, "parsecs")
    assert m2.registry.collect() == [] and m2.registry._collectors == []


def test_create_info_and_stateset_prefix_and_label_them():
    m = dm.DistributedRuntime(config=SystemConfig()).namespace("ns").component("c").metrics()
    m.create_info("build", "Build", [("region", "eu")]).info({"version": "1.2"})
    m.create_stateset("worker_state", "State", ["starting", "ready"]).state("ready")
    m.create_infovec("model", "Model", ["name"]).with_label_values("llama").info({"rev": "3"})
    m.create_statesetvec("phase", "Phase", ["gpu"], ["idle", "busy"]).with_label_values("0")
    text = m.prometheus_expfmt()
    auto = 'dynamo_component="c",dynamo_namespace="ns"'
    # Every label sorted by name, the state label (named after the metric) included.
    assert f'dynamo_component_build_info{{{auto},region="eu",version="1.2"}} 1\n' in text
    assert (
        'dynamo_component_worker_state{dynamo_component="c",'
        'dynamo_component_worker_state="ready",dynamo_namespace="ns"} 1\n'
    ) in text
    assert f'dynamo_component_model_info{{{auto},name="llama",rev="3"}} 1\n' in text
    assert (
        'dynamo_component_phase{dynamo_component="c",dynamo_component_phase="idle",'
        'dynamo_namespace="ns",gpu="0"} 1\n'
    ) in text
    assert dm.check(text, "text").errors == []
    om = m.registry.openmetrics_expfmt()
    assert "# TYPE dynamo_component_build info\n" in om
    assert "# TYPE dynamo_component_worker_state stateset\n" in om
    assert dm.check(om, "openmetrics").errors == []


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda m: m.create_info("build", "h", unit="x"), InvalidNameError),
        (lambda m: m.create_stateset("s", "h", []), InvalidValueError),
        (lambda m: m.create_stateset("s", "h", ["a", "a"]), InvalidValueError),
        (lambda m: m.create_info("build", "h", [("dynamo_namespace", "x")]), InvalidLabelsError),
        (lambda m: m.create_infovec("i", "h", []), InvalidLabelsError),
        (lambda m: m.create_statesetvec("s", "h", [], ["a"]), InvalidLabelsError),
    ],
)
def test_create_info_and_stateset_refuse_and_register_nothing(call, exc):
    m = _metrics()
    with pytest.raises(exc):
        call(m)
    assert m.registry._collectors == []


def test_create_summary_and_summaryvec_prefix_label_and_take_their_options():
    m = _metrics()
    s = m.create_summary(
        "rpc_seconds", "RPC", [("api", "v1")], {0.5: 0.05}, 60.0, 3, unit="seconds"
    )
    for i in range(1, 101):
        s.observe(i / 100)
    v = m.create_summaryvec("size_bytes", "Sizes", ["k"], objectives={0.9: 0.01}, unit="bytes")
    v.labels("a").observe(10)
    text = m.prometheus_expfmt()
    assert 'dynamo_component_rpc_seconds_count{api="v1",dynamo_namespace="ns"} 100\n' in text
    assert 'dynamo_component_size_bytes{dynamo_namespace="ns",k="a",quantile="0.9"} 10\n' in text
    q = next(x for x in text.splitlines() if 'quantile="0.5"' in x)
    assert abs(float(q.split()[-1]) - 0.5) <= 0.05 + 0.01
    om = m.registry.openmetrics_expfmt()
    assert "# UNIT dynamo_component_rpc_seconds seconds\n" in om
    assert dm.check(text, "text").errors == [] and dm.check(om, "openmetrics").errors == []


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda m: m.create_summary("s", "h", objectives={1.5: 0.1}), InvalidValueError),
        (lambda m: m.create_summary("s", "h", objectives={0.5: 0.0}), InvalidValueError),
        (lambda m: m.create_summary("s", "h", age_buckets=0), InvalidValueError),
        (lambda m: m.create_summary("s", "h", [("quantile", "x")]), InvalidLabelsError),
        (lambda m: m.create_summaryvec("s", "h", ["quantile"]), InvalidLabelsError),
        (lambda m: m.create_summaryvec("s", "h", []), InvalidLabelsError),
    ],
)
def test_create_summary_refuses_and_registers_nothing(call, exc):
    m = _metrics()
    with pytest.raises(exc):
        call(m)
    assert m.registry._collectors == []
