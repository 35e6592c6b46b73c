"""Native histograms against a real Prometheus 2.42: with the feature flag, and without it.

One dyn_metrics server serves a registry holding native histograms and every
other type. Prometheus with ``--enable-feature=native-histograms`` asks for
the protobuf format and must ingest the native histograms as such (the
histogram functions give the expected numbers, the classic series do not
exist); a second Prometheus without the flag asks for text and must scrape
the same target with ``up == 1`` and see the classic form.
"""

import math
import urllib.request

import pytest

import dyn_metrics as dm
from tests.realtools import Prometheus

# The observations Prometheus' own measurement of 2.42 used (schema 3).
VALUES = [0, 0.1, 0.2, 0.2, 0.5, 1, 1, 2, 3, 100, -0.5] * 10
FLAGGED_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
    "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
    "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROTOBUF = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)


def _registry():
    reg = dm.Registry()
    nh = reg.register(dm.Histogram("nh_seconds", "Native latency", native=True, schema=3))
    for v in VALUES:
        nh.observe(v)
    reg.register(dm.Histogram("empty_seconds", "Never observed", native=True))
    both = reg.register(
        dm.Histogram("both_seconds", "Classic and native", buckets=[0.5, 1, 5], native=True)
    )
    for v in (0.25, 0.75, 4.0, 4.0):
        both.observe(v)
    vec = reg.register(
        dm.HistogramVec("routes_seconds", "Per route", ["route"], native=True, schema=0)
    )
    vec.labels("/a").observe(3.0)
    vec.labels("/b").observe(0.75)
    vec.labels("/b").observe(0.75)
    # zero_threshold 0 and an empty first child: 2.42 judges the family by it.
    zt0 = reg.register(
        dm.HistogramVec("zt0_seconds", "No zero bucket", ["w"], native=True, zero_threshold=0)
    )
    zt0.labels("a")
    zt0.labels("b").observe(1.5)
    zt0.labels("b").observe(3.0)
    reg.register(dm.Counter("requests_total", "Requests")).inc(7)
    reg.register(dm.Gauge("temperature", "Temperature")).set(-2.5)
    summary = reg.register(dm.Summary("rpc_seconds", "RPC", objectives={0.5: 0.05}))
    for v in (1, 2, 3):
        summary.observe(v)
    reg.register(dm.Info("build", "Build")).info({"version": "1.4"})
    reg.register(dm.Enum("state", "State", states=["ready", "draining"])).state("ready")
    return reg


@pytest.fixture(scope="module")
def prometheus():
    server = dm.start_http_server(_registry(), port=0, host="127.0.0.1")
    target = f"127.0.0.1:{server.port}"
    flagged = plain = None
    try:
        flagged = Prometheus(target, flags=["--enable-feature=native-histograms"])
        plain = Prometheus(target)
        yield server, flagged, plain
    finally:
        for prom in (flagged, plain):
            if prom is not None:
                prom.stop()
        server.stop()


def _buckets(native):
    """``(lower, upper, count)`` in Prometheus' walk order (negative, zero, positive)."""
    base = 2.0 ** (2.0**-native.schema)
    out = [(-(base**i), -(base ** (i - 1)), c) for i, c in reversed(native.negative)]
    if native.zero_count:
        out.append((-native.zero_threshold, native.zero_threshold, native.zero_count))
    out += [(base ** (i - 1), base**i, c) for i, c in native.positive]
    return out


def quantile(q, native, count):
    """Prometheus 2.42's ``histogram_quantile`` of a native histogram (linear in the bucket)."""
    rank, seen = q * count, 0
    buckets = _buckets(native)
    at = 0
    while True:  # the bucket that reaches the rank (the last one at worst)
        seen += buckets[at][2]
        if seen >= rank or at == len(buckets) - 1:
            break
        at += 1
    lower, upper, c = buckets[at]
    if lower < 0 < upper:
        if not native.negative and native.positive:
            lower = 0
        elif not native.positive and native.negative:
            upper = 0
    seen = min(seen, count)
    if seen < rank:
        return upper
    return lower + (upper - lower) * ((rank - (seen - c)) / c)


def _native(name):
    reg = _registry()
    for family in reg.collect():
        for sample in family.samples:
            if sample.name == f"{name}_count" and sample.native is not None:
                return sample.native, sample.value
    raise AssertionError(name)


def _value(result):
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_the_server_answers_prometheus_accept_with_protobuf(prometheus):
    server, _, _ = prometheus
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/metrics", headers={"Accept": FLAGGED_ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == PROTOBUF
        body = response.read()
    assert body[:1] != b"#" and b"nh_seconds" in body


