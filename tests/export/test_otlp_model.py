"""The OTLP encoders against opentelemetry-proto's generated classes.

Our protobuf is decoded with ``ExportMetricsServiceRequest.FromString`` and our
JSON parsed with strict ``json_format.Parse`` (no ``ignore_unknown_fields``);
both must equal a message built with the generated classes, and
``MessageToDict(..., use_integers_for_enums=True)`` of it must equal our dict
(which catches casing, enum names and non-default omissions the lenient parser
accepts). :func:`bench` times a 10k-series encode against the OpenTelemetry SDK.
"""

import json
import math
import time
from collections.abc import Sequence
from typing import Any, Optional

import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

import dyn_metrics as dm
from dyn_metrics import testing
from dyn_metrics.errors import InvalidValueError
from dyn_metrics.export.otlp_json import dumps_json, request_json
from dyn_metrics.export.otlp_model import encode_request, otlp_metrics
from dyn_metrics.metrics.native_buckets import overflow_index
from dyn_metrics.model import COUNTER, HISTOGRAM, Family, Sample

START = 1_700_000_000_000_000_000
NOW = START + 60_000_000_000
ARGS: dict[str, Any] = dict(
    resource_attributes={"service.name": "svc", "host": "w1"},
    scope_version="0.1.0",
    start_time_unix_nano=START,
    time_unix_nano=NOW,
)
CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
AWKWARD = ['"', "\\", "\n", "\t", "\\n", '\\"', "é ✓ 𝄞", 'C:\\dir\\"x"\n\t', "", '{a="b"}']


def attrs(labels: Sequence[tuple[str, str]]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels]


def number_point(labels: Sequence[tuple[str, str]] = (), **value: Any) -> pb.NumberDataPoint:
    return pb.NumberDataPoint(
        attributes=attrs(labels), start_time_unix_nano=START, time_unix_nano=NOW, **value
    )


def request(*metrics: pb.Metric, resource: Optional[dict[str, str]] = None) -> Any:
    labels = list((resource or {"service.name": "svc", "host": "w1"}).items())
    return ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(
                resource=Resource(attributes=attrs(labels)),
                scope_metrics=[
                    pb.ScopeMetrics(
                        scope=InstrumentationScope(name="dynamo.runtime.metrics", version="0.1.0"),
                        metrics=list(metrics),
                    )
                ],
            )
        ]
    )


def sum_metric(name: str, help: str, *points: pb.NumberDataPoint) -> pb.Metric:
    data = pb.Sum(data_points=points, aggregation_temporality=CUMULATIVE, is_monotonic=True)
    return pb.Metric(name=name, description=help, sum=data)


def gauge_metric(name: str, help: str, *points: pb.NumberDataPoint) -> pb.Metric:
    return pb.Metric(name=name, description=help, gauge=pb.Gauge(data_points=points))


def encoded(families: Sequence[Family], **overrides: Any) -> Any:
    """Our protobuf, decoded; asserts our JSON parses strictly into the same message."""
    args = {**ARGS, **overrides}
    message = ExportMetricsServiceRequest.FromString(encode_request(families, **args))
    body = request_json(families, **args)
    text = dumps_json(body)
    parsed = json_format.Parse(text, ExportMetricsServiceRequest())
    # Compared as dicts: NaN is "NaN" there, whatever its sign and payload bits.
    assert json_format.MessageToDict(parsed) == json_format.MessageToDict(message)
    assert json_format.MessageToDict(parsed, use_integers_for_enums=True) == json.loads(text)
    assert json.loads(text) == body
    return message


def collect(*metrics: Any) -> list[Family]:
    reg = dm.Registry()
    for m in metrics:
        reg.register(m)
    return reg.collect()


def test_counter_is_a_monotonic_cumulative_sum_of_doubles() -> None:
    c = dm.Counter("requests_total", "Requests.", const_labels={"model": "llama"})
    c.inc(2.5)
    expected = sum_metric(
        "requests_total", "Requests.", number_point([("model", "llama")], as_double=2.5)
    )
    assert encoded(collect(c)) == request(expected)


