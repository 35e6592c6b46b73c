"""The runtime hierarchy and its ``.metrics()`` facade (sections 1 and 4).

Byte-exact goldens of section 4.3 live in ``tests/golden`` and are rewritten
only by ``python -m tools.update_goldens``, which builds them with the scenario
functions in ``tests/goldens.py``.
"""

import logging
import re
import threading
import time

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.errors import (
    AlreadyRegisteredError,
    DescriptorConflictError,
    InvalidBucketsError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
)
from tests.goldens import (
    AUTO_KEYS,
    HIERARCHY_SCENARIOS,
    UPTIME_MASK,
    build_345,
    mask_uptime,
    read_golden,
    runtime,
    scenario_duplicate_endpoints,
    uptime_value,
)


@pytest.mark.parametrize("name", sorted(HIERARCHY_SCENARIOS))
def test_hierarchy_golden(name):
    assert HIERARCHY_SCENARIOS[name]().encode("utf-8") == read_golden(name).encode("utf-8")


def test_endpoint_counter_golden_is_section_4_3_verbatim():
    assert read_golden("endpoint_counter") == (
        "# HELP dynamo_component_testcounter A test counter\n"
        "# TYPE dynamo_component_testcounter counter\n"
        'dynamo_component_testcounter{dynamo_component="comp345",dynamo_endpoint="ep345",'
        'dynamo_namespace="ns345"} 123.456789\n'
    )


def test_sibling_endpoints_golden_is_section_4_3_verbatim():
    assert read_golden("sibling_endpoints") == (
        "# HELP dynamo_component_requests_total Total requests\n"
        "# TYPE dynamo_component_requests_total counter\n"
        'dynamo_component_requests_total{dynamo_component="comp_test",dynamo_endpoint="ep1",'
        'dynamo_namespace="ns_test"} 100\n'
        'dynamo_component_requests_total{dynamo_component="comp_test",dynamo_endpoint="ep2",'
        'dynamo_namespace="ns_test"} 200\n'
    )


def test_runtime_golden_families_in_section_4_3_order():
    names = re.findall(r"^# TYPE (\S+) ", read_golden("scrape_runtime"), re.M)
    assert names == [
        "dynamo_component_" + n
        for n in (
            "testcounter",
            "testcountervec",
            "testgauge",
            "testhistogram",
            "testintcounter",
            "testintgauge",
            "testintgaugevec",
            "uptime_seconds",
        )
    ]


def test_levels_see_themselves_and_descendants_only():
    endpoint, component, namespace, run = (
        read_golden(f"scrape_{n}") for n in ("endpoint", "component", "namespace", "runtime")
    )

    def families(text):
        return set(re.findall(r"^# TYPE (\S+) ", text, re.M))

    assert families(endpoint) < families(component) < families(namespace) < families(run)
    assert "dynamo_component_testgauge" not in families(endpoint)
    assert "dynamo_component_testintcounter" not in families(component)
    assert "dynamo_component_uptime_seconds" not in families(namespace)


def test_runtime_scrape_uptime_is_positive_and_grows():
    drt = build_345()[0]
    time.sleep(0.011)
    first = drt.metrics().prometheus_expfmt()
    assert uptime_value(first) > 0.01
    time.sleep(0.002)
    second = drt.metrics().prometheus_expfmt()
    assert uptime_value(second) > uptime_value(first)
    assert mask_uptime(first) == mask_uptime(second) == read_golden("scrape_runtime")


def test_runtime_uptime_has_worker_id():
    text = runtime(255).metrics().prometheus_expfmt()
    assert re.search(r'^dynamo_component_uptime_seconds\{worker_id="ff"\} \S+$', text, re.M)
    assert text.startswith(
        "# HELP dynamo_component_uptime_seconds Total uptime of the DistributedRuntime in seconds\n"
    )


def test_sibling_endpoints_merge_in_creation_order_not_label_order():
    comp = runtime().namespace("ns").component("c")
    for name, value in (("ep2", 2), ("ep1", 1)):
        comp.endpoint(name).metrics().create_counter("requests_total", "Total requests").inc_by(
            value
        )
    lines = comp.metrics().prometheus_expfmt().splitlines()
    assert lines[0] == "# HELP dynamo_component_requests_total Total requests"
    assert [line[-1] for line in lines[2:]] == ["2", "1"]


