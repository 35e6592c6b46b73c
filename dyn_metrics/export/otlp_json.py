"""Families as an OTLP/JSON ``ExportMetricsServiceRequest`` (the ``http/json`` body).

:func:`request_json` gives the request as a ``dict`` of the same content as
:func:`~.otlp_model.encode_request` writes in protobuf; :func:`dumps_json`
serialises it. OTLP's JSON rules (proto3 JSON with OTLP's deviations): keys
in lowerCamelCase; enums as integers; 64-bit integers (times, counts,
``asInt``) as decimal strings; non-finite doubles as ``"NaN"``,
``"Infinity"``, ``"-Infinity"``; fields at their default value left out, as
canonical proto3 JSON does (so ``json_format.MessageToDict`` of the parsed
body equals the dict), except those with presence: a point's ``asDouble`` /
``asInt`` and a histogram's ``sum`` (an exponential histogram's when set) are
always written; ``scale`` and ``offset`` (sint32) are numbers, an empty bucket
side is left out. No trace or span ids are sent (no exemplars), so OTLP's hex
rule for ids does not arise.
"""

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Union

from ..model import Family, Labels
from .otlp_model import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    KIND_EXPONENTIAL_HISTOGRAM,
    KIND_GAUGE,
    KIND_HISTOGRAM,
    KIND_SUM,
    KIND_SUMMARY,
    SCOPE_NAME,
    ExponentialPoint,
    HistogramPoint,
    Metric,
    NumberPoint,
    SummaryPoint,
    otlp_metrics,
    validate_request_args,
)

JSONValue = Any


def json_double(value: float) -> Union[float, str]:
    """A double as OTLP/JSON writes it: a number, or "NaN", "Infinity", "-Infinity"."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _attributes(labels: Labels) -> list[dict[str, JSONValue]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in labels]


def _is_default_double(value: float) -> bool:
    # +0.0 only: -0.0 and NaN are not proto3's default.
    return value == 0 and math.copysign(1.0, value) > 0


# The Metric oneof member each kind fills, as OTLP/JSON names it.
_DATA_KEYS = {
    KIND_GAUGE: "gauge",
    KIND_SUM: "sum",
    KIND_HISTOGRAM: "histogram",
    KIND_EXPONENTIAL_HISTOGRAM: "exponentialHistogram",
    KIND_SUMMARY: "summary",
}


def _buckets(offset: int, counts: tuple[int, ...]) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {"offset": offset} if offset else {}
    out["bucketCounts"] = [str(c) for c in counts]
    return out


def _exponential(d: dict[str, JSONValue], p: ExponentialPoint) -> None:
    if p.sample_count:
        d["count"] = str(p.sample_count)
    if p.sample_sum is not None:
        d["sum"] = json_double(p.sample_sum)
    if p.scale:
        d["scale"] = p.scale
    if p.zero_count:
        d["zeroCount"] = str(p.zero_count)
    if p.positive_counts:
        d["positive"] = _buckets(p.positive_offset, p.positive_counts)
    if p.negative_counts:
        d["negative"] = _buckets(p.negative_offset, p.negative_counts)
    if not _is_default_double(p.zero_threshold):
        d["zeroThreshold"] = json_double(p.zero_threshold)


def _point_head(attributes: Labels, times: dict[str, str]) -> dict[str, JSONValue]:
    head: dict[str, JSONValue] = {}
    if attributes:
        head["attributes"] = _attributes(attributes)
    head.update(times)
    return head


def _metric(metric: Metric, times: dict[str, str]) -> dict[str, JSONValue]:
    points: list[dict[str, JSONValue]] = []
    for p in metric.points:
        d = _point_head(p.attributes, times)
        if isinstance(p, NumberPoint):
            if type(p.value) is int:
                d["asInt"] = str(p.value)
            else:
                d["asDouble"] = json_double(p.value)
        elif isinstance(p, HistogramPoint):
            if p.sample_count:
                d["count"] = str(p.sample_count)
            d["sum"] = json_double(p.sample_sum)
            d["bucketCounts"] = [str(c) for c in p.bucket_counts]
            if p.bounds:
                d["explicitBounds"] = [json_double(b) for b in p.bounds]
        elif isinstance(p, ExponentialPoint):
            _exponential(d, p)
        else:
            assert isinstance(p, SummaryPoint)
            if p.sample_count:
                d["count"] = str(p.sample_count)
            if not _is_default_double(p.sample_sum):
                d["sum"] = json_double(p.sample_sum)
            if p.quantiles:
                quantiles = []
                for q, v in p.quantiles:
                    pair: dict[str, JSONValue] = {}
                    if not _is_default_double(q):
                        pair["quantile"] = json_double(q)
                    if not _is_default_double(v):
                        pair["value"] = json_double(v)
                    quantiles.append(pair)
                d["quantileValues"] = quantiles
        points.append(d)
    data: dict[str, JSONValue] = {"dataPoints": points}
    if metric.kind in (KIND_SUM, KIND_HISTOGRAM, KIND_EXPONENTIAL_HISTOGRAM):
        data["aggregationTemporality"] = AGGREGATION_TEMPORALITY_CUMULATIVE
    if metric.kind == KIND_SUM:
        data["isMonotonic"] = True
    out: dict[str, JSONValue] = {"name": metric.name}
    if metric.description:
        out["description"] = metric.description
    out[_DATA_KEYS[metric.kind]] = data
    return out


def request_json(
    families: Iterable[Family],
    *,
    resource_attributes: Mapping[str, str],
    scope_name: str = SCOPE_NAME,
    scope_version: str = "",
    start_time_unix_nano: int,
    time_unix_nano: int,
) -> dict[str, JSONValue]:
    """The OTLP/JSON form of :func:`~.otlp_model.encode_request`'s request, as a dict.

    Same arguments, same content, same errors
    (:class:`~dyn_metrics.errors.InvalidValueError` before anything is built).
    """
    pairs = validate_request_args(
        resource_attributes, scope_name, scope_version, start_time_unix_nano, time_unix_nano
    )
    times: dict[str, str] = {}
    if start_time_unix_nano:
        times["startTimeUnixNano"] = str(start_time_unix_nano)
    if time_unix_nano:
        times["timeUnixNano"] = str(time_unix_nano)
    scope: dict[str, JSONValue] = {}
    if scope_name:
        scope["name"] = scope_name
    if scope_version:
        scope["version"] = scope_version
    scope_metrics: dict[str, JSONValue] = {"scope": scope}
    metrics = [_metric(m, times) for m in otlp_metrics(families)]
    if metrics:
        scope_metrics["metrics"] = metrics
    resource = {"attributes": _attributes(tuple(pairs))}
    return {"resourceMetrics": [{"resource": resource, "scopeMetrics": [scope_metrics]}]}


def dumps_json(request: Mapping[str, JSONValue]) -> bytes:
    """``request`` as compact UTF-8 JSON; a bare ``NaN``/``Infinity`` raises ``ValueError``."""
    return json.dumps(request, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )
