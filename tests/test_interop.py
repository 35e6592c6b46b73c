"""Interoperability with the real tools: promtool and a Prometheus 2.42 server.

These tests need Debian's ``prometheus`` package (``promtool`` and
``prometheus`` on PATH) and fail, rather than skip, without it.

The Prometheus run starts a dyn_metrics server on 127.0.0.1, points a
throw-away Prometheus at it (temporary config and TSDB, 1 s scrape
interval), polls the HTTP API until the series appear and compares what
Prometheus stored with what was recorded. Prometheus 2.42 always prefers
OpenMetrics in its Accept header, so which format it read is visible in the
stored series: ``le="1"`` and ``dynamo_component_testcounter`` from text
0.0.4, ``le="1.0"`` and ``dynamo_component_testcounter_total`` from
OpenMetrics.
"""

import math
import subprocess

import pytest

import dyn_metrics as dm
from dyn_metrics.exposition.check import check
from tests.realtools import Prometheus, binary

AWKWARD = 'C:\\dir\\"x"\nline2\t✓ é'


def _every_type_registry():
    reg = dm.Registry()
    counter = dm.Counter("jobs_total", "Jobs done", const_labels={"queue": AWKWARD})
    counter.inc_by(2.5)
    gauge = dm.Gauge("temperature_celsius", 'Temp with "quotes" and \\ backslash\nand newline')
    gauge.set(-0.0)
    int_counter = dm.IntCounter("big_total", "Big")
    int_counter.inc_by(2**60)
    int_gauge = dm.IntGauge("level", "Level")
    int_gauge.set(-7)
    hist = dm.Histogram("lat_seconds", "Latency", buckets=[0.005, 0.1, 1.0, 10.0])
    for v in (0.001, 0.05, 0.5, 50.0):
        hist.observe(v)
    cvec = dm.CounterVec(
        "requests_total", "Requests", ["path", "code"], const_labels={"svc": "api"}
    )
    cvec.with_label_values(AWKWARD, "200").inc()
    cvec.with_label_values("", "500").inc_by(3)
    gvec = dm.GaugeVec("queue_depth", "Depth", ["queue"])
    gvec.with_label_values("a").set(math.nan)
    gvec.with_label_values("b").set(math.inf)
    hvec = dm.HistogramVec(
        "size_bytes", "Sizes", ["kind"], buckets=dm.exponential_buckets(1, 10, 4)
    )
    hvec.with_label_values(AWKWARD).observe(123)
    ivec = dm.IntCounterVec("events_total", "Events", ["type"])
    ivec.with_label_values("x").inc()
    igvec = dm.IntGaugeVec("slots", "Slots", ["pool"])
    igvec.with_label_values("p").set(3)
    for metric in (counter, gauge, int_counter, int_gauge, hist, cvec, gvec, hvec, ivec, igvec):
        reg.register(metric)
    return reg


def test_interop_promtool_accepts_registry_text_with_every_type():
    promtool = binary("promtool")
    text = _every_type_registry().prometheus_expfmt()
    assert check(text, "text").errors == []
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert proc.returncode in (0, 3), proc.stderr.decode()  # 3 = lint only
    assert b"error" not in proc.stderr.lower(), proc.stderr.decode()


# -- a real Prometheus ------------------------------------------------------------


def _value(result):
    assert len(result) == 1, result
    return float(result[0]["value"][1])


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_interop_prometheus_scrapes_the_recorded_values(openmetrics):
    drt = dm.DistributedRuntime()
    metrics = drt.namespace("ns").component("c").endpoint("e").metrics()
    metrics.create_counter("requests_total", "Total requests", [("service", "api")]).inc_by(5)
    metrics.create_counter("testcounter", "A counter named without _total").inc_by(123.456789)
    metrics.create_gauge("queue_depth", "Queue depth").set(42.5)
    metrics.create_intgauge("level", "Level").set(-7)
    hist = metrics.create_histogram("latency_seconds", "Latency", buckets=[0.1, 0.5, 1.0])
    for v in (0.05, 0.2, 0.3, 0.7, 2.0):
        hist.observe(v)
    metrics.create_countervec("escaped_total", "Awkward label values", ["path"]).with_label_values(
        AWKWARD
    ).inc_by(3)

    server = dm.start_http_server(drt, port=0, host="127.0.0.1", openmetrics=openmetrics)
    prom = None
    try:
        prom = Prometheus(f"127.0.0.1:{server.port}")
        prefix = "dynamo_component_"
        counter = prom.wait_for(f'{prefix}requests_total{{service="api"}}')
        target = prom.target()
        assert (target["health"], target["lastError"]) == ("up", "")

        assert _value(counter) == 5
        assert counter[0]["metric"]["dynamo_namespace"] == "ns"
        assert _value(prom.query(f"{prefix}queue_depth")) == 42.5
        assert _value(prom.query(f"{prefix}level")) == -7

        buckets = prom.query(f"{prefix}latency_seconds_bucket")
        by_le = {r["metric"]["le"]: float(r["value"][1]) for r in buckets}
        # The format Prometheus read shows in the stored le spelling and counter name.
        if openmetrics:
            assert by_le == {"0.1": 1, "0.5": 3, "1.0": 4, "+Inf": 5}
            assert _value(prom.query(f"{prefix}testcounter_total")) == 123.456789
            assert prom.query(f"{prefix}testcounter") == []
        else:
            assert by_le == {"0.1": 1, "0.5": 3, "1": 4, "+Inf": 5}
            assert _value(prom.query(f"{prefix}testcounter")) == 123.456789
            assert prom.query(f"{prefix}testcounter_total") == []
        assert _value(prom.query(f"{prefix}latency_seconds_count")) == 5
        assert _value(prom.query(f"{prefix}latency_seconds_sum")) == pytest.approx(3.25)
        # rank 2.5 of 5 falls in (0.1, 0.5] holding observations 2..3
        assert _value(
            prom.query(f"histogram_quantile(0.5, {prefix}latency_seconds_bucket)")
        ) == pytest.approx(0.1 + 0.4 * (2.5 - 1) / (3 - 1))

        escaped = prom.query(f"{prefix}escaped_total")
        assert escaped[0]["metric"]["path"] == AWKWARD
        assert _value(escaped) == 3
    finally:
        if prom is not None:
            prom.stop()
        server.stop()
