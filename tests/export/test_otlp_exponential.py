"""Native histograms as OTLP ExponentialHistogram, in protobuf and OTLP/JSON.

Every request goes through ``encoded`` (tests/export/test_otlp_model.py): our
protobuf decoded by opentelemetry-proto's classes, our JSON parsed strictly into
the same message and equal to its canonical dict. The bucket checks rebuild
absolute counts at bounds written as exponents of 2 (``base ** k`` is
``2 ** (k / 2 ** scale)``), Prometheus' ``(base ** (i - 1), base ** i]`` on one
side and OTLP's ``(base ** k, base ** (k + 1)]`` on the other, and place raw
values by OTLP's definition with exact rational arithmetic.
"""

import json
import math
from fractions import Fraction
from typing import Any, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

import dyn_metrics as dm
from dyn_metrics.export.otlp_json import dumps_json, request_json
from dyn_metrics.export.otlp_model import (
    KIND_EXPONENTIAL_HISTOGRAM,
    KIND_HISTOGRAM,
    ExponentialPoint,
    encode_request,
    otlp_metrics,
)
from dyn_metrics.metrics.native_buckets import bucket_index, overflow_index
from dyn_metrics.model import HISTOGRAM, Family, NativeHistogram, Sample
from tests.export.test_otlp_model import ARGS, CUMULATIVE, NOW, START, attrs, encoded, request

Buckets = pb.ExponentialHistogramDataPoint.Buckets
LABELS = (("model", "llama"), ("route", "/v1/chat"))
ZT = 2.0**-128


def child(
    name: str,
    labels: Any,
    native: Optional[NativeHistogram],
    total: Any,
    total_sum: Any = 0.0,
    classic: Any = (),
) -> tuple[Sample, ...]:
    """One histogram child's samples: classic ``(le, cumulative)`` pairs, else only +Inf."""
    rows = tuple(classic) or (("+Inf", total),)
    buckets = tuple(Sample(name + "_bucket", labels + (("le", le),), v) for le, v in rows)
    sums = () if total_sum is None else (Sample(name + "_sum", labels, total_sum),)
    return buckets + sums + (Sample(name + "_count", labels, total, native=native),)


def family(name: str, *children: tuple[Sample, ...]) -> Family:
    return Family(name, HISTOGRAM, "Latency.", tuple(s for c in children for s in c))


def metrics_of(message: Any) -> list[Any]:
    return list(message.resource_metrics[0].scope_metrics[0].metrics)


def exp_metric(name: str, *points: pb.ExponentialHistogramDataPoint) -> pb.Metric:
    data = pb.ExponentialHistogram(data_points=points, aggregation_temporality=CUMULATIVE)
    return pb.Metric(name=name, description="Latency.", exponential_histogram=data)


def exp_point(labels: Any = LABELS, **fields: Any) -> pb.ExponentialHistogramDataPoint:
    return pb.ExponentialHistogramDataPoint(
        attributes=attrs(labels), start_time_unix_nano=START, time_unix_nano=NOW, **fields
    )


def exponent(index: int, scale: int) -> Fraction:
    """``base ** index`` as a power of 2: its exponent ``index / 2 ** scale``."""
    return Fraction(index) / Fraction(2) ** scale


def prometheus_side(pairs: Any, scale: int) -> dict[tuple[Fraction, Fraction], int]:
    """``{(lower, upper) exponents: count}`` of Prometheus buckets ``(base**(i-1), base**i]``."""
    return {(exponent(i - 1, scale), exponent(i, scale)): c for i, c in pairs if c}


def coarser(pairs: Any, steps: int) -> list[tuple[int, int]]:
    """Prometheus pairs ``steps`` schemas coarser (index k -> ceil(k / 2**steps)), sorted."""
    out: dict[int, int] = {}
    for i, c in pairs:
        k = -((-i) >> steps)
        out[k] = out.get(k, 0) + c
    return sorted(out.items())


def otlp_side(buckets: Any, scale: int) -> dict[tuple[Fraction, Fraction], int]:
    """The same of decoded OTLP ``Buckets``, bucket ``k`` being ``(base**k, base**(k+1)]``."""
    out = {}
    for j, c in enumerate(buckets.bucket_counts):
        k = buckets.offset + j
        if c:
            out[exponent(k, scale), exponent(k + 1, scale)] = c
    return out


