"""Families as an OTLP ``ExportMetricsServiceRequest``, mapped as Dynamo maps them.

:func:`otlp_metrics` turns :class:`~dyn_metrics.model.Family` records into plain
:class:`Metric` records; :func:`encode_request` writes those as protobuf (the gRPC and
HTTP/protobuf body), :mod:`.otlp_json` as OTLP/JSON. No I/O. The mapping (Dynamo's
``otlp_export.rs`` and ``prom_typed.rs``; the OTel Prometheus-compatibility fallbacks):

* counter -> monotonic cumulative ``Sum``, named after its ``_total`` sample if any;
  gauge, untyped, unknown (any other word) -> ``Gauge``; summary -> ``Summary``;
* histogram -> cumulative ``Histogram``: finite ``le`` bounds, per-bucket counts, the
  last ``_count`` minus the last finite cumulative count (one more count than bounds);
  ``sum`` always set; a bucket below the one before it (a broken collector) counts 0;
* info -> ``Gauge`` named after its sample (``build_info``), value 1 with its labels;
  stateset -> ``Gauge``, one point per state (1 or 0); gaugehistogram -> one ``Gauge``
  per sample name (its counts may fall); ``_created`` samples -> a ``Gauge`` of their own.

Points carry the sample's labels (``le``/``quantile`` removed) as string attributes and
the same ``start_time_unix_nano`` (gauges too, as Dynamo) and ``time_unix_nano``;
description = HELP, unit empty, no exemplars, families without samples left out (all as
Dynamo). One difference: Dynamo sends doubles only; an ``int`` within int64 goes here as
``as_int`` (int metrics are exact). Field numbers: opentelemetry-proto's ``.proto`` files.
"""

import math
import struct
from collections.abc import Iterable, Mapping
from typing import NamedTuple, Union

from ..errors import InvalidValueError
from ..model import (
    COUNTER,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    STATESET,
    SUMMARY,
    Family,
    Labels,
    Number,
    Sample,
)
from .protobuf import FIXED64, LENGTH_DELIMITED, VARINT, key, opt_double, varint

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
METRIC_SUMMARY = 11
# Gauge, Sum, Histogram and Summary hold their points in field 1; Sum and Histogram
# their temporality in field 2.
DATA_POINTS = 1
AGGREGATION_TEMPORALITY = 2
SUM_IS_MONOTONIC = 3
# Number, Histogram and Summary points hold their times (fixed64) in fields 2 and 3.
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

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

# The Metric oneof each kind fills.
KIND_GAUGE = "gauge"
KIND_SUM = "sum"
KIND_HISTOGRAM = "histogram"
KIND_SUMMARY = "summary"


class NumberPoint(NamedTuple):
    """A Gauge or Sum point; ``value`` an int within int64 (``as_int``) or a float."""

    attributes: Labels
    value: Number


class HistogramPoint(NamedTuple):
    """A Histogram point: per-bucket counts, ``len(bucket_counts) == len(bounds) + 1``."""

    attributes: Labels
    sample_count: int
    sample_sum: float
    bucket_counts: tuple[int, ...]
    bounds: tuple[float, ...]


class SummaryPoint(NamedTuple):
    """A Summary point: ``quantiles`` as ``(quantile, value)`` pairs."""

    attributes: Labels
    sample_count: int
    sample_sum: float
    quantiles: tuple[tuple[float, float], ...]


Point = Union[NumberPoint, HistogramPoint, SummaryPoint]


class Metric(NamedTuple):
    """One OTLP ``Metric``: ``kind`` is one of the ``KIND_*`` words."""

    name: str
    description: str
    kind: str
    points: tuple[Point, ...]


def number(value: Number) -> Number:
    """``value`` as OTLP carries it: an int within int64 stays, anything else a float."""
    if type(value) is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        try:
            return float(value)
        except OverflowError:  # beyond the largest double
            return math.inf if value > 0 else -math.inf
    return float(value)


def count(value: Number) -> int:
    """A count as uint64, saturating as Dynamo's float-to-u64 cast does (NaN and < 0 -> 0)."""
    if type(value) is not int:
        if value != value or value <= 0:
            return 0
        if value >= _UINT64_MAX:
            return _UINT64_MAX
        return int(value)
    return min(max(value, 0), _UINT64_MAX)


