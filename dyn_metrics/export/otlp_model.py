"""Families as an OTLP ``ExportMetricsServiceRequest`` in protobuf (the gRPC and HTTP body).

:func:`encode_request` writes the :class:`Metric` records of
:func:`~.otlp_mapping.otlp_metrics` (Dynamo's mapping, native histograms as
ExponentialHistogram; re-exported here with its records) as protobuf;
:mod:`.otlp_json` writes the same request as OTLP/JSON. No I/O. Every point
carries the same ``start_time_unix_nano`` (gauges too, as Dynamo) and
``time_unix_nano``. Field numbers: opentelemetry-proto's ``.proto`` files
(``metrics/v1``, ``common/v1``, ``resource/v1``, ``collector/metrics/v1``).
"""

import struct
from collections.abc import Iterable, Mapping

from ..errors import InvalidValueError
from ..exposition.protowire import (
    FIXED64,
    LENGTH_DELIMITED,
    VARINT,
    key,
    opt_double,
    varint,
    zigzag,
)
from ..model import Family, Labels
from .otlp_mapping import KIND_EXPONENTIAL_HISTOGRAM as KIND_EXPONENTIAL_HISTOGRAM
from .otlp_mapping import KIND_GAUGE as KIND_GAUGE
from .otlp_mapping import KIND_HISTOGRAM as KIND_HISTOGRAM
from .otlp_mapping import KIND_SUM as KIND_SUM
from .otlp_mapping import KIND_SUMMARY as KIND_SUMMARY
from .otlp_mapping import ExponentialPoint as ExponentialPoint
from .otlp_mapping import HistogramPoint as HistogramPoint
from .otlp_mapping import Metric as Metric
from .otlp_mapping import NumberPoint as NumberPoint
from .otlp_mapping import Point as Point
from .otlp_mapping import SummaryPoint as SummaryPoint
from .otlp_mapping import count as count
from .otlp_mapping import number as number
from .otlp_mapping import otlp_metrics as otlp_metrics

SCOPE_NAME = "dynamo.runtime.metrics"
SERVICE_NAME = "service.name"
#: The semantic conventions' ``service.name`` when none is configured.
UNKNOWN_SERVICE = "unknown_service"

# AggregationTemporality (metrics.proto).
AGGREGATION_TEMPORALITY_CUMULATIVE = 2

# collector/metrics/v1/metrics_service.proto
EXPORT_METRICS_SERVICE_REQUEST_RESOURCE_METRICS = 1
# metrics/v1/metrics.proto
RESOURCE_METRICS_RESOURCE = 1
RESOURCE_METRICS_SCOPE_METRICS = 2
SCOPE_METRICS_SCOPE = 1
SCOPE_METRICS_METRICS = 2
METRIC_NAME = 1
METRIC_DESCRIPTION = 2
METRIC_GAUGE = 5
METRIC_SUM = 7
METRIC_HISTOGRAM = 9
METRIC_EXPONENTIAL_HISTOGRAM = 10
METRIC_SUMMARY = 11
# Every data message holds its points in field 1; Sum and both histograms their
# temporality in field 2.
DATA_POINTS = 1
AGGREGATION_TEMPORALITY = 2
SUM_IS_MONOTONIC = 3
# Every point holds its times (fixed64) in fields 2 and 3.
POINT_START_TIME_UNIX_NANO = 2
POINT_TIME_UNIX_NANO = 3
NUMBER_DATA_POINT_AS_DOUBLE = 4  # double, oneof value
NUMBER_DATA_POINT_AS_INT = 6  # sfixed64, oneof value
NUMBER_DATA_POINT_ATTRIBUTES = 7
HISTOGRAM_DATA_POINT_COUNT = 4  # fixed64
HISTOGRAM_DATA_POINT_SUM = 5  # optional double
HISTOGRAM_DATA_POINT_BUCKET_COUNTS = 6  # packed fixed64
HISTOGRAM_DATA_POINT_EXPLICIT_BOUNDS = 7  # packed double
HISTOGRAM_DATA_POINT_ATTRIBUTES = 9
EXPONENTIAL_POINT_ATTRIBUTES = 1
EXPONENTIAL_POINT_COUNT = 4  # fixed64
EXPONENTIAL_POINT_SUM = 5  # optional double
EXPONENTIAL_POINT_SCALE = 6  # sint32
EXPONENTIAL_POINT_ZERO_COUNT = 7  # fixed64
EXPONENTIAL_POINT_POSITIVE = 8  # Buckets
EXPONENTIAL_POINT_NEGATIVE = 9  # Buckets
EXPONENTIAL_POINT_ZERO_THRESHOLD = 14  # double
BUCKETS_OFFSET = 1  # sint32
BUCKETS_BUCKET_COUNTS = 2  # packed uint64
SUMMARY_DATA_POINT_COUNT = 4  # fixed64
SUMMARY_DATA_POINT_SUM = 5  # double
SUMMARY_DATA_POINT_QUANTILE_VALUES = 6
SUMMARY_DATA_POINT_ATTRIBUTES = 7
VALUE_AT_QUANTILE_QUANTILE = 1
VALUE_AT_QUANTILE_VALUE = 2
# common/v1/common.proto
INSTRUMENTATION_SCOPE_NAME = 1
INSTRUMENTATION_SCOPE_VERSION = 2
KEY_VALUE_KEY = 1
KEY_VALUE_VALUE = 2
ANY_VALUE_STRING_VALUE = 1
# resource/v1/resource.proto
RESOURCE_ATTRIBUTES = 1

