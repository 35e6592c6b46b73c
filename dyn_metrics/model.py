"""The plain data model between live metrics and bytes, and the facts every format shares.

A :class:`Family` is one metric family as it appears in an exposition; a
:class:`Sample` is one exposition line of it. These records carry no logic:
collectors build them, encoders write them, the parser returns them.

Conventions (the text 0.0.4 view, which is Dynamo's):

* ``Family.name`` is the name on the ``# TYPE`` line of text 0.0.4. For a
  counter that is the full name, ``_total`` included when the metric has it;
  for an info family it is its samples' name (``build_info``, a gauge in
  text 0.0.4); the parser, reading OpenMetrics, names an info family as its
  ``# TYPE`` line does (``build``), which the encoders accept too.
* ``Sample.name`` is the full sample name (``x_bucket``, ``x_sum``, ...).
* ``Sample.labels`` is a tuple of ``(name, value)`` pairs in the order they are
  written: collectors give them sorted by label name, with ``le`` (or
  ``quantile``) last, as rust-prometheus does.
* ``Sample.value`` is an ``int`` for integer metrics and a ``float`` otherwise.
* ``Sample.timestamp`` is in seconds (float) or ``None``; collectors never set
  it, parsed input may carry one.
* A native histogram child carries its exponential buckets as
  :class:`NativeHistogram` on its ``_count`` sample (``Sample.native``); its
  ``_count`` and ``_sum`` samples are its count and sum, its ``_bucket``
  samples its classic buckets (only ``+Inf`` when it has none). Formats
  without native histograms (text, OpenMetrics 1.0) ignore the field.

Besides the records this module holds the one copy of each fact the formats
share: the type words, the sample-name suffixes each type may write
(:data:`TEXT_SUFFIXES`, :data:`OPENMETRICS_SUFFIXES`, :data:`ALL_SUFFIXES`),
and the metric and label name patterns (:data:`METRIC_NAME_RE`,
:data:`LABEL_NAME_RE`).
"""

import re
from typing import NamedTuple, Optional, Union

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"
SUMMARY = "summary"
UNTYPED = "untyped"
# OpenMetrics-only type words.
UNKNOWN = "unknown"
INFO = "info"
STATESET = "stateset"
GAUGEHISTOGRAM = "gaugehistogram"

TEXT_TYPES = frozenset((COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED))
OPENMETRICS_TYPES = frozenset(
    (COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNKNOWN, INFO, STATESET, GAUGEHISTOGRAM)
)

# The sample names a family of each type writes, as suffixes of the family
# name ("" is the family name itself). In text 0.0.4 a counter's family name
# already carries any `_total`; in OpenMetrics the family name never does.
TEXT_SUFFIXES: dict[str, tuple[str, ...]] = {
    COUNTER: ("",),
    GAUGE: ("",),
    UNTYPED: ("",),
    HISTOGRAM: ("_bucket", "_sum", "_count"),
    SUMMARY: ("", "_sum", "_count"),
}
OPENMETRICS_SUFFIXES: dict[str, tuple[str, ...]] = {
    COUNTER: ("_total", "_created"),
    GAUGE: ("",),
    UNKNOWN: ("",),
    STATESET: ("",),
    INFO: ("_info",),
    HISTOGRAM: ("_bucket", "_count", "_sum", "_created"),
    GAUGEHISTOGRAM: ("_bucket", "_gcount", "_gsum"),
    SUMMARY: ("", "_count", "_sum", "_created"),
}
# Every non-empty suffix of either format: the names OpenMetrics reserves.
ALL_SUFFIXES: tuple[str, ...] = tuple(
    dict.fromkeys(
        s
        for table in (OPENMETRICS_SUFFIXES, TEXT_SUFFIXES)
        for suffixes in table.values()
        for s in suffixes
        if s
    )
)

# Python's str patterns treat a-z etc. as literal ASCII ranges, so `é` is
# outside them; re.ASCII keeps IGNORECASE users from widening them.
METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.ASCII)
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*", re.ASCII)

Number = Union[int, float]
Labels = tuple[tuple[str, str], ...]


class Exemplar(NamedTuple):
    """An OpenMetrics exemplar attached to a sample."""

    labels: Labels
    value: Number
    timestamp: Optional[float] = None


class NativeHistogram(NamedTuple):
    """The exponential buckets of one native histogram child.

    With ``base = 2 ** (2 ** -schema)``, positive bucket ``i`` counts the
    observations in ``(base ** (i - 1), base ** i]`` and negative bucket ``i``
    those in ``[-base ** i, -base ** (i - 1))``; the zero bucket counts those in
    ``[-zero_threshold, zero_threshold]``. ``positive`` and ``negative`` are
    ``(index, count)`` pairs by ascending index, every count > 0. NaN
    observations are in the count but in no bucket.
    """

    schema: int
    zero_threshold: float
    zero_count: int
    positive: tuple[tuple[int, int], ...] = ()
    negative: tuple[tuple[int, int], ...] = ()


class Sample(NamedTuple):
    """One exposition line: ``name{labels} value [timestamp]``.

    ``native`` is set on a native histogram's ``_count`` sample only.
    """

    name: str
    labels: Labels
    value: Number
    timestamp: Optional[float] = None
    exemplar: Optional[Exemplar] = None
    native: Optional[NativeHistogram] = None


class Family(NamedTuple):
    """One metric family: metadata plus its samples, in exposition order."""

    name: str
    type: str
    help: str
    samples: tuple[Sample, ...]
    unit: str = ""