def test_native_child_is_an_exponential_point_with_gaps_negatives_and_a_zero_bucket() -> None:
    native = NativeHistogram(3, ZT, 4, positive=((-2, 1), (0, 3), (3, 2)), negative=((5, 7),))
    f = family("lat_seconds", child("lat_seconds", LABELS, native, 17, 12.5))
    expected = exp_point(
        count=17,
        sum=12.5,
        scale=3,
        zero_count=4,
        zero_threshold=ZT,
        positive=Buckets(offset=-3, bucket_counts=[1, 0, 3, 0, 0, 2]),
        negative=Buckets(offset=4, bucket_counts=[7]),
    )
    assert encoded([f]) == request(exp_metric("lat_seconds", expected))
    body = request_json([f], **ARGS)
    (point,) = body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["exponentialHistogram"][
        "dataPoints"
    ]
    # sint32 as JSON numbers, 64-bit counts as strings.
    assert point["scale"] == 3 and point["zeroCount"] == "4" and point["count"] == "17"
    assert point["positive"] == {"offset": -3, "bucketCounts": ["1", "0", "3", "0", "0", "2"]}
    assert point["negative"] == {"offset": 4, "bucketCounts": ["7"]}
    assert point["zeroThreshold"] == ZT


def test_classic_buckets_of_a_histogram_with_both_are_not_sent() -> None:
    native = NativeHistogram(0, ZT, 0, positive=((1, 2), (2, 1)))
    classic = (("1", 0), ("2", 2), ("4", 3), ("+Inf", 3))
    f = family("both_seconds", child("both_seconds", (), native, 3, 6.0, classic))
    (metric,) = metrics_of(encoded([f]))
    assert metric.WhichOneof("data") == "exponential_histogram"
    (point,) = metric.exponential_histogram.data_points
    assert metric.exponential_histogram.aggregation_temporality == CUMULATIVE
    assert (point.positive.offset, list(point.positive.bucket_counts)) == (0, [2, 1])
    assert not point.HasField("negative") and point.scale == 0


def test_empty_native_histogram_sends_sum_and_threshold_and_no_bucket_sides() -> None:
    f = family("idle_seconds", child("idle_seconds", (), NativeHistogram(3, ZT, 0), 0, 0.0))
    (metric,) = metrics_of(encoded([f]))
    (point,) = metric.exponential_histogram.data_points
    assert point == exp_point((), sum=0.0, scale=3, zero_threshold=ZT)
    assert point.HasField("sum")
    assert not point.HasField("positive") and not point.HasField("negative")