_UINT64_MAX = (1 << 64) - 1


def validate_request_args(
    resource_attributes: Mapping[str, str],
    scope_name: str,
    scope_version: str,
    start_time_unix_nano: int,
    time_unix_nano: int,
) -> list[tuple[str, str]]:
    """The resource attributes, ``service.name`` first (``unknown_service``, the semantic
    conventions' default, if not given); :class:`~dyn_metrics.errors.InvalidValueError`
    for a key, value, scope name or version that is not a str, or a time not in 0..2**64-1.
    """
    for what, text in (("scope name", scope_name), ("scope version", scope_version)):
        if not isinstance(text, str):
            raise InvalidValueError(f"otlp {what} must be a str, got {text!r}")
    times = {"start_time_unix_nano": start_time_unix_nano, "time_unix_nano": time_unix_nano}
    for what, t in times.items():
        if type(t) is not int or not 0 <= t <= _UINT64_MAX:
            raise InvalidValueError(f"otlp {what} must be an int in 0..2**64-1, got {t!r}")
    pairs = [(SERVICE_NAME, UNKNOWN_SERVICE)]
    for k, v in resource_attributes.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidValueError(f"otlp resource attributes must be str: str, got {k!r}: {v!r}")
        if k == SERVICE_NAME:
            pairs[0] = (k, v)
        else:
            pairs.append((k, v))
    return pairs


_PACK_D = struct.Struct("<d").pack
_PACK_Q = struct.Struct("<Q").pack
_PACK_q = struct.Struct("<q").pack


# Length prefixes below 128 (nearly all of them here) come from a table, not a call.
_SMALL = [bytes((n,)) for n in range(128)]


def _ld(tag: bytes, payload: bytes) -> bytes:
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else varint(n)) + payload


def _string(field: int, text: str) -> bytes:
    return _ld(key(field, LENGTH_DELIMITED), text.encode("utf-8"))


_KV_KEY = key(KEY_VALUE_KEY, LENGTH_DELIMITED)
_KV_VALUE = key(KEY_VALUE_VALUE, LENGTH_DELIMITED)
_ANY_STRING = key(ANY_VALUE_STRING_VALUE, LENGTH_DELIMITED)


class _Attributes:
    """Label pairs as repeated ``KeyValue`` fields; each pair and name encoded once per call."""

    def __init__(self, field: int) -> None:
        self.tag = key(field, LENGTH_DELIMITED)
        self.cache: dict[tuple[str, str], bytes] = {}
        self.names: dict[str, bytes] = {}

    def pair(self, pair: tuple[str, str]) -> bytes:
        name = self.names.get(pair[0])
        if name is None:
            name = self.names[pair[0]] = _ld(_KV_KEY, pair[0].encode("utf-8"))
        value = _ld(_KV_VALUE, _ld(_ANY_STRING, pair[1].encode("utf-8")))
        kv = self.cache[pair] = _ld(self.tag, name + value)
        return kv

    def __call__(self, labels: Labels) -> bytes:
        cache = self.cache
        return b"".join([cache.get(p) or self.pair(p) for p in labels])


