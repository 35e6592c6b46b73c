"""Immutable snapshot records shared by the collectors, encoders and parser.

A :class:`Family` is one metric family as it appears in an exposition; a
:class:`Sample` is one exposition line of it. These records carry no logic:
collectors build them, encoders write them, the parser returns them.

Conventions (the text 0.0.4 view, which is Dynamo's):

* ``Family.name`` is the name on the ``# TYPE`` line of text 0.0.4. For a
  counter that is the full name, ``_total`` included when the metric has it.
* ``Sample.name`` is the full sample name (``x_bucket``, ``x_sum``, ...).
* ``Sample.labels`` is a tuple of ``(name, value)`` pairs in the order they are
  written: collectors give them sorted by label name, with ``le`` (or
  ``quantile``) last, as rust-prometheus does.
* ``Sample.value`` is an ``int`` for integer metrics and a ``float`` otherwise.
* ``Sample.timestamp`` is in seconds (float) or ``None``; collectors never set
  it, parsed input may carry one.
"""

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

Number = Union[int, float]
Labels = tuple[tuple[str, str], ...]


class Exemplar(NamedTuple):
    """An OpenMetrics exemplar attached to a sample."""

    labels: Labels
    value: Number
    timestamp: Optional[float] = None


class Sample(NamedTuple):
    """One exposition line: ``name{labels} value [timestamp]``."""

    name: str
    labels: Labels
    value: Number
    timestamp: Optional[float] = None
    exemplar: Optional[Exemplar] = None


class Family(NamedTuple):
    """One metric family: metadata plus its samples, in exposition order."""

    name: str
    type: str
    help: str
    samples: tuple[Sample, ...]
    unit: str = ""
