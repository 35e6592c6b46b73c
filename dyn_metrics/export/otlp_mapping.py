"""Families as OTLP ``Metric`` records, mapped as Dynamo maps them; no encoding, no I/O.

:func:`otlp_metrics` turns :class:`~dyn_metrics.model.Family` records into plain
:class:`Metric` records, which :mod:`.otlp_model` writes as protobuf and
:mod:`.otlp_json` as OTLP/JSON. The mapping (Dynamo's ``otlp_export.rs`` and
``prom_typed.rs``; the OTel Prometheus-compatibility fallbacks):

* counter -> monotonic cumulative ``Sum``, named after its ``_total`` sample if any;
  gauge, untyped, unknown (any other word) -> ``Gauge``; summary -> ``Summary``;
* histogram -> cumulative ``Histogram``: finite ``le`` bounds, per-bucket counts, the
  last ``_count`` minus the last finite cumulative count (one more count than bounds);
  ``sum`` always set; a bucket below the one before it (a broken collector) counts 0;
* native histogram (children whose ``_count`` sample carries ``Sample.native``) ->
  cumulative ``ExponentialHistogram`` (:class:`ExponentialPoint` gives the rules);
* info -> ``Gauge`` named after its sample (``build_info``), value 1 with its labels;
  stateset -> ``Gauge``, one point per state (1 or 0); gaugehistogram -> one ``Gauge``
  per sample name (its counts may fall); ``_created`` samples -> a ``Gauge`` of their own.

Points carry the sample's labels (``le``/``quantile`` removed) as string attributes;
description = HELP, unit empty, no exemplars, families without samples left out (all as
Dynamo). One difference: Dynamo sends doubles only; an ``int`` within int64 goes here as
``as_int`` (int metrics are exact).
"""

import math
from collections.abc import Iterable
from typing import NamedTuple, Optional, Union

from ..metrics.native_buckets import (
    MAX_SCHEMA,
    MIN_SCHEMA,
    bucket_index,
    overflow_index,
    reduce_schema,
)
from ..model import (
    COUNTER,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    STATESET,
    SUMMARY,
    Family,
    Labels,
    NativeHistogram,
    Number,
    Sample,
)

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
#: The most dense buckets a side of an exponential point gets (the OTel SDK's default size).
MAX_DENSE = 160

# The Metric oneof each kind fills.
KIND_GAUGE = "gauge"
KIND_SUM = "sum"
KIND_HISTOGRAM = "histogram"
KIND_EXPONENTIAL_HISTOGRAM = "exponential_histogram"
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


class ExponentialPoint(NamedTuple):
    """An ExponentialHistogram point, from one native histogram child.

    With ``base = 2 ** (2 ** -scale)``, OTLP bucket ``k`` of a side holds the
    ``|v|`` in ``(base ** k, base ** (k + 1)]``: Prometheus' bucket ``k + 1``, so
    an offset is the first populated Prometheus index minus 1. ``positive_counts[j]``
    counts bucket ``positive_offset + j``, dense up to the last populated bucket
    (0 in the gaps); an empty side is ``(0, ())`` and is left out of the message.

    * ``scale`` = schema, lowered (buckets merged exactly, as a schema reduction
      does) until each side spans at most :data:`MAX_DENSE` buckets, never below
      -4 (where every side fits); ``zero_count``, ``zero_threshold`` as the child has
      them;
    * ``sample_count`` = ``zero_count`` plus the buckets, as OTLP requires: NaN and
      +-Inf observations are left out, as the OTel SDK leaves them out (Prometheus
      counts +-Inf in an overflow bucket past the largest float's, which has no OTLP
      counterpart);
    * ``sample_sum`` = the ``_sum`` sample when it is finite, negative sums included
      (the OTel SDK sets ``sum`` on every exponential point); ``None`` (unset) when it
      is NaN or infinite (non-finite observations made it so) or there is no ``_sum``.

    No min, max, exemplars or flags.
    """

    attributes: Labels
    sample_count: int
    sample_sum: Optional[float]
    scale: int
    zero_count: int
    zero_threshold: float
    positive_offset: int
    positive_counts: tuple[int, ...]
    negative_offset: int
    negative_counts: tuple[int, ...]


class SummaryPoint(NamedTuple):
    """A Summary point: ``quantiles`` as ``(quantile, value)`` pairs."""

    attributes: Labels
    sample_count: int
    sample_sum: float
    quantiles: tuple[tuple[float, float], ...]


Point = Union[NumberPoint, HistogramPoint, ExponentialPoint, SummaryPoint]


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


# schema -> the lowest and highest Prometheus index a float can fall in: the bucket
# of the smallest subnormal, and the one after the largest float (where +-Inf go).
_INDEX_RANGES = {
    s: (bucket_index(5e-324, s), overflow_index(s)) for s in range(MIN_SCHEMA, MAX_SCHEMA + 1)
}


