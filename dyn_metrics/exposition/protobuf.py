"""The Prometheus protobuf exposition: delimited ``io.prometheus.client.MetricFamily`` messages.

:func:`encode` writes :class:`~dyn_metrics.model.Family` records as the body a scraper
asks for with :data:`CONTENT_TYPE`: each message prefixed by its uvarint length, nothing
after the last; :func:`encode_family` is one message. The input is trusted, as in the
text encoders, except for the two refusals below. How the model maps onto the messages:

* ``MetricFamily``: the text 0.0.4 ``# TYPE`` name (a counter's ``_total`` included,
  an info family named like its samples), help and type always written (empty and 0
  too, as client_golang does), the metrics, the unit when set. :func:`encode` skips
  families without metrics.
* counter -> COUNTER (a ``*_created`` sample -> ``created_timestamp``, the exemplar ->
  ``Counter.exemplar``); gauge, info and stateset (one metric per sample: per state) ->
  GAUGE; untyped, unknown -> UNTYPED; summary -> SUMMARY (quantiles, ``_sum``,
  ``_count``, ``_created``); histogram -> HISTOGRAM, gaugehistogram -> GAUGE_HISTOGRAM.
* Samples become metrics by their labels (``le``/``quantile`` left out), in first-seen
  order; ``Sample.timestamp`` -> ``timestamp_ms`` unless 0 (Prometheus reads 0 as none).
* Classic buckets are cumulative; ``+Inf`` is left out unless it carries an exemplar
  (client_golang's rule): Prometheus rebuilds it from ``sample_count``.
* A native histogram (``Sample.native`` on ``_count``) writes schema, zero threshold,
  zero count and per side spans with packed ``sint64`` deltas (:func:`spans_and_deltas`),
  beside its classic buckets when it has any besides ``+Inf``; its timestamped exemplars
  also go to ``Histogram.exemplars``. The zero threshold is written as given: 2.42 sees
  an empty histogram as native only when it is > 0 or it has a delta, and judges a whole
  family by its first metric, so with 0 and nothing counted one empty bucket (a span
  ``{0, 1}``, delta 0) is written: the no-op span ``{0, 0}`` of later versions is not enough.
  A schema above 8 is reduced to 8 by merging buckets (exact: coarser bounds are a subset
  of finer ones), since 2.42 accepts a larger one and then fails every query of it; a
  schema below -4, or a count that is not a non-negative integer, raises
  :class:`~dyn_metrics.errors.InvalidValueError`. Integer histograms only.
"""

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Optional

from ..model import (
    COUNTER,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    SUMMARY,
    UNKNOWN,
    UNTYPED,
    Exemplar,
    Family,
    Labels,
    NativeHistogram,
    Number,
    Sample,
)
from .protobuf_native import count_of, native_fields, spans_and_deltas
from .protowire import ONE_BYTE_VARINTS, len_record, string_field, uvarint, varint
from .text import text_metadata

CONTENT_TYPE = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)
__all__ = ["CONTENT_TYPE", "encode", "encode_family", "spans_and_deltas"]

_D = struct.Struct("<d").pack


def _timestamp(seconds: float) -> bytes:
    """A google.protobuf.Timestamp message (zero fields left out, as proto3 writes it)."""
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    out = b"\x08" + varint(int(whole)) if whole else b""
    return out + b"\x10" + varint(nanos) if nanos else out


def _ts_ms(seconds: Optional[float]) -> bytes:
    """Metric.timestamp_ms, or nothing for None and 0 (which Prometheus reads as none)."""
    if seconds is None:
        return b""
    ms = int(round(seconds * 1000))
    return b"\x30" + varint(ms) if ms else b""


class _Labels:
    """LabelPair fields, each pair encoded once per call (scrapes repeat their pairs)."""

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], bytes] = {}

    def encode(self, labels: Labels) -> bytes:
        cache = self.cache
        parts = []
        for pair in labels:
            b = cache.get(pair)
            if b is None:
                k = pair[0].encode()
                v = pair[1].encode()
                inner = b"\x0a" + uvarint(len(k)) + k + b"\x12" + uvarint(len(v)) + v
                b = cache[pair] = b"\x0a" + uvarint(len(inner)) + inner
            parts.append(b)
        return b"".join(parts)


def _exemplar(ex: Exemplar, labels: _Labels) -> bytes:
    out = labels.encode(ex.labels) + b"\x11" + _D(ex.value)
    if ex.timestamp is not None:
        out += len_record(b"\x1a", _timestamp(ex.timestamp))
    return out


class _Hist:
    """What one histogram metric collects from its samples."""

    __slots__ = ("buckets", "finite", "count", "sum", "created", "native", "exemplars", "ts")

    def __init__(self) -> None:
        self.buckets: list[bytes] = []
        self.finite = 0  # classic buckets other than +Inf
        self.count: Optional[int] = None
        self.sum: Number = 0.0
        self.created: Optional[Number] = None
        self.native: Optional[NativeHistogram] = None
        self.exemplars: list[Exemplar] = []
        self.ts: Optional[float] = None