def test_a_non_finite_or_missing_sum_is_unset_and_the_count_is_the_buckets() -> None:
    # OTLP: count = zero_count + the buckets; a NaN observation is in neither.
    native = NativeHistogram(1, ZT, 0, positive=((1, 1),))
    f = family(
        "n_seconds",
        child("n_seconds", (("c", "nan"),), native, 2, math.nan),
        child("n_seconds", (("c", "none"),), native, 1, None),
        child("n_seconds", (("c", "neg"),), native, 1, -2.5),
    )
    nan_point, no_sum, negative = metrics_of(encoded([f]))[0].exponential_histogram.data_points
    assert not nan_point.HasField("sum") and nan_point.count == 1
    assert not no_sum.HasField("sum") and no_sum.count == 1
    assert negative.HasField("sum") and negative.sum == -2.5
    points = request_json([f], **ARGS)["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    first, second, third = points["exponentialHistogram"]["dataPoints"]
    assert "sum" not in first and "sum" not in second and third["sum"] == -2.5


def widest(schema: int) -> NativeHistogram:
    """Every float's bucket in use: the smallest subnormal's to the largest float's."""
    lo, hi = bucket_index(5e-324, schema), bucket_index(1.7976931348623157e308, schema)
    return NativeHistogram(schema, 0.0, 0, ((lo, 3), (lo + 1, 1), (hi, 2)), ((lo, 1), (hi - 1, 5)))


def test_the_widest_index_spread_is_sent_at_scale_minus_4_every_count_kept() -> None:
    # Every float's bucket in use spans 132 buckets at scale -4: dense sides are capped
    # (MAX_DENSE), so every schema goes out at -4, merged exactly.
    cases = [(schema, widest(schema)) for schema in (-4, 0, 8)]
    children = [child("w", (("s", str(s)),), n, 12, 1.0) for s, n in cases]
    points = metrics_of(encoded([family("w", *children)]))[0].exponential_histogram.data_points
    for (schema, native), point in zip(cases, points):
        assert point.scale == -4 and point.zero_threshold == 0.0
        steps = schema + 4
        assert otlp_side(point.positive, -4) == prometheus_side(coarser(native.positive, steps), -4)
        assert otlp_side(point.negative, -4) == prometheus_side(coarser(native.negative, steps), -4)
        assert len(point.positive.bucket_counts) == 64 + 67 + 1
        assert point.count == 12  # every bucket of widest() is finite


def test_a_wide_spread_lowers_the_scale_only_as_far_as_needed() -> None:
    # 1 and 2**100 at schema 8: 25,600 buckets apart; halving 8 times leaves 101.
    native = NativeHistogram(8, ZT, 0, ((0, 1), (bucket_index(2.0**100, 8), 1)))
    f = family("w", child("w", (), native, 2, 1.0 + 2.0**100))
    message = ExportMetricsServiceRequest.FromString(encode_request([f], **ARGS))
    (point,) = metrics_of(message)[0].exponential_histogram.data_points
    assert point.scale == 0 and len(point.positive.bucket_counts) == 101
    assert otlp_side(point.positive, 0) == prometheus_side([(0, 1), (100, 1)], 0)
    body = json.loads(dumps_json(request_json([f], **ARGS)))
    metric = body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    (data,) = metric["exponentialHistogram"]["dataPoints"]
    assert data.get("scale", 0) == 0 and "negative" not in data  # 0: a default, omitted
    assert data["positive"]["offset"] == point.positive.offset == -1
    assert data["positive"]["bucketCounts"] == [str(c) for c in point.positive.bucket_counts]


def test_infinities_stay_out_of_the_count_the_sum_and_the_buckets() -> None:
    # Prometheus' overflow bucket (past the largest float's) holds only +-Inf, which
    # OTLP (and the OTel SDK) leaves out.
    top = overflow_index(8)
    native = NativeHistogram(8, ZT, 0, ((0, 1), (top, 2)), ((top, 4),))
    f = family("inf", child("inf", (), native, 7, math.inf))
    (point,) = metrics_of(encoded([f]))[0].exponential_histogram.data_points
    assert point.count == 1 and not point.HasField("sum")
    assert (point.positive.offset, list(point.positive.bucket_counts)) == (-1, [1])
    assert not point.HasField("negative")


def test_a_child_without_native_data_goes_in_a_classic_histogram_of_the_same_name() -> None:
    native = NativeHistogram(2, ZT, 1, positive=((4, 2),))
    classic = (("0.5", 1), ("+Inf", 3))
    f = family(
        "mix_seconds",
        child("mix_seconds", (("w", "a"),), None, 3, 2.0, classic),
        child("mix_seconds", (("w", "b"),), native, 3, 5.0),
    )
    exp, hist = metrics_of(encoded([f]))
    assert exp.name == hist.name == "mix_seconds"
    assert [p.attributes[0].value.string_value for p in exp.exponential_histogram.data_points] == [
        "b"
    ]
    (classic_point,) = hist.histogram.data_points
    assert list(classic_point.bucket_counts) == [1, 2]
    assert list(classic_point.explicit_bounds) == [0.5]
    kinds = [m.kind for m in otlp_metrics([f])]
    assert kinds == [KIND_EXPONENTIAL_HISTOGRAM, KIND_HISTOGRAM]


def test_unusable_native_data_falls_back_and_custom_counts_are_absorbed() -> None:
    bad_schema = NativeHistogram(9, ZT, 0, positive=((1, 1),))
    bad_index = NativeHistogram(0, ZT, 0, positive=((2000, 1),))
    messy = NativeHistogram(0, ZT, 1.0, positive=((3, 1), (1, 2.0), (3, 4), (2, 0), (5, -1)))
    f = family(
        "c_seconds",
        child("c_seconds", (("k", "schema"),), bad_schema, 1, 1.0),
        child("c_seconds", (("k", "index"),), bad_index, 1, 1.0),
        child("c_seconds", (("k", "messy"),), messy, 8, 1.0),
    )
    exp, hist = metrics_of(encoded([f]))
    (point,) = exp.exponential_histogram.data_points
    assert (point.positive.offset, list(point.positive.bucket_counts)) == (0, [2, 0, 5])
    assert point.zero_count == 1
    assert [p.attributes[0].value.string_value for p in hist.histogram.data_points] == [
        "schema",
        "index",
    ]
    assert [list(p.bucket_counts) for p in hist.histogram.data_points] == [[1], [1]]


def otlp_index(value: float, scale: int) -> int:
    """The OTLP bucket of ``|value|`` by definition: ``base**k < |v| <= base**(k+1)``, exactly."""
    v = Fraction(abs(value))
    k = math.floor(math.log2(v) * 2**scale) - 2  # an estimate a little low, then settled

    def above(k: int) -> bool:  # |v| > base ** k, i.e. v ** (2 ** scale) > 2 ** k
        if scale >= 0:
            return bool(v ** (2**scale) > Fraction(2) ** k)
        return bool(v > Fraction(2) ** (k * 2**-scale))

    while above(k + 1):
        k += 1
    while not above(k):
        k -= 1
    return k


def histogram_of(values: list[float], schema: int, threshold: float) -> NativeHistogram:
    positive: dict[int, int] = {}
    negative: dict[int, int] = {}
    zero = 0
    for v in values:
        if abs(v) <= threshold:
            zero += 1
        else:
            side = positive if v > 0 else negative
            i = bucket_index(v, schema)
            side[i] = side.get(i, 0) + 1
    return NativeHistogram(
        schema, threshold, zero, tuple(sorted(positive.items())), tuple(sorted(negative.items()))
    )


def powers_and_neighbours(schema: int) -> Any:
    """Values at and one ulp beside ``base ** k``, where indexing goes wrong if it does."""

    def build(k: int, shift: int, negative: bool) -> float:
        b = 2.0 ** (k / 2**schema)
        b = math.nextafter(b, math.inf) if shift > 0 else b
        b = math.nextafter(b, 0.0) if shift < 0 else b
        return -b if negative else b

    reach = 1000 * 2**schema if schema >= 0 else 1000 >> -schema  # base ** k within 2 ** +-1000
    return st.builds(build, st.integers(-reach, reach), st.sampled_from([-1, 0, 1]), st.booleans())


@st.composite
def observed(draw: Any) -> tuple[int, float, list[float]]:
    schema = draw(st.integers(-4, 8))
    finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
    values = draw(st.lists(st.one_of(finite, powers_and_neighbours(schema)), max_size=30))
    return schema, draw(st.sampled_from([0.0, ZT, 1e-3])), values


@settings(max_examples=60, deadline=None)
@given(observed())
def test_observed_values_land_in_the_otlp_bucket_of_their_definition(
    case: tuple[int, float, list[float]],
) -> None:
    schema, threshold, values = case
    native = histogram_of(values, schema, threshold)
    f = family("v", child("v", (), native, len(values), math.fsum(values)))
    (point,) = metrics_of(encoded([f]))[0].exponential_histogram.data_points
    schema = point.scale  # lowered when the values spread past MAX_DENSE buckets
    for side, sign in ((point.positive, 1), (point.negative, -1)):
        want: dict[int, int] = {}
        for v in values:
            if abs(v) > threshold and v * sign > 0:
                k = otlp_index(v, schema)
                want[k] = want.get(k, 0) + 1
        got = {side.offset + j: c for j, c in enumerate(side.bucket_counts) if c}
        assert got == want
    assert point.zero_count == sum(1 for v in values if abs(v) <= threshold)


@st.composite
def bucket_maps(draw: Any) -> tuple[int, NativeHistogram, int, float]:
    schema = draw(st.integers(-4, 8))
    lo, hi = bucket_index(5e-324, schema), overflow_index(schema)
    index = st.one_of(st.integers(-40, 40), st.integers(-3000, 3000)).map(
        lambda i: min(max(i, lo), hi)
    )
    count = st.integers(1, 2**64 - 1) | st.integers(1, 1000)
    pos = draw(st.dictionaries(index, count, max_size=12))
    neg = draw(st.dictionaries(index, count, max_size=12))
    zero = draw(st.integers(0, 2**64 - 1) | st.just(0))
    threshold = draw(st.sampled_from([0.0, ZT, 0.5, 1e-300]))
    total = draw(st.integers(0, 2**64 - 1))
    total_sum = draw(st.floats() | st.sampled_from([-0.0, 0.0]))
    native = NativeHistogram(
        schema, threshold, zero, tuple(sorted(pos.items())), tuple(sorted(neg.items()))
    )
    return schema, native, total, total_sum


@settings(max_examples=80, deadline=None)
@given(bucket_maps())
def test_random_bucket_maps_round_trip_at_the_same_bounds(
    case: tuple[int, NativeHistogram, int, float],
) -> None:
    schema, native, total, total_sum = case
    f = family("r", child("r", (("a", "b"),), native, total, total_sum))
    (metric,) = metrics_of(encoded([f]))
    (point,) = metric.exponential_histogram.data_points
    scale, steps = point.scale, schema - point.scale
    assert scale <= schema and steps >= 0
    assert point.zero_count == native.zero_count and point.zero_threshold == native.zero_threshold
    assert point.HasField("sum") is math.isfinite(total_sum)
    if math.isfinite(total_sum):
        assert point.sum == total_sum
    finite = native.zero_count
    for side, given_pairs in ((point.positive, native.positive), (point.negative, native.negative)):
        pairs = [(i, c) for i, c in given_pairs if i != overflow_index(schema)]  # +-Inf only
        merged = coarser(pairs, steps)
        finite += sum(c for _, c in pairs)
        assert {k: min(v, 2**64 - 1) for k, v in otlp_side(side, scale).items()} == {
            k: min(v, 2**64 - 1) for k, v in prometheus_side(merged, scale).items()
        }
        if merged:  # dense from the first populated bucket to the last, at most MAX_DENSE
            assert side.bucket_counts[0] and side.bucket_counts[-1]
            assert len(side.bucket_counts) == merged[-1][0] - merged[0][0] + 1 <= 160 or (
                scale == -4
            )
    assert point.count == min(finite, 2**64 - 1)
    (model_point,) = otlp_metrics([f])[0].points
    assert isinstance(model_point, ExponentialPoint)


def test_a_live_native_histogram_vec_exports_its_observations_exactly() -> None:
    h = dm.HistogramVec("rpc_seconds", "Latency.", ["route"], native=True, schema=2)
    values = [0.0, 1e-3, 0.25, 0.3, 1.0, 1.5, 1.5, -2.0, 1e6, math.inf, math.nan]
    for v in values:
        h.with_label_values("/a").observe(v)
    h.with_label_values("/b")  # a child with no observations
    reg = dm.Registry()
    reg.register(h)
    (metric,) = metrics_of(encoded(reg.collect()))
    a, b = metric.exponential_histogram.data_points
    assert [p.attributes[0].value.string_value for p in (a, b)] == ["/a", "/b"]
    # inf and nan are left out of the count, and make the sum non-finite: unset.
    assert a.count == len(values) - 2 and not a.HasField("sum") and a.scale == 2
    assert a.zero_count == 1
    finite = [v for v in values if math.isfinite(v) and v != 0]
    for side, sign in ((a.positive, 1), (a.negative, -1)):
        want: dict[int, int] = {}
        for v in finite:
            if v * sign > 0:
                want[otlp_index(v, 2)] = want.get(otlp_index(v, 2), 0) + 1
        assert {side.offset + j: c for j, c in enumerate(side.bucket_counts) if c} == want
    assert b.count == 0 and b.sum == 0.0 and not b.HasField("positive")