def test_int_counter_values_go_as_int_within_int64_else_as_double() -> None:
    families = [
        Family("a_total", COUNTER, "A.", (Sample("a_total", (), 5),)),
        Family("b_total", COUNTER, "B.", (Sample("b_total", (), 2**63 - 1),)),
        Family("c_total", COUNTER, "C.", (Sample("c_total", (), 2**70),)),
        Family("d_total", COUNTER, "D.", (Sample("d_total", (), 10**400),)),
    ]
    assert encoded(families) == request(
        sum_metric("a_total", "A.", number_point(as_int=5)),
        sum_metric("b_total", "B.", number_point(as_int=2**63 - 1)),
        sum_metric("c_total", "C.", number_point(as_double=float(2**70))),
        sum_metric("d_total", "D.", number_point(as_double=math.inf)),
    )
    ic = dm.IntCounter("jobs", "Jobs.")
    ic.inc(7)
    assert encoded(collect(ic)) == request(sum_metric("jobs", "Jobs.", number_point(as_int=7)))


def test_gauges_keep_negative_zero_nan_and_infinities() -> None:
    g = dm.GaugeVec("temp", "Temperature.", ["k"])
    values = {"neg0": -0.0, "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "x": 1e-300}
    for k, v in values.items():
        g.with_label_values(k).set(v)
    message = encoded(collect(g))
    points = message.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points
    got = {p.attributes[0].value.string_value: p.as_double for p in points}
    assert got.keys() == values.keys()
    assert math.copysign(1, got["neg0"]) == -1 and got["neg0"] == 0
    assert math.isnan(got["nan"]) and got["inf"] == math.inf and got["ninf"] == -math.inf
    assert got["x"] == 1e-300
    text = dumps_json(request_json(collect(g), **ARGS)).decode()
    assert '"asDouble":"NaN"' in text and '"asDouble":"Infinity"' in text
    assert '"asDouble":"-Infinity"' in text and '"asDouble":-0.0' in text


def test_int_gauge_and_huge_negative_ints() -> None:
    g = dm.IntGaugeVec("depth", "Depth.", ["q"])
    g.with_label_values("a").set(-3)
    g.with_label_values("b").set(-(2**63))
    g.with_label_values("c").set(-(2**64))
    assert encoded(collect(g)) == request(
        gauge_metric(
            "depth",
            "Depth.",
            number_point([("q", "a")], as_int=-3),
            number_point([("q", "b")], as_int=-(2**63)),
            number_point([("q", "c")], as_double=-(2.0**64)),
        )
    )


def histogram_metric(name: str, help: str, *points: pb.HistogramDataPoint) -> pb.Metric:
    data = pb.Histogram(data_points=points, aggregation_temporality=CUMULATIVE)
    return pb.Metric(name=name, description=help, histogram=data)


def histogram_point(labels: Sequence[tuple[str, str]] = (), **fields: Any) -> pb.HistogramDataPoint:
    return pb.HistogramDataPoint(
        attributes=attrs(labels), start_time_unix_nano=START, time_unix_nano=NOW, **fields
    )


def test_histogram_buckets_are_de_cumulated_as_dynamo_does() -> None:
    # Dynamo's upstream vector: 0.1 -> 2, 0.5 -> 5, +Inf -> 9, sum 1.5, count 9.
    samples = [("0.1", 2), ("0.5", 5), ("+Inf", 9)]
    family = Family(
        "d_seconds",
        HISTOGRAM,
        "D.",
        tuple(Sample("d_seconds_bucket", (("le", le),), v) for le, v in samples)
        + (Sample("d_seconds_sum", (), 1.5), Sample("d_seconds_count", (), 9)),
    )
    expected = histogram_point(
        count=9, sum=1.5, bucket_counts=[2, 3, 4], explicit_bounds=[0.1, 0.5]
    )
    assert encoded([family]) == request(histogram_metric("d_seconds", "D.", expected))


def test_histogram_with_nan_and_inf_observations_and_an_empty_histogram() -> None:
    h = dm.HistogramVec("lat_seconds", "Latency.", ["route"], buckets=[0.1, 1])
    child = h.with_label_values("/a")
    for v in (0.05, math.inf, math.nan):
        child.observe(v)
    empty = dm.Histogram("idle_seconds", "Idle.")
    message = encoded(collect(h, empty))
    idle, lat = message.resource_metrics[0].scope_metrics[0].metrics
    assert idle == histogram_metric(
        "idle_seconds",
        "Idle.",
        histogram_point(sum=0.0, bucket_counts=[0] * 12, explicit_bounds=list(dm.DEFAULT_BUCKETS)),
    )
    assert idle.histogram.data_points[0].HasField("sum")
    point = lat.histogram.data_points[0]
    assert list(point.bucket_counts) == [1, 0, 2] and list(point.explicit_bounds) == [0.1, 1.0]
    assert point.count == 3 and math.isnan(point.sum)
    assert list(point.attributes) == attrs([("route", "/a")])


def test_summary_quantiles_count_and_sum() -> None:
    s = dm.Summary("rpc_seconds", "RPC.", objectives={0.5: 0.05, 0.9: 0.01})
    for v in (1.0, 2.0, 3.0):
        s.observe(v)
    plain = dm.Summary("plain_seconds", "Plain.")
    families = collect(s, plain)
    quantiles = {
        float(dict(x.labels)["quantile"]): x.value
        for x in families[1].samples
        if x.name == "rpc_seconds"
    }
    assert encoded(families) == request(
        pb.Metric(
            name="plain_seconds",
            description="Plain.",
            summary=pb.Summary(
                data_points=[pb.SummaryDataPoint(start_time_unix_nano=START, time_unix_nano=NOW)]
            ),
        ),
        pb.Metric(
            name="rpc_seconds",
            description="RPC.",
            summary=pb.Summary(
                data_points=[
                    pb.SummaryDataPoint(
                        start_time_unix_nano=START,
                        time_unix_nano=NOW,
                        count=3,
                        sum=6.0,
                        quantile_values=[
                            pb.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
                            for q, v in sorted(quantiles.items())
                        ],
                    )
                ]
            ),
        ),
    )
    assert sorted(quantiles) == [0.5, 0.9]


def test_info_and_stateset_are_gauges() -> None:
    info = dm.Info("build", "Build.")
    info.info({"version": "1.2", "commit": "abc"})
    state = dm.Enum("worker_state", "State.", states=["starting", "ready"])
    state.state("ready")
    # OpenMetrics-style info family, named as its TYPE line, keeps the sample's name.
    parsed_info = Family("os", "info", "OS.", (Sample("os_info", (("name", "linux"),), 1),))
    assert encoded(collect(info, state) + [parsed_info]) == request(
        gauge_metric(
            "build_info", "Build.", number_point([("commit", "abc"), ("version", "1.2")], as_int=1)
        ),
        gauge_metric(
            "worker_state",
            "State.",
            number_point([("worker_state", "starting")], as_int=0),
            number_point([("worker_state", "ready")], as_int=1),
        ),
        gauge_metric("os_info", "OS.", number_point([("name", "linux")], as_int=1)),
    )


def test_vec_children_and_escaping_heavy_label_values_are_verbatim_attributes() -> None:
    cv = dm.CounterVec(
        "errors_total", 'He said "hi"\\\n', ["kind", "path"], const_labels={"z": "é"}
    )
    rows = [(a, b) for a, b in zip(AWKWARD, reversed(AWKWARD))]
    for i, row in enumerate(rows):
        cv.with_label_values(*row).inc(i + 1)
    message = encoded(collect(cv))
    (metric,) = message.resource_metrics[0].scope_metrics[0].metrics
    assert metric.description == 'He said "hi"\\\n'
    got = {
        tuple((kv.key, kv.value.string_value) for kv in p.attributes): p.as_double
        for p in metric.sum.data_points
    }
    assert got == {
        (("kind", a), ("path", b), ("z", "é")): float(i + 1) for i, (a, b) in enumerate(rows)
    }


def test_created_samples_split_and_counter_named_after_its_total_sample() -> None:
    # Dynamo's vector: family d_requests with sample d_requests_total exports as d_requests_total.
    family = Family(
        "d_requests",
        COUNTER,
        "D.",
        (Sample("d_requests_total", (), 3.0), Sample("d_requests_created", (), 1.7e9)),
    )
    assert encoded([family]) == request(
        sum_metric("d_requests_total", "D.", number_point(as_double=3.0)),
        gauge_metric("d_requests_created", "D.", number_point(as_double=1.7e9)),
    )


def test_untyped_gaugehistogram_and_families_without_samples() -> None:
    families = [
        Family("u", "untyped", "U.", (Sample("u", (), 1.5),)),
        Family("e_total", COUNTER, "E.", ()),
        Family(
            "gh",
            "gaugehistogram",
            "GH.",
            (
                Sample("gh_bucket", (("le", "+Inf"),), 4),
                Sample("gh_gcount", (), 4),
                Sample("gh_gsum", (), 2.5),
            ),
        ),
    ]
    assert encoded(families) == request(
        gauge_metric("u", "U.", number_point(as_double=1.5)),
        gauge_metric("gh_bucket", "GH.", number_point([("le", "+Inf")], as_int=4)),
        gauge_metric("gh_gcount", "GH.", number_point(as_int=4)),
        gauge_metric("gh_gsum", "GH.", number_point(as_double=2.5)),
    )


def test_resource_service_name_first_and_scope() -> None:
    attributes = {"deployment": "prod", "service.name": "frontend"}
    message = encoded([], resource_attributes=attributes, scope_version="9.9")
    assert message.resource_metrics[0].resource.attributes == attrs(
        [("service.name", "frontend"), ("deployment", "prod")]
    )
    assert message.resource_metrics[0].scope_metrics[0].scope == InstrumentationScope(
        name="dynamo.runtime.metrics", version="9.9"
    )
    unnamed = encoded([], resource_attributes={})
    assert unnamed.resource_metrics[0].resource.attributes == attrs(
        [("service.name", "unknown_service")]
    )


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"start_time_unix_nano": -1}, "-1"),
        ({"time_unix_nano": 1.5}, "1.5"),
        ({"time_unix_nano": 2**64}, repr(2**64)),
        ({"time_unix_nano": True}, "True"),
        ({"resource_attributes": {"k": 1}}, "1"),
        ({"resource_attributes": {2: "v"}}, "2"),
        ({"scope_version": None}, "None"),
    ],
)
def test_bad_arguments_raise_typed_errors(overrides: dict[str, Any], fragment: str) -> None:
    for encode in (encode_request, request_json):
        with pytest.raises(InvalidValueError, match=fragment):
            encode([], **{**ARGS, **overrides})