def _histograms(family: Family, labels: _Labels, gauge: bool) -> list[bytes]:
    name = family.name
    bucket_name = name + "_bucket"
    count_name = name + ("_gcount" if gauge else "_count")
    sum_name = name + ("_gsum" if gauge else "_sum")
    created_name = name + "_created"
    groups: dict[Labels, _Hist] = {}
    bounds: dict[str, tuple[bool, bytes]] = {}
    for s in family.samples:
        lab = s.labels
        if s.name == bucket_name:
            if lab and lab[-1][0] == "le":
                le, lab = lab[-1][1], lab[:-1]
            else:
                le = dict(lab).get("le", "+Inf")
                lab = tuple(p for p in lab if p[0] != "le")
        h = groups.get(lab)
        if h is None:
            h = groups[lab] = _Hist()
        if h.ts is None:
            h.ts = s.timestamp
        if s.exemplar is not None:
            h.exemplars.append(s.exemplar)
        if s.name == bucket_name:
            bound = bounds.get(le)
            if bound is None:
                upper = float(le)
                bound = bounds[le] = (upper == math.inf, b"\x11" + _D(upper))
            is_inf, bound_bytes = bound
            if is_inf:
                if h.count is None:
                    h.count = count_of(s.value, "histogram bucket count")
                if s.exemplar is None:
                    continue
            else:
                h.finite += 1
            b = b"\x08" + uvarint(count_of(s.value, "histogram bucket count")) + bound_bytes
            if s.exemplar is not None:
                b += len_record(b"\x1a", _exemplar(s.exemplar, labels))
            h.buckets.append(len_record(b"\x1a", b))
        elif s.name == count_name:
            h.count = count_of(s.value, "histogram count")
            h.native = s.native
        elif s.name == sum_name:
            h.sum = s.value
        elif s.name == created_name:
            h.created = s.value
    out = []
    for lab, h in groups.items():
        body = [b"\x08", uvarint(h.count or 0), b"\x11", _D(h.sum)]
        nh = h.native
        if nh is None or h.finite:
            body.extend(h.buckets)
        if nh is not None:
            # a native-only child (just the +Inf bucket) writes no classic bucket at all
            body.append(native_fields(nh))
        if h.created is not None:
            body.append(len_record(b"\x7a", _timestamp(h.created)))
        if nh is not None:
            for ex in h.exemplars:
                if ex.timestamp is not None:
                    body.append(len_record(b"\x82\x01", _exemplar(ex, labels)))
        metric = labels.encode(lab) + len_record(b"\x3a", b"".join(body)) + _ts_ms(h.ts)
        out.append(len_record(b"\x22", metric))
    return out


class _Summary:
    """What one summary metric collects from its samples."""

    __slots__ = ("quantiles", "count", "sum", "created", "ts")

    def __init__(self, ts: Optional[float]) -> None:
        self.quantiles: list[bytes] = []
        self.count = 0
        self.sum: Number = 0.0
        self.created: Optional[Number] = None
        self.ts = ts


def _summaries(family: Family, labels: _Labels) -> list[bytes]:
    name = family.name
    count_name, sum_name, created_name = name + "_count", name + "_sum", name + "_created"
    groups: dict[Labels, _Summary] = {}
    for s in family.samples:
        lab = s.labels
        quantile = None
        if s.name == name:
            if lab and lab[-1][0] == "quantile":
                quantile, lab = lab[-1][1], lab[:-1]
            else:
                quantile = dict(lab).get("quantile")
                lab = tuple(p for p in lab if p[0] != "quantile")
        g = groups.get(lab)
        if g is None:
            g = groups[lab] = _Summary(s.timestamp)
        elif g.ts is None:
            g.ts = s.timestamp
        if s.name == name:
            if quantile is not None:
                q = b"\x09" + _D(float(quantile)) + b"\x11" + _D(s.value)
                g.quantiles.append(len_record(b"\x1a", q))
        elif s.name == count_name:
            g.count = count_of(s.value, "summary count")
        elif s.name == sum_name:
            g.sum = s.value
        elif s.name == created_name:
            g.created = s.value
    out = []
    for lab, g in groups.items():
        body = b"\x08" + uvarint(g.count) + b"\x11" + _D(g.sum) + b"".join(g.quantiles)
        if g.created is not None:
            body += len_record(b"\x22", _timestamp(g.created))
        metric = labels.encode(lab) + len_record(b"\x22", body) + _ts_ms(g.ts)
        out.append(len_record(b"\x22", metric))
    return out


