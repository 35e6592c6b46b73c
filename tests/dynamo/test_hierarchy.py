"""The runtime hierarchy: scrapes along the tree, labels, the tree's shape, callbacks.

Each node's registry is a child of its parent's, so a level's scrape holds its
own metrics and its descendants'. Byte-exact goldens of Dynamo's upstream
expected outputs live in ``tests/golden`` and are rewritten only by
``python -m tools.update_goldens``, which builds them with the scenario
functions in ``tests/goldens.py``. The ``create_*`` rules are tested in
``test_facade.py``, the runtime's own behaviour in ``test_runtime.py``.
"""

import logging
import re
import threading

import pytest

from dyn_metrics.errors import DescriptorConflictError
from tests.goldens import (
    HIERARCHY_SCENARIOS,
    UPTIME_MASK,
    mask_uptime,
    read_golden,
    runtime,
    scenario_duplicate_endpoints,
)


@pytest.mark.parametrize("name", sorted(HIERARCHY_SCENARIOS))
def test_hierarchy_golden(name):
    assert HIERARCHY_SCENARIOS[name]().encode("utf-8") == read_golden(name).encode("utf-8")


def test_endpoint_counter_golden_is_dynamos_expected_output():
    assert read_golden("endpoint_counter") == (
        "# HELP dynamo_component_testcounter A test counter\n"
        "# TYPE dynamo_component_testcounter counter\n"
        'dynamo_component_testcounter{dynamo_component="comp345",dynamo_endpoint="ep345",'
        'dynamo_namespace="ns345"} 123.456789\n'
    )


def test_sibling_endpoints_golden_is_dynamos_expected_output():
    assert read_golden("sibling_endpoints") == (
        "# HELP dynamo_component_requests_total Total requests\n"
        "# TYPE dynamo_component_requests_total counter\n"
        'dynamo_component_requests_total{dynamo_component="comp_test",dynamo_endpoint="ep1",'
        'dynamo_namespace="ns_test"} 100\n'
        'dynamo_component_requests_total{dynamo_component="comp_test",dynamo_endpoint="ep2",'
        'dynamo_namespace="ns_test"} 200\n'
    )


def test_runtime_golden_families_in_dynamos_order():
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


# -- labels: the node's auto labels, then the user's ---------------------------------------


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


# -- hierarchy shape -----------------------------------------------------------------------


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


# -- callbacks reach every ancestor --------------------------------------------------------


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