def _sparse(pairs: Iterable[tuple[int, Number]], schema: int) -> Optional[dict[int, int]]:
    """``{Prometheus index: count}`` of a side's pairs, or None for an index no float reaches.

    Counts go through :func:`count`; zero counts and repeated indices (a custom
    collector's) are absorbed; the overflow bucket (+-Inf only) is left out.
    """
    lo, hi = _INDEX_RANGES[schema]
    counts: dict[int, int] = {}
    for index, value in pairs:
        if type(index) is not int or not lo <= index <= hi:
            return None
        if index == hi:
            continue
        n = count(value)
        if n:
            counts[index] = min(counts.get(index, 0) + n, _UINT64_MAX)
    return counts


def _spread(counts: dict[int, int]) -> int:
    return max(counts) - min(counts) + 1 if counts else 0


def _dense(counts: dict[int, int]) -> tuple[int, tuple[int, ...]]:
    """``(OTLP offset, dense counts)``: Prometheus index ``i`` is OTLP bucket ``i - 1``."""
    if not counts:
        return 0, ()
    first, last = min(counts), max(counts)
    get = counts.get
    # Merged buckets (a lowered scale) may pass uint64: saturate, as count() does.
    return first - 1, tuple([min(get(i, 0), _UINT64_MAX) for i in range(first, last + 1)])


def exponential_point(
    attributes: Labels, sample_count: int, sample_sum: Optional[float], native: NativeHistogram
) -> Optional[ExponentialPoint]:
    """The point of one native child; ``None`` when ``native`` is not a native histogram
    of the model's contract (a schema outside -4..8, an index no float can fall in)."""
    schema = native.schema
    if type(schema) is not int or not MIN_SCHEMA <= schema <= MAX_SCHEMA:
        return None
    positive = _sparse(native.positive, schema)
    negative = _sparse(native.negative, schema)
    if positive is None or negative is None:
        return None
    # Dense counts span from a side's first to its last bucket: two far-apart values
    # would send hundreds of thousands of zeros. Coarser scales merge buckets exactly.
    while max(_spread(positive), _spread(negative)) > MAX_DENSE and schema > MIN_SCHEMA:
        positive, negative, schema = reduce_schema(positive), reduce_schema(negative), schema - 1
    zero = count(native.zero_count)
    finite = min(zero + sum(positive.values()) + sum(negative.values()), _UINT64_MAX)
    if sample_sum is not None and not math.isfinite(sample_sum):
        sample_sum = None
    return ExponentialPoint(
        attributes,
        finite,
        sample_sum,
        schema,
        zero,
        float(native.zero_threshold),
        *_dense(positive),
        *_dense(negative),
    )


def _gauges(samples: Iterable[Sample], description: str) -> list[Metric]:
    """One Gauge per sample name, in order of first appearance."""
    by_name: dict[str, list[Point]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(NumberPoint(s.labels, number(s.value)))
    return [Metric(n, description, KIND_GAUGE, tuple(ps)) for n, ps in by_name.items()]


_Row = tuple[list[tuple[float, Number]], list[Number], list[Number]]
_Series = dict[Labels, _Row]


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


def _classic_point(labels: Labels, row: _Row) -> HistogramPoint:
    buckets, sums, counts = row
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
    return HistogramPoint(labels, total, total_sum, tuple(per_bucket), tuple(bounds))


def _histogram_metrics(family: Family, samples: list[Sample], description: str) -> list[Metric]:
    """An ExponentialHistogram of the native children, a Histogram of the others.

    OTLP has one histogram kind per metric, so a child with native buckets sends
    those and not its classic ones. A child without usable native data (a custom
    collector's, or one whose last ``_count`` sample has none) keeps the classic
    mapping; in a family with native children those go in a Histogram of the same
    name after the ExponentialHistogram (Prometheus' OTLP receiver stores the two
    side by side, as it does a histogram that has both).
    """
    count_name = family.name + "_count"
    natives: dict[Labels, Optional[NativeHistogram]] = {}
    for s in samples:
        if s.name == count_name:
            natives[s.labels] = s.native  # the last _count sample decides, as for the count
    exponential: list[Point] = []
    classic: list[Point] = []
    for labels, row in _series(family, samples, "le", "_bucket").items():
        native = natives.get(labels)
        point = None
        if native is not None:
            sums, counts = row[1], row[2]
            total_sum = float(sums[-1]) if sums else None
            point = exponential_point(labels, count(counts[-1]), total_sum, native)
        if point is None:
            classic.append(_classic_point(labels, row))
        else:
            exponential.append(point)
    out = []
    if exponential:
        out.append(Metric(family.name, description, KIND_EXPONENTIAL_HISTOGRAM, tuple(exponential)))
    if classic or not exponential:
        out.append(Metric(family.name, description, KIND_HISTOGRAM, tuple(classic)))
    return out


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
                out.extend(_histogram_metrics(family, samples, description))
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