_AS_DOUBLE = key(NUMBER_DATA_POINT_AS_DOUBLE, FIXED64)
_AS_INT = key(NUMBER_DATA_POINT_AS_INT, FIXED64)
_POINT_TAG = key(DATA_POINTS, LENGTH_DELIMITED)
_CUMULATIVE = key(AGGREGATION_TEMPORALITY, VARINT) + varint(AGGREGATION_TEMPORALITY_CUMULATIVE)
_MONOTONIC = key(SUM_IS_MONOTONIC, VARINT) + varint(1)
_DATA_TAGS = {
    KIND_GAUGE: key(METRIC_GAUGE, LENGTH_DELIMITED),
    KIND_SUM: key(METRIC_SUM, LENGTH_DELIMITED),
    KIND_HISTOGRAM: key(METRIC_HISTOGRAM, LENGTH_DELIMITED),
    KIND_EXPONENTIAL_HISTOGRAM: key(METRIC_EXPONENTIAL_HISTOGRAM, LENGTH_DELIMITED),
    KIND_SUMMARY: key(METRIC_SUMMARY, LENGTH_DELIMITED),
}
# After the points: what each kind's message adds.
_DATA_TRAILERS = {
    KIND_GAUGE: b"",
    KIND_SUM: _CUMULATIVE + _MONOTONIC,
    KIND_HISTOGRAM: _CUMULATIVE,
    KIND_EXPONENTIAL_HISTOGRAM: _CUMULATIVE,
    KIND_SUMMARY: b"",
}
_EXP_COUNT = key(EXPONENTIAL_POINT_COUNT, FIXED64)
_EXP_SUM = key(EXPONENTIAL_POINT_SUM, FIXED64)
_EXP_SCALE = key(EXPONENTIAL_POINT_SCALE, VARINT)
_EXP_ZERO_COUNT = key(EXPONENTIAL_POINT_ZERO_COUNT, FIXED64)
_EXP_POSITIVE = key(EXPONENTIAL_POINT_POSITIVE, LENGTH_DELIMITED)
_EXP_NEGATIVE = key(EXPONENTIAL_POINT_NEGATIVE, LENGTH_DELIMITED)
_BUCKETS_OFFSET = key(BUCKETS_OFFSET, VARINT)
_BUCKETS_COUNTS = key(BUCKETS_BUCKET_COUNTS, LENGTH_DELIMITED)


def _buckets(tag: bytes, offset: int, counts: tuple[int, ...]) -> bytes:
    """One side's ``Buckets`` (left out when empty, as the OTel SDK does)."""
    if not counts:
        return b""
    small = _SMALL
    packed = b"".join([small[c] if c < 128 else varint(c) for c in counts])
    body = (_BUCKETS_OFFSET + varint(zigzag(offset)) if offset else b"") + _ld(
        _BUCKETS_COUNTS, packed
    )
    return _ld(tag, body)


def _exponential_point(p: ExponentialPoint, attrs: bytes, times: bytes) -> bytes:
    body = attrs + times
    if p.sample_count:
        body += _EXP_COUNT + _PACK_Q(p.sample_count)
    if p.sample_sum is not None:  # optional: written whenever set, +0.0 included
        body += _EXP_SUM + _PACK_D(p.sample_sum)
    if p.scale:  # sint32: within int32 its zigzag equals sint64's
        body += _EXP_SCALE + varint(zigzag(p.scale))
    if p.zero_count:
        body += _EXP_ZERO_COUNT + _PACK_Q(p.zero_count)
    body += _buckets(_EXP_POSITIVE, p.positive_offset, p.positive_counts)
    body += _buckets(_EXP_NEGATIVE, p.negative_offset, p.negative_counts)
    return body + opt_double(EXPONENTIAL_POINT_ZERO_THRESHOLD, p.zero_threshold)