def test_duplicate_endpoints_first_wins_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        text = scenario_duplicate_endpoints()
    assert text.splitlines()[2:] == [
        'dynamo_component_dup_metric{dynamo_component="comp_dup",dynamo_endpoint="ep_same",'
        'dynamo_namespace="ns_dup"} 50'
    ]
    warnings = [
        r
        for r in caplog.records
        if r.name.startswith("dyn_metrics") and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert (
        warnings[0]
        .getMessage()
        .startswith("Duplicate Prometheus series while merging; dropping later sample")
    )


@pytest.mark.parametrize(
    "second",
    [
        lambda m: m.create_counter("requests_total", "Other help"),
        lambda m: m.create_gauge("requests_total", "Total requests"),
    ],
    ids=["help", "type"],
)
def test_help_or_type_conflict_across_endpoints_fails_at_scrape(second):
    drt = runtime()
    comp = drt.namespace("ns").component("c")
    comp.endpoint("ep1").metrics().create_counter("requests_total", "Total requests")
    ep2 = comp.endpoint("ep2")
    second(ep2.metrics())  # registration itself succeeds
    for node in (comp, drt.namespace("ns"), drt):
        with pytest.raises(DescriptorConflictError) as info:
            node.metrics().prometheus_expfmt()
        assert str(info.value).startswith(
            "Metric family 'dynamo_component_requests_total' has inconsistent help/type "
            "across sources"
        )
    assert ep2.metrics().prometheus_expfmt()  # a single source is fine


# -- create_* validation (sections 1.4, 1.6, 1.7) -----------------------------------------


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
    # Order of the checks (section 1.4): duplicates, name, reserved keys, auto labels, library.
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


# -- names and auto labels (sections 1.4, 1.5) --------------------------------------------

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


def _labels_of(metric):
    return dict(metric.collect()[0].samples[0].labels)


AUTO_LABEL_ROWS = [
    # (id, worker_id, node, labels added automatically)
    ("runtime", None, lambda d: d, {}),
    ("runtime_worker", 255, lambda d: d, {"worker_id": "ff"}),
    ("namespace", None, lambda d: d.namespace("ns"), {"dynamo_namespace": "ns"}),
    (
        "namespace_worker",
        255,
        lambda d: d.namespace("ns"),
        {"dynamo_namespace": "ns", "worker_id": "ff"},
    ),
    (
        "component",
        None,
        lambda d: d.namespace("ns").component("c"),
        {"dynamo_namespace": "ns", "dynamo_component": "c"},
    ),
    (
        "component_worker",
        255,
        lambda d: d.namespace("ns").component("c"),
        {"dynamo_namespace": "ns", "dynamo_component": "c", "worker_id": "ff"},
    ),
    (
        "endpoint",
        None,
        lambda d: d.namespace("ns").component("c").endpoint("e"),
        {"dynamo_namespace": "ns", "dynamo_component": "c", "dynamo_endpoint": "e"},
    ),
    (
        "endpoint_worker",
        255,
        lambda d: d.namespace("ns").component("c").endpoint("e"),
        {
            "dynamo_namespace": "ns",
            "dynamo_component": "c",
            "dynamo_endpoint": "e",
            "worker_id": "ff",
        },
    ),
    ("worker_zero", 0, lambda d: d.namespace("ns"), {"dynamo_namespace": "ns", "worker_id": "0"}),
    ("worker_big", 2**64 - 1, lambda d: d, {"worker_id": "ffffffffffffffff"}),
    # quirk: positions in the hierarchy, not object kinds, pick the label
    (
        "nested_namespace",
        None,
        lambda d: d.namespace("ns1").namespace("ns2"),
        {"dynamo_namespace": "ns1", "dynamo_component": "ns2"},
    ),
    (
        "nested_namespaces_component",
        None,
        lambda d: d.namespace("ns1").namespace("ns2").namespace("ns3").component("test-component"),
        {"dynamo_namespace": "ns1", "dynamo_component": "ns2", "dynamo_endpoint": "ns3"},
    ),
    # names are label-sanitised, never validated
    ("namespace_at_at_123", None, lambda d: d.namespace("@@123"), {"dynamo_namespace": "_123"}),
    (
        "names_sanitised",
        None,
        lambda d: d.namespace("my-ns").component("a.b").endpoint("x:y"),
        {"dynamo_namespace": "my_ns", "dynamo_component": "a_b", "dynamo_endpoint": "x_y"},
    ),
    ("double_underscore_stripped", None, lambda d: d.namespace("__ns"), {"dynamo_namespace": "ns"}),
]


@pytest.mark.parametrize(
    "worker_id, node, expected",
    [r[1:] for r in AUTO_LABEL_ROWS],
    ids=[r[0] for r in AUTO_LABEL_ROWS],
)
def test_auto_labels_per_level(worker_id, node, expected):
    m = node(runtime(worker_id)).metrics()
    assert _labels_of(m.create_counter("probe_total", "h")) == expected
    assert _labels_of(m.create_gauge("probe_user", "h", [("service", "api")])) == {
        **expected,
        "service": "api",
    }
    vec = m.create_countervec("probe_vec", "h", ["method"], {"service": "api"})
    vec.with_label_values("GET")
    assert _labels_of(vec) == {**expected, "service": "api", "method": "GET"}


def test_auto_labels_sorted_in_the_sample_line():
    ep = runtime(255).namespace("ns").component("c").endpoint("e")
    m = ep.metrics()
    m.create_counter("probe_total", "h", {"service": "api", "a": "1"})
    assert m.prometheus_expfmt().splitlines()[2] == (
        'dynamo_component_probe_total{a="1",dynamo_component="c",dynamo_endpoint="e",'
        'dynamo_namespace="ns",service="api",worker_id="ff"} 0'
    )


def test_create_accepts_labels_as_dict_or_pairs():
    m = runtime().namespace("ns").metrics()
    a = m.create_counter("a", "h", {"k": "v"})
    b = m.create_counter("b", "h", [("k", "v")])
    assert _labels_of(a) == _labels_of(b) == {"dynamo_namespace": "ns", "k": "v"}


@pytest.mark.parametrize("bad", [-1, 1.5, "ff", True])
def test_runtime_rejects_bad_worker_id(bad):
    with pytest.raises(InvalidValueError) as info:
        runtime(bad)
    assert str(info.value).startswith("worker_id must be a non-negative int")


# -- hierarchy shape (section 1.1) ------------------------------------------------------


def test_basename_and_parent_hierarchies_upstream():
    drt = runtime()
    ns = drt.namespace("ns901")
    comp = ns.component("comp901")
    ep = comp.endpoint("ep901")
    assert [n.basename() for n in (drt, ns, comp, ep)] == ["", "ns901", "comp901", "ep901"]
    assert drt.parent_hierarchies() == []
    assert [p.basename() for p in ns.parent_hierarchies()] == [""]
    assert [p.basename() for p in comp.parent_hierarchies()] == ["", "ns901"]
    assert [p.basename() for p in ep.parent_hierarchies()] == ["", "ns901", "comp901"]
    assert ep.parent_hierarchies() == [drt, ns, comp]


def test_nested_namespaces_parent_hierarchies_upstream():
    drt = runtime()
    ns1 = drt.namespace("ns1")
    ns2 = ns1.namespace("ns2")
    ns3 = ns2.namespace("ns3")
    comp = ns3.component("test-component")
    assert [p.basename() for p in ns2.parent_hierarchies()] == ["", "ns1"]
    assert [p.basename() for p in ns3.parent_hierarchies()] == ["", "ns1", "ns2"]
    assert [p.basename() for p in comp.parent_hierarchies()] == ["", "ns1", "ns2", "ns3"]
    assert ns3.basename() == "ns3"
    assert ns3.display_name() == "ns1.ns2.ns3"


def test_same_namespace_and_component_name_return_same_object():
    drt = runtime()
    ns = drt.namespace("a")
    assert drt.namespace("a") is ns
    assert ns.component("c") is ns.component("c")
    assert ns.namespace("a") is not ns  # a nested namespace is a different node
    assert ns.namespace("a") is ns.namespace("a")
    assert drt.namespace("b") is not ns


def test_endpoint_returns_a_new_object_each_call():
    comp = runtime().namespace("a").component("c")
    first, second = comp.endpoint("e"), comp.endpoint("e")
    assert first is not second
    assert first.metrics().registry is not second.metrics().registry


def test_connection_id_is_the_worker_id_at_every_level():
    drt = runtime(29)
    ep = drt.namespace("a").component("c").endpoint("e")
    assert [n.connection_id() for n in [drt, *ep.parent_hierarchies()[1:], ep]] == [29] * 4
    assert runtime().namespace("a").connection_id() is None


def test_metrics_facade_is_per_node():
    drt = runtime()
    ns = drt.namespace("a")
    assert ns.metrics() is ns.metrics()
    assert ns.metrics().registry is not drt.metrics().registry


def test_runtime_without_port_starts_no_server(monkeypatch):
    monkeypatch.delenv("DYN_SYSTEM_PORT", raising=False)
    drt = dm.DistributedRuntime()
    try:
        assert drt.system_server is None
    finally:
        drt.shutdown()


def test_concurrent_namespace_creation_returns_one_object():
    drt = runtime()
    barrier = threading.Barrier(8)
    found = [None] * 8

    def work(i):
        barrier.wait(timeout=10)
        found[i] = drt.namespace("shared").component("c")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert all(f is found[0] for f in found)
    found[0].metrics().create_counter("x", "h")
    # The namespace's registry was linked to the runtime once.
    assert drt.metrics().prometheus_expfmt().count("dynamo_component_x{") == 1


# -- callbacks through the hierarchy (sections 1.9, 4.1) ---------------------------------

VLLM_TEXT = (
    "# HELP vllm_num_requests_running Running requests\n"
    "# TYPE vllm_num_requests_running gauge\n"
    'vllm_num_requests_running{model="llama"} 4\n'
)


def test_endpoint_expfmt_callback_appears_once_at_every_ancestor():
    drt = runtime()
    comp = drt.namespace("ns").component("c")
    ep = comp.endpoint("e")
    sibling = comp.endpoint("other")
    ep.metrics().register_prometheus_expfmt_callback(lambda: VLLM_TEXT)
    for node in (drt, drt.namespace("ns"), comp, ep):
        text = node.metrics().prometheus_expfmt()
        assert text.count("# HELP vllm_num_requests_running") == 1
        assert text.endswith("\n" + VLLM_TEXT) or text == "\n" + VLLM_TEXT
    assert sibling.metrics().prometheus_expfmt() == ""


def test_runtime_scrape_appends_callback_text_after_native_metrics():
    drt = runtime()
    drt.namespace("ns").component("c").endpoint("e").metrics().register_prometheus_expfmt_callback(
        lambda: VLLM_TEXT
    )
    text = mask_uptime(drt.metrics().prometheus_expfmt())
    assert text == (
        "# HELP dynamo_component_uptime_seconds Total uptime of the DistributedRuntime in seconds\n"
        "# TYPE dynamo_component_uptime_seconds gauge\n"
        f"dynamo_component_uptime_seconds {UPTIME_MASK}\n" + VLLM_TEXT
    )


def test_endpoint_update_callback_runs_once_per_ancestor_scrape():
    drt = runtime()
    ep = drt.namespace("ns").component("c").endpoint("e")
    counter = ep.metrics().create_intcounter("updates_total", "h")
    ep.metrics().register_prometheus_update_callback(lambda: counter.inc())
    drt.metrics().prometheus_expfmt()
    assert counter.get() == 1
    text = drt.namespace("ns").metrics().prometheus_expfmt()
    assert counter.get() == 2
    assert "dynamo_component_updates_total{" in text and text.count("} 2\n") == 1


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


def _metrics():
    return dm.DistributedRuntime(config=SystemConfig()).namespace("ns").metrics()


@pytest.mark.parametrize(
    "args, error, prefix",
    [
        # Section 1.4 order: the name is checked before a missing label-name list,
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