def test_json_rules() -> None:
    c = dm.IntCounter("n_total", "N.")
    c.inc(2**62)
    body = request_json(collect(c), **ARGS)
    point = body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]
    assert point == {"startTimeUnixNano": str(START), "timeUnixNano": str(NOW), "asInt": str(2**62)}
    assert (
        body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["aggregationTemporality"]
        == 2
    )
    with pytest.raises(ValueError):
        dumps_json({"x": math.nan})


def semantic(families: list[Family]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    """What the request must say, computed from the families independently of the encoder."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    for f in families:
        if f.type == HISTOGRAM:
            for s in f.samples:
                if s.name.endswith("_count") and s.native is not None:
                    out[f.name, s.labels] = _exponential(s.native)
                elif s.name.endswith("_count"):
                    buckets = [
                        (float(dict(b.labels)["le"]), b.value)
                        for b in f.samples
                        if b.name.endswith("_bucket")
                        and tuple(p for p in b.labels if p[0] != "le") == s.labels
                    ]
                    out[f.name, s.labels] = (s.value, [v for le, v in buckets if le != math.inf])
        else:
            for s in f.samples:
                out[s.name, s.labels] = s.value
    return out


def _exponential(n: Any) -> Any:
    """What an exponential point must say: OTLP's rules applied to a native child.

    +-Inf (the overflow bucket) and NaN stay out of the buckets and the count;
    the scale drops (index k -> ceil(k / 2)) until each side spans <= 160 buckets.
    """
    top = overflow_index(n.schema)
    sides = [{i: c for i, c in side if i != top} for side in (n.positive, n.negative)]
    scale = n.schema

    def spread(d: dict[int, int]) -> int:
        return max(d) - min(d) + 1 if d else 0

    while max(map(spread, sides)) > 160 and scale > -4:
        merged: list[dict[int, int]] = [{}, {}]
        for side, into in zip(sides, merged):
            for i, c in side.items():
                into[(i + 1) >> 1] = into.get((i + 1) >> 1, 0) + c
        sides, scale = merged, scale - 1
    count = n.zero_count + sum(sides[0].values()) + sum(sides[1].values())
    return count, (*sides, n.zero_count), scale


def decoded(message: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    for m in message.resource_metrics[0].scope_metrics[0].metrics:
        kind = m.WhichOneof("data")
        for p in getattr(m, kind).data_points:
            labels = tuple((kv.key, kv.value.string_value) for kv in p.attributes)
            if kind == "histogram":
                counts = list(p.bucket_counts)
                assert len(counts) == len(p.explicit_bounds) + 1
                assert sum(counts) == p.count
                cumulative = [sum(counts[: i + 1]) for i in range(len(p.explicit_bounds))]
                out[m.name, labels] = (p.count, cumulative)
            elif kind == "exponential_histogram":
                sides = [
                    {b.offset + j + 1: c for j, c in enumerate(b.bucket_counts) if c}
                    for b in (p.positive, p.negative)
                ]
                out[m.name, labels] = (p.count, (*sides, p.zero_count), p.scale)
            elif kind == "summary":
                out[m.name, labels] = (p.count, p.sum, len(p.quantile_values))
            else:
                out[m.name, labels] = getattr(p, p.WhichOneof("value"))
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, int) and not -(2**63) <= a < 2**63:
        return b == float(a) or (math.isinf(b) and abs(a) > 1e308)
    return bool(a == b and type(a) is type(b)) if isinstance(a, (int, float)) else a == b


@given(testing.registries())
def test_protobuf_equals_json_equals_the_families(reg: dm.Registry) -> None:
    families = reg.collect()
    message = encoded(families)
    want, got = semantic(families), decoded(message)
    assert want.keys() == got.keys()
    for k, v in want.items():
        if isinstance(v, tuple):
            assert v[0] == got[k][0] and v[1] == got[k][1], k
        else:
            assert same(v, got[k]), (k, v, got[k])


@given(st.one_of(testing.families(), testing.families("openmetrics")))
def test_any_families_encode_to_the_same_message_both_ways(families: list[Family]) -> None:
    message = encoded(families)
    names = {m.name for m in message.resource_metrics[0].scope_metrics[0].metrics}
    assert names == {m.name for m in otlp_metrics(families)}
    decoded(message)  # the histogram invariants


def bench(n: int = 10_000, repeat: int = 5) -> dict[str, float]:
    """Seconds (best of ``repeat``) to encode ``n`` counter-vec series: ours, and the OTel SDK's.

    The SDK figure needs ``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-common``
    (measuring only; no test depends on them); it is left out when they are missing.
    """
    cv = dm.CounterVec("requests_total", "Requests.", ["model", "worker"])
    for i in range(n):
        cv.with_label_values("llama", str(i)).inc(i)
    families = collect(cv)

    def best(f: Any) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    out = {"ours_encode": best(lambda: encode_request(families, **ARGS))}
    out["ours_collect_and_encode"] = best(lambda: encode_request(collect(cv), **ARGS))
    out["ours_json"] = best(lambda: dumps_json(request_json(families, **ARGS)))
    try:
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.metrics.view import View
    except ImportError:
        return out
    reader = InMemoryMetricReader()
    # The SDK folds attribute sets past 2000 into one overflow point unless told otherwise.
    view = View(instrument_name="requests", aggregation_cardinality_limit=n + 1)
    provider = MeterProvider(metric_readers=[reader], views=[view])
    counter = provider.get_meter("bench").create_counter("requests")
    for i in range(n):
        counter.add(float(i), {"model": "llama", "worker": str(i)})
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert len(metric.data.data_points) == n
    out["sdk_encode"] = best(lambda: encode_metrics(data).SerializeToString())
    out["ratio"] = out["ours_encode"] / out["sdk_encode"]
    return out