def _encode_metric(metric: Metric, times: bytes, number_attrs: _Attributes) -> bytes:
    points: list[bytes] = []
    append = points.append
    if metric.kind in (KIND_GAUGE, KIND_SUM):
        for p in metric.points:
            value = p.value  # type: ignore[union-attr]
            if type(value) is int:
                v = _AS_INT + _PACK_q(value)
            else:
                v = _AS_DOUBLE + _PACK_D(value)
            append(_ld(_POINT_TAG, number_attrs(p.attributes) + times + v))
    elif metric.kind == KIND_HISTOGRAM:
        attrs = _Attributes(HISTOGRAM_DATA_POINT_ATTRIBUTES)
        for h in metric.points:
            assert isinstance(h, HistogramPoint)
            body = attrs(h.attributes) + times
            if h.sample_count:
                body += key(HISTOGRAM_DATA_POINT_COUNT, FIXED64) + _PACK_Q(h.sample_count)
            body += key(HISTOGRAM_DATA_POINT_SUM, FIXED64) + _PACK_D(h.sample_sum)
            n = len(h.bucket_counts)
            body += _ld(
                key(HISTOGRAM_DATA_POINT_BUCKET_COUNTS, LENGTH_DELIMITED),
                struct.pack(f"<{n}Q", *h.bucket_counts),
            )
            if h.bounds:
                body += _ld(
                    key(HISTOGRAM_DATA_POINT_EXPLICIT_BOUNDS, LENGTH_DELIMITED),
                    struct.pack(f"<{len(h.bounds)}d", *h.bounds),
                )
            append(_ld(_POINT_TAG, body))
    elif metric.kind == KIND_EXPONENTIAL_HISTOGRAM:
        attrs = _Attributes(EXPONENTIAL_POINT_ATTRIBUTES)
        for e in metric.points:
            assert isinstance(e, ExponentialPoint)
            append(_ld(_POINT_TAG, _exponential_point(e, attrs(e.attributes), times)))
    else:
        attrs = _Attributes(SUMMARY_DATA_POINT_ATTRIBUTES)
        quantile_tag = key(SUMMARY_DATA_POINT_QUANTILE_VALUES, LENGTH_DELIMITED)
        for s in metric.points:
            assert isinstance(s, SummaryPoint)
            body = attrs(s.attributes) + times
            if s.sample_count:
                body += key(SUMMARY_DATA_POINT_COUNT, FIXED64) + _PACK_Q(s.sample_count)
            body += opt_double(SUMMARY_DATA_POINT_SUM, s.sample_sum)
            for quantile, value in s.quantiles:
                pair = opt_double(VALUE_AT_QUANTILE_QUANTILE, quantile)
                pair += opt_double(VALUE_AT_QUANTILE_VALUE, value)
                body += _ld(quantile_tag, pair)
            append(_ld(_POINT_TAG, body))
    data = b"".join(points) + _DATA_TRAILERS[metric.kind]
    head = _string(METRIC_NAME, metric.name)
    if metric.description:
        head += _string(METRIC_DESCRIPTION, metric.description)
    return head + _ld(_DATA_TAGS[metric.kind], data)


def encode_request(
    families: Iterable[Family],
    *,
    resource_attributes: Mapping[str, str],
    scope_name: str = SCOPE_NAME,
    scope_version: str = "",
    start_time_unix_nano: int,
    time_unix_nano: int,
) -> bytes:
    """``families`` as an encoded OTLP ``ExportMetricsServiceRequest`` (protobuf bytes).

    One ``ResourceMetrics`` (attributes: ``service.name`` first, then
    ``resource_attributes`` in their order; see :func:`validate_request_args`)
    holding one ``ScopeMetrics`` (``scope_name``, ``scope_version``) with the
    metrics of :func:`otlp_metrics`. Every point gets the same two times.
    Raises :class:`~dyn_metrics.errors.InvalidValueError` for a bad argument,
    before encoding anything.
    """
    pairs = validate_request_args(
        resource_attributes, scope_name, scope_version, start_time_unix_nano, time_unix_nano
    )
    # One encoding of the times serves every point; proto3 leaves out a zero fixed64.
    times = b""
    if start_time_unix_nano:
        times += key(POINT_START_TIME_UNIX_NANO, FIXED64) + _PACK_Q(start_time_unix_nano)
    if time_unix_nano:
        times += key(POINT_TIME_UNIX_NANO, FIXED64) + _PACK_Q(time_unix_nano)
    number_attrs = _Attributes(NUMBER_DATA_POINT_ATTRIBUTES)
    metric_tag = key(SCOPE_METRICS_METRICS, LENGTH_DELIMITED)
    metrics = b"".join(
        _ld(metric_tag, _encode_metric(m, times, number_attrs)) for m in otlp_metrics(families)
    )
    scope = b""
    if scope_name:
        scope += _string(INSTRUMENTATION_SCOPE_NAME, scope_name)
    if scope_version:
        scope += _string(INSTRUMENTATION_SCOPE_VERSION, scope_version)
    scope_metrics = _ld(key(SCOPE_METRICS_SCOPE, LENGTH_DELIMITED), scope) + metrics
    resource = _Attributes(RESOURCE_ATTRIBUTES)(tuple(pairs))
    resource_metrics = _ld(key(RESOURCE_METRICS_RESOURCE, LENGTH_DELIMITED), resource) + _ld(
        key(RESOURCE_METRICS_SCOPE_METRICS, LENGTH_DELIMITED), scope_metrics
    )
    return _ld(
        key(EXPORT_METRICS_SERVICE_REQUEST_RESOURCE_METRICS, LENGTH_DELIMITED), resource_metrics
    )
