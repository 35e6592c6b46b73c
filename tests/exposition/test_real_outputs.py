"""The default lint set is silent on what real exporters write, unmodified.

prometheus_client's output is generated here (every metric type, with labels
and vLLM-style colon names, in text and OpenMetrics); Prometheus' own
``/metrics`` and ``/federate`` and node_exporter's ``/metrics`` come from the
real binaries (Debian's ``prometheus`` and ``prometheus-node-exporter``),
started on 127.0.0.1 ports of their own. The strict lints stay available by
code.
"""

import urllib.parse

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import dyn_metrics as dm
from tests.realtools import NodeExporter, Prometheus, get


def _prometheus_client_registry(negative_buckets=False):
    r = CollectorRegistry()
    for prefix in ("vllm:", "app_"):
        c = Counter(prefix + "prompt_tokens", "Prompt tokens.", ["model"], registry=r)
        c.labels("m").inc(3)
        Counter(prefix + "jobs_total", "Jobs.", registry=r).inc()
        Counter(prefix + "read_bytes", "Bytes read.", unit="bytes", registry=r).inc(5)
        g = Gauge(prefix + "num_requests_running", "Running.", ["model"], registry=r)
        g.labels("m").set(2)
        Gauge(prefix + "temperature_celsius", "Temperature.", registry=r).set(-3.5)
        h = Histogram(prefix + "e2e_latency_seconds", "Latency.", ["model"], registry=r)
        h.labels("m").observe(0.3)
        Histogram(prefix + "size_bytes", "Sizes.", buckets=[1, 10, 100], registry=r).observe(7)
        s = Summary(prefix + "time_seconds", "Time.", ["model"], registry=r)
        s.labels("m").observe(1)
        Info(prefix + "build", "Build.", registry=r).info({"version": "1.2"})
        Info(prefix + "host", "Host.", ["dc"], registry=r).labels("eu").info({"os": "linux"})
        Enum(prefix + "state", "State.", states=["a", "b"], registry=r).state("b")
        e = Enum(prefix + "task_state", "State.", ["t"], states=["up", "down"], registry=r)
        e.labels("x").state("down")
    if negative_buckets:
        Histogram("offset_seconds", "Offsets.", buckets=[-1, 0, 1], registry=r).observe(0.5)
    return r


@pytest.mark.parametrize("fmt", ["text", "openmetrics"])
def test_real_outputs_prometheus_client_every_type_is_silent(fmt):
    generate = generate_latest if fmt == "text" else generate_openmetrics
    data = generate(_prometheus_client_registry())
    assert b"vllm:" in data and b"_info" in data
    result = dm.check(data, fmt)
    assert (result.errors, result.warnings) == ([], [])
    # the strict lints are still there by code
    strict = {p.code for p in dm.check(data, fmt, enable=["all"]).warnings}
    assert "colon-name" in strict
    if fmt == "openmetrics":
        # metadata under vllm:x, samples under vllm_x, HELP before TYPE
        assert {"colon-mangled", "metadata-order"} <= strict


def test_real_outputs_prometheus_client_colon_families_keep_their_samples():
    data = generate_openmetrics(_prometheus_client_registry()).decode()
    assert "# TYPE vllm:prompt_tokens counter\n" in data
    assert "\nvllm_prompt_tokens_total{" in data
    families = {f.name: f for f in dm.parse(data, "openmetrics")}
    counter = families["vllm:prompt_tokens_total"]
    assert counter.type == "counter" and counter.help == "Prompt tokens."
    assert {s.name for s in counter.samples} == {
        "vllm:prompt_tokens_total",
        "vllm:prompt_tokens_created",
    }
    assert families["vllm:state"].type == "stateset"
    assert "vllm_prompt_tokens_total" not in families


def test_real_outputs_prometheus_client_negative_buckets_break_openmetrics():
    # prometheus_client leaves _sum out (as OpenMetrics requires with a negative
    # bucket) but keeps _count, which the spec allows only with _sum; its own
    # parser rejects the output too.
    data = generate_openmetrics(_prometheus_client_registry(negative_buckets=True))
    assert [p.code for p in dm.check(data, "openmetrics").errors] == ["count-without-sum"]
    with pytest.raises(ValueError, match="_sum/_gsum must be present"):
        list(text_string_to_metric_families(data.decode()))
    text = dm.check(generate_latest(_prometheus_client_registry(negative_buckets=True)), "text")
    assert (text.errors, text.warnings) == ([], [])


@pytest.fixture(scope="module")
def node_exporter():
    exporter = NodeExporter()
    try:
        yield exporter.address
    finally:
        exporter.stop()


@pytest.fixture(scope="module")
def prometheus(node_exporter):
    prom = Prometheus(node_exporter)
    try:
        prom.wait_for("node_exporter_build_info")
        yield prom
    finally:
        prom.stop()


def test_real_outputs_node_exporter_is_silent(node_exporter):
    data = get(f"http://{node_exporter}/metrics")
    assert b"node_cpu_seconds_total" in data
    result = dm.check(data, "text")
    assert (result.errors, result.warnings) == ([], [])
    # node_exporter's camelCase names (node_memory_MemFree_bytes) are a strict lint
    assert "camel-case" in {p.code for p in dm.check(data, "text", enable=["all"]).warnings}


def test_real_outputs_prometheus_metrics_and_federate_are_silent(prometheus):
    own = get(f"{prometheus.base}/metrics")
    assert b"prometheus_build_info" in own
    query = urllib.parse.urlencode({"match[]": '{__name__=~".+"}'})
    federated = get(f"{prometheus.base}/federate?{query}")
    assert b"node_exporter_build_info{" in federated
    for data in (own, federated):
        result = dm.check(data, "text")
        assert (result.errors, result.warnings) == ([], [])
    # /federate writes no HELP: a strict lint
    assert "missing-help" in {p.code for p in dm.check(federated, enable=["all"]).warnings}