def _gauges(samples: Iterable[Sample], description: str) -> list[Metric]:
    """One Gauge per sample name, in order of first appearance."""
    by_name: dict[str, list[Point]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(NumberPoint(s.labels, number(s.value)))
    return [Metric(n, description, KIND_GAUGE, tuple(ps)) for n, ps in by_name.items()]


_Series = dict[Labels, tuple[list[tuple[float, Number]], list[Number], list[Number]]]


def _series(family: Family, samples: list[Sample], label: str, suffix: str) -> _Series:
    """``{labels without label: ([(label as float, value)], [_sum], [_count])}``, in order."""
    out: _Series = {}
    for s in samples:
        if s.name == family.name + "_sum" or s.name == family.name + "_count":
            row = out.setdefault(s.labels, ([], [], []))
            (row[1] if s.name.endswith("_sum") else row[2]).append(s.value)
        elif s.name == family.name + suffix:
            row = out.setdefault(tuple(p for p in s.labels if p[0] != label), ([], [], []))
            text = next((v for k, v in s.labels if k == label), "")
            try:
                row[0].append((float(text), s.value))
            except ValueError:
                row[0].append((math.nan, s.value))
    return out


def _histogram_points(family: Family, samples: list[Sample]) -> tuple[Point, ...]:
    points: list[Point] = []
    for labels, (buckets, sums, counts) in _series(family, samples, "le", "_bucket").items():
        bounds: list[float] = []
        per_bucket: list[int] = []
        previous = 0
        inf_count: Number = 0
        for bound, value in buckets:
            if bound == math.inf:
                inf_count = value
            if math.isfinite(bound):
                cumulative = count(value)
                per_bucket.append(max(cumulative - previous, 0))
                previous = cumulative
                bounds.append(bound)
        total = count(counts[-1] if counts else inf_count)
        per_bucket.append(max(total - previous, 0))
        total_sum = float(sums[-1]) if sums else 0.0
        points.append(HistogramPoint(labels, total, total_sum, tuple(per_bucket), tuple(bounds)))
    return tuple(points)


def _summary_points(family: Family, samples: list[Sample]) -> tuple[Point, ...]:
    return tuple(
        SummaryPoint(
            labels,
            count(counts[-1]) if counts else 0,
            float(sums[-1]) if sums else 0.0,
            tuple((q, float(v)) for q, v in quantiles),
        )
        for labels, (quantiles, sums, counts) in _series(family, samples, "quantile", "").items()
    )


def otlp_metrics(families: Iterable[Family]) -> list[Metric]:
    """The OTLP metrics of ``families``, in their order (module docstring: the mapping)."""
    out: list[Metric] = []
    points: tuple[Point, ...]
    for family in families:
        created = family.name[: -6 if family.name.endswith("_total") else None] + "_created"
        samples = [s for s in family.samples if s.name != created]
        description = family.help
        t = family.type
        if samples:
            if t == COUNTER:
                total = family.name if family.name.endswith("_total") else family.name + "_total"
                name = total if any(s.name == total for s in samples) else family.name
                points = tuple(NumberPoint(s.labels, number(s.value)) for s in samples)
                out.append(Metric(name, description, KIND_SUM, points))
            elif t == HISTOGRAM:
                points = _histogram_points(family, samples)
                out.append(Metric(family.name, description, KIND_HISTOGRAM, points))
            elif t == SUMMARY:
                points = _summary_points(family, samples)
                out.append(Metric(family.name, description, KIND_SUMMARY, points))
            elif t in (INFO, STATESET, GAUGEHISTOGRAM):
                out.extend(_gauges(samples, description))
            else:  # gauge, untyped, unknown and any other word: Dynamo's gauge
                points = tuple(NumberPoint(s.labels, number(s.value)) for s in samples)
                out.append(Metric(family.name, description, KIND_GAUGE, points))
        if len(samples) < len(family.samples):
            out.extend(_gauges((s for s in family.samples if s.name == created), description))
    return out


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
    KIND_SUMMARY: key(METRIC_SUMMARY, LENGTH_DELIMITED),
}
# After the points: what each kind's message adds.
_DATA_TRAILERS = {
    KIND_GAUGE: b"",
    KIND_SUM: _CUMULATIVE + _MONOTONIC,
    KIND_HISTOGRAM: _CUMULATIVE,
    KIND_SUMMARY: b"",
}


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