def test_flagged_prometheus_ingests_native_histograms(prometheus):
    _, prom, _ = prometheus
    prom.wait_for("histogram_count(nh_seconds)")
    (target,) = prom.targets()
    assert (target["health"], target["lastError"]) == ("up", "")
    assert _value(prom.query("histogram_count(nh_seconds)")) == 110
    assert math.isclose(_value(prom.query("histogram_sum(nh_seconds)")), sum(VALUES))
    native, count = _native("nh_seconds")
    for q, measured in ((0.5, 0.4792510108011678), (0.9, 3.0588221982089125)):
        got = _value(prom.query(f"histogram_quantile({q}, nh_seconds)"))
        assert math.isclose(got, quantile(q, native, count), rel_tol=1e-9)
        assert math.isclose(got, measured, rel_tol=1e-9)
    # Ranks: 10 negative values, the zero bucket [-t, t] (10 zeros) split in half at 0,
    # and 60 values up to 1, a bucket bound: (80 - 15) / 110.
    fraction = _value(prom.query("histogram_fraction(0, 1, nh_seconds)"))
    assert math.isclose(fraction, (80 - 15) / 110, rel_tol=1e-9)
    # Ingested as native: the classic series do not exist.
    assert prom.query("nh_seconds_count") == []
    assert prom.query("nh_seconds_bucket") == []


def test_flagged_prometheus_sees_our_buckets(prometheus):
    _, prom, _ = prometheus
    (series,) = prom.wait_for("nh_seconds")
    histogram = series["histogram"][1]
    assert histogram["count"] == "110"
    native, _ = _native("nh_seconds")
    want = [(lo, up, c) for lo, up, c in _buckets(native)]
    got = [(float(lo), float(up), int(c)) for _, lo, up, c in histogram["buckets"]]
    assert len(got) == len(want)
    for (glo, gup, gc), (wlo, wup, wc) in zip(got, want):
        assert gc == wc
        assert math.isclose(glo, wlo, rel_tol=1e-12) and math.isclose(gup, wup, rel_tol=1e-12)


def test_flagged_prometheus_empty_and_mixed_histograms(prometheus):
    _, prom, _ = prometheus
    (empty,) = prom.wait_for("empty_seconds")
    assert empty["histogram"][1] == {"count": "0", "sum": "0"}
    assert _value(prom.query("histogram_count(both_seconds)")) == 4
    assert prom.query("both_seconds_bucket") == []  # the native form wins in 2.42
    counts = {
        r["metric"]["route"]: float(r["value"][1])
        for r in prom.query("histogram_count(routes_seconds)")
    }
    assert counts == {"/a": 1.0, "/b": 2.0}
    assert _value(prom.query('histogram_fraction(0, 1, routes_seconds{route="/b"})')) == 1.0
    counts = {
        r["metric"]["w"]: float(r["value"][1]) for r in prom.query("histogram_count(zt0_seconds)")
    }
    assert counts == {"a": 0.0, "b": 2.0}
    assert prom.query("zt0_seconds_count") == []


def test_flagged_prometheus_reads_every_other_type_from_protobuf(prometheus):
    _, prom, _ = prometheus
    prom.wait_for("requests_total")
    assert _value(prom.query("requests_total")) == 7
    assert _value(prom.query("temperature")) == -2.5
    assert _value(prom.query('rpc_seconds{quantile="0.5"}')) == 2
    assert _value(prom.query("rpc_seconds_count")) == 3
    assert _value(prom.query("rpc_seconds_sum")) == 6
    assert _value(prom.query('build_info{version="1.4"}')) == 1
    assert _value(prom.query('state{state="ready"}')) == 1
    assert _value(prom.query('state{state="draining"}')) == 0


def test_prometheus_without_the_flag_scrapes_the_classic_form(prometheus):
    _, _, prom = prometheus
    prom.wait_for("nh_seconds_count")
    (target,) = prom.targets()
    assert (target["health"], target["lastError"]) == ("up", "")
    assert _value(prom.query("up")) == 1
    assert _value(prom.query("nh_seconds_count")) == 110
    assert _value(prom.query('nh_seconds_bucket{le="+Inf"}')) == 110
    assert _value(prom.query("empty_seconds_count")) == 0
    buckets = {r["metric"]["le"]: float(r["value"][1]) for r in prom.query("both_seconds_bucket")}
    assert buckets == {"0.5": 1, "1": 2, "5": 4, "+Inf": 4}
    assert _value(prom.query("requests_total")) == 7