def _counters(family: Family, labels: _Labels) -> list[bytes]:
    """One Counter metric per label set: its value sample, and its ``_created`` if any."""
    name = family.name
    values: dict[Labels, Optional[Sample]] = {}  # first-seen order
    created: dict[Labels, Number] = {}
    for s in family.samples:
        if s.name != name and s.name.endswith("_created"):
            created[s.labels] = s.value
            values.setdefault(s.labels, None)
        else:
            values[s.labels] = s
    out = []
    for lab, v in values.items():
        if v is None:
            continue  # a creation time without a value: no counter to write
        body = b"\x09" + _D(v.value)
        if v.exemplar is not None:
            body += len_record(b"\x12", _exemplar(v.exemplar, labels))
        if created:
            c = created.get(lab)
            if c is not None:
                body += len_record(b"\x1a", _timestamp(c))
        metric = labels.encode(lab) + len_record(b"\x1a", body) + _ts_ms(v.timestamp)
        out.append(len_record(b"\x22", metric))
    return out


def _values(samples: Sequence[Sample], tag: bytes, labels: _Labels) -> list[bytes]:
    """One Gauge or Untyped metric per sample (field ``tag``: 9 bytes, a double)."""
    # The per-series loop of a large scrape: _Labels.encode inlined, so no call per
    # sample, and none per new pair (most pairs of 10k series are new: ids, instances).
    cache = labels.cache
    get = cache.get
    d = _D
    small = ONE_BYTE_VARINTS
    out: list[bytes] = []
    append = out.append
    for s in samples:
        parts = []
        for pair in s.labels:
            b = get(pair)
            if b is None:
                k = pair[0].encode()
                v = pair[1].encode()
                n = len(k)
                inner = b"\x0a" + (small[n] if n < 128 else varint(n)) + k
                n = len(v)
                inner += b"\x12" + (small[n] if n < 128 else varint(n)) + v
                n = len(inner)
                b = cache[pair] = b"\x0a" + (small[n] if n < 128 else varint(n)) + inner
            parts.append(b)
        metric = b"".join(parts) + tag + d(s.value)
        if s.timestamp is not None:
            metric += _ts_ms(s.timestamp)
        n = len(metric)
        append(b"\x22" + (small[n] if n < 128 else varint(n)) + metric)
    return out


def _metrics(family: Family, labels: _Labels) -> tuple[str, int, list[bytes]]:
    """The name, type code and encoded ``metric`` fields of ``family``."""
    # MetricType: COUNTER 0, GAUGE 1, SUMMARY 2, UNTYPED 3, HISTOGRAM 4, GAUGE_HISTOGRAM 5
    t = family.type
    if t == COUNTER:
        return family.name, 0, _counters(family, labels)
    if t == HISTOGRAM:
        return family.name, 4, _histograms(family, labels, False)
    if t == GAUGEHISTOGRAM:
        return family.name, 5, _histograms(family, labels, True)
    if t == SUMMARY:
        return family.name, 2, _summaries(family, labels)
    if t == UNTYPED or t == UNKNOWN:
        return family.name, 3, _values(family.samples, b"\x2a\x09\x09", labels)
    # gauge, info (named like its samples, as text 0.0.4 names it), stateset
    name = text_metadata(family)[0] if t == INFO else family.name
    return name, 1, _values(family.samples, b"\x12\x09\x09", labels)


def _as_double(value: Number) -> Number:
    """An int metric's value as a double can hold it: past the range, infinity of its sign."""
    try:
        float(value)
    except (OverflowError, TypeError):
        return math.inf if value > 0 else -math.inf
    return value


def _message(family: Family, labels: _Labels) -> tuple[list[bytes], int]:
    """The pieces of ``family``'s MetricFamily message (head, metrics, unit); its metric count."""
    try:
        name, code, parts = _metrics(family, labels)
    except (OverflowError, struct.error):
        # An exact int metric past the double range (text writes its digits): the
        # rare family is encoded again with such values as infinities.
        samples = tuple(s._replace(value=_as_double(s.value)) for s in family.samples)
        name, code, parts = _metrics(family._replace(samples=samples), labels)
    count = len(parts)
    parts.insert(0, string_field(1, name) + string_field(2, family.help) + b"\x18" + uvarint(code))
    if family.unit:
        parts.append(string_field(5, family.unit))
    return parts, count


def encode_family(family: Family) -> bytes:
    """One ``MetricFamily`` message (not delimited) for ``family``."""
    return b"".join(_message(family, _Labels())[0])


def encode(families: Iterable[Family]) -> bytes:
    """The delimited stream of ``families``: each message prefixed by its uvarint length.

    Families without samples, or whose samples make no metric, are skipped.
    """
    labels = _Labels()
    parts: list[bytes] = []
    for family in families:
        if not family.samples:
            continue
        pieces, count = _message(family, labels)
        if count:
            # one join for the whole body: the prefix needs the length, not the message
            parts.append(varint(sum(map(len, pieces))))
            parts.extend(pieces)
    return b"".join(parts)
