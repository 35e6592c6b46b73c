"""Test helpers for code that exposes metrics: Hypothesis strategies and an assertion.

Needs Hypothesis (a test-only dependency; ``pip install hypothesis``). The
rest of dyn_metrics never imports this module.

Strategies (all produce input the encoders and the checker accept):

* :func:`metric_names`, :func:`label_names`, :func:`label_values`
  (every awkward character: quote, backslash, newline, tab, CR, NUL,
  non-ASCII, empty), :func:`values` (ints of any size, floats, ``NaN``,
  infinities, ``-0.0``);
* :func:`families` - lists of valid model :class:`~dyn_metrics.model.Family`
  records for ``"text"`` or ``"openmetrics"``, in the model's normal form, so
  ``parse(encode(fs)) == fs`` holds value for value;
* :func:`registries` - a :class:`dyn_metrics.Registry` holding random
  counters, gauges, histograms (native ones too) and vecs with recorded values.

:func:`assert_valid_exposition` runs :func:`dyn_metrics.exposition.check.check`
and raises ``AssertionError`` listing every problem.
"""

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "dyn_metrics.testing needs Hypothesis, a test-only dependency: pip install hypothesis"
    ) from exc

import math
import re
import string
from typing import Any, Optional, Protocol, Union, cast

from .exposition.check import check
from .exposition.parse.reader import OPENMETRICS, TEXT
from .exposition.text import format_value
from .metrics import (
    Counter,
    CounterVec,
    Gauge,
    GaugeVec,
    Histogram,
    HistogramVec,
    IntCounter,
    IntCounterVec,
    IntGauge,
    IntGaugeVec,
)
from .model import (
    ALL_SUFFIXES,
    COUNTER,
    GAUGE,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    LABEL_NAME_RE,
    METRIC_NAME_RE,
    OPENMETRICS_TYPES,
    STATESET,
    TEXT_TYPES,
    UNKNOWN,
    UNTYPED,
    Exemplar,
    Family,
    Labels,
    Number,
    Sample,
)
from .registry import Registry

__all__ = [
    "assert_valid_exposition",
    "families",
    "label_names",
    "label_values",
    "metric_names",
    "registries",
    "values",
]

_AWKWARD = ["", '"', "\\", "\n", "\t", "\r", "\x00", "\\n", '\\"', "é ✓ 𝄞", 'C:\\dir\\"x"\n\t']
_CHARS = st.characters(blacklist_categories=["Cs"])
_UNITS = ("seconds", "bytes", "ratio", "celsius")
# Every sample name a family can have, as a suffix of its name; used to keep
# generated families from sharing sample names.
_SUFFIXES = ("",) + ALL_SUFFIXES
# The type words each format's families are drawn from, in a fixed order (Hypothesis
# shrinks towards the first). The model spells OpenMetrics' unknown as untyped.
_TEXT_TYPES = tuple(sorted(TEXT_TYPES))
_OM_TYPES = _TEXT_TYPES + tuple(sorted(OPENMETRICS_TYPES - TEXT_TYPES - {UNKNOWN}))


def _alphabet(name_re: re.Pattern[str], after: str = "") -> str:
    """The printable ASCII characters ``name_re`` allows first (or after ``after``)."""
    candidates = string.ascii_letters + string.digits + string.punctuation
    return "".join(c for c in candidates if name_re.fullmatch(after + c))


def _name_strategy(first: str, rest: str, max_size: int) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(first), st.text(st.sampled_from(rest), max_size=max_size)).map(
        "".join
    )


# Strategies are built once: building them inside every draw costs Hypothesis
# a validation pass each time, which dominated the run time.
#
# OpenMetrics reserves names starting with "_", so neither its metric names
# nor any label name starts with one.
_METRIC_FIRST = _alphabet(METRIC_NAME_RE)
_METRIC_REST = _alphabet(METRIC_NAME_RE, "a")
_METRIC_NAMES = {
    TEXT: _name_strategy(_METRIC_FIRST, _METRIC_REST, 15),
    OPENMETRICS: _name_strategy(_METRIC_FIRST.replace("_", ""), _METRIC_REST, 15),
}
_LABEL_NAMES = _name_strategy(
    _alphabet(LABEL_NAME_RE).replace("_", ""), _alphabet(LABEL_NAME_RE, "a"), 10
).filter(lambda n: n not in ("le", "quantile"))
_LABEL_VALUES = st.one_of(st.sampled_from(_AWKWARD), st.text(_CHARS, max_size=12))
_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0]),
)
# The text format separates the docstring from the name by blanks, so a
# leading blank cannot survive; a trailing CR would read as CRLF.
_HELP = st.text(_CHARS, max_size=20).filter(lambda h: h == h.lstrip(" \t") and not h.endswith("\r"))
_COUNTS = st.integers(0, 2**40)
_NON_NEGATIVE = st.one_of(_COUNTS, st.floats(0, 1e12), st.just(math.inf))
_SUMS = st.one_of(_COUNTS, st.floats(0, 1e12))
_TIMESTAMPS: dict[bool, st.SearchStrategy[Optional[float]]] = {
    True: st.one_of(st.none(), st.floats(-1e10, 1e10)),
    False: st.one_of(st.none(), st.integers(0, 10**13).map(lambda ms: ms / 1000)),
}
_CREATED = st.floats(0, 1e10)
_EXEMPLAR_LABELS = st.lists(
    st.tuples(_LABEL_NAMES, st.text(_CHARS, max_size=8)), max_size=2, unique_by=lambda p: p[0]
)
_EXEMPLAR_TS = st.one_of(st.none(), st.floats(0, 1e10))
_ROWS = [
    st.lists(st.tuples(*[_LABEL_VALUES] * k), min_size=1, max_size=3 if k else 1, unique=True)
    for k in range(4)
]
_NAME_LISTS = st.lists(_LABEL_NAMES, max_size=3, unique=True)
_BOUNDS = st.lists(st.floats(0, 1e6), max_size=4, unique=True).map(sorted)
_QUANTILES = st.lists(st.floats(0, 1), max_size=3, unique=True).map(sorted)
_QUANTILE_VALUES = st.one_of(st.floats(0, 1e6), st.just(math.nan))
_STATES = st.lists(_LABEL_VALUES, min_size=1, max_size=3, unique=True)
_BITS = st.sampled_from([0, 1])


def assert_valid_exposition(
    text: Union[str, bytes], format: str = TEXT, allow_warnings: bool = True
) -> None:
    """Raise ``AssertionError`` listing the problems if ``text`` is not a valid exposition.

    Lint warnings fail too when ``allow_warnings`` is false.
    """
    result = check(text, format)
    problems = [f"line {p.line}: {p.message}" for p in result.errors]
    if not allow_warnings:
        problems += [f"line {p.line}: warning: {p.message}" for p in result.warnings]
    if problems:
        raise AssertionError(f"invalid {result.format} exposition:\n  " + "\n  ".join(problems))


def metric_names(format: str = TEXT) -> st.SearchStrategy[str]:
    """Valid metric names; OpenMetrics reserves a leading underscore, so none for it."""
    return _METRIC_NAMES[format]


def label_names() -> st.SearchStrategy[str]:
    """Valid label names that no format reserves (no leading ``_``, not ``le``/``quantile``)."""
    return _LABEL_NAMES


def label_values() -> st.SearchStrategy[str]:
    """Any string: the awkward characters often, arbitrary Unicode otherwise."""
    return _LABEL_VALUES


def values() -> st.SearchStrategy[Number]:
    """Sample values: ints of any size, floats, ``NaN``, ``±Inf``, ``-0.0``."""
    return _VALUES


def _exemplar(draw: st.DrawFn, at_most: Optional[float] = None) -> Exemplar:
    value: Number
    if at_most is None:
        value = draw(st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6)))
    else:
        value = draw(st.floats(-1e6, at_most))
    return Exemplar(tuple(draw(_EXEMPLAR_LABELS)), value, draw(_EXEMPLAR_TS))


def _claimed(name: str, om_name: str) -> set[str]:
    return {n + s for n in (name, om_name) for s in _SUFFIXES}


@st.composite
def families(draw: st.DrawFn, format: str = TEXT, max_families: int = 4) -> list[Family]:
    """A list of valid families for ``format``, in the model's normal form.

    Normal form: counters in OpenMetrics end in ``_total``; ``le`` and
    ``quantile`` values use the text spelling
    (:func:`dyn_metrics.exposition.text.format_value`);
    no two families can produce the same sample name. OpenMetrics lists
    also use units, ``_created`` samples, exemplars and the OpenMetrics-only
    types.
    """
    om = format == OPENMETRICS
    types = st.sampled_from(_OM_TYPES if om else _TEXT_TYPES)
    out: list[Family] = []
    claimed: set[str] = set()
    for _ in range(draw(st.integers(0, max_families))):
        family = _family(draw, draw(types), om)
        om_name = family.name[:-6] if family.type == COUNTER and om else family.name
        names = _claimed(family.name, om_name)
        if names & claimed:
            continue
        claimed |= names
        out.append(family)
    return out


def _family(draw: st.DrawFn, t: str, om: bool) -> Family:
    if t == STATESET:
        name = draw(_LABEL_NAMES)
    else:
        name = draw(_METRIC_NAMES[OPENMETRICS if om else TEXT])
    unit = ""
    if om and t not in (INFO, STATESET) and draw(st.booleans()):
        unit = draw(st.sampled_from(_UNITS))
        name += "_" + unit
    if t == COUNTER and (om or draw(st.booleans())):
        name += "_total"
    help_text = draw(_HELP)
    names = [n for n in draw(_NAME_LISTS) if n != name]
    samples: list[Sample] = []
    for row in draw(_ROWS[len(names)]):
        samples.extend(_metric_samples(draw, t, om, name, tuple(zip(names, row))))
    return Family(name, t, help_text, tuple(samples), unit)


def _metric_samples(draw: st.DrawFn, t: str, om: bool, name: str, labels: Labels) -> list[Sample]:
    created = om and draw(st.booleans())
    created_value = draw(_CREATED) if created else math.nan  # written only when created
    if t == COUNTER:
        exemplar = _exemplar(draw) if om and draw(st.booleans()) else None
        out = [Sample(name, labels, draw(_NON_NEGATIVE), draw(_TIMESTAMPS[om]), exemplar)]
        if created:
            out.append(Sample(name[:-6] + "_created", labels, created_value))
        return out
    if t in (GAUGE, UNTYPED):
        return [Sample(name, labels, draw(_VALUES), draw(_TIMESTAMPS[om]))]
    if t == INFO:
        return [Sample(name + "_info", labels, 1)]
    if t == STATESET:
        return [Sample(name, labels + ((name, s),), draw(_BITS)) for s in draw(_STATES)]
    if t in (HISTOGRAM, GAUGEHISTOGRAM):
        bounds = draw(_BOUNDS)
        counts = sorted(draw(_COUNTS) for _ in range(len(bounds) + 1))
        out = []
        for bound, count in zip(bounds + [math.inf], counts):
            le = "+Inf" if bound == math.inf else format_value(bound)
            exemplar = None
            if om and draw(st.booleans()):
                exemplar = _exemplar(draw, None if bound == math.inf else bound)
            out.append(Sample(name + "_bucket", labels + (("le", le),), count, None, exemplar))
        total = draw(_SUMS)
        if t == GAUGEHISTOGRAM:
            out.append(Sample(name + "_gcount", labels, counts[-1]))
            out.append(Sample(name + "_gsum", labels, total))
        else:
            out.append(Sample(name + "_sum", labels, total))
            out.append(Sample(name + "_count", labels, counts[-1]))
            if created:
                out.append(Sample(name + "_created", labels, created_value))
        return out
    # summary
    out = [
        Sample(name, labels + (("quantile", format_value(q)),), draw(_QUANTILE_VALUES))
        for q in draw(_QUANTILES)
    ]
    out.append(Sample(name + "_sum", labels, draw(_SUMS)))
    out.append(Sample(name + "_count", labels, draw(_COUNTS)))
    if created:
        out.append(Sample(name + "_created", labels, created_value))
    return out


_REGISTRY_NAMES = _name_strategy(
    string.ascii_lowercase, string.ascii_lowercase + string.digits + "_", 15
)
# Metrics refuse a carriage return in help (the text format cannot escape it).
_REGISTRY_HELP = _HELP.filter(lambda h: h and "\r" not in h)
_CONST_LABELS = st.lists(
    st.tuples(_LABEL_NAMES, _LABEL_VALUES), max_size=2, unique_by=lambda p: p[0]
)
_VARIABLE_NAMES = st.lists(_LABEL_NAMES, min_size=1, max_size=2, unique=True)
# Rows of label values for a vec with 1 or 2 variable labels.
_VEC_ROWS = {k: st.lists(st.tuples(*[_LABEL_VALUES] * k), max_size=3) for k in (1, 2)}
_BUCKETS = st.one_of(
    st.none(), st.lists(st.floats(0.001, 1e4), min_size=1, max_size=5, unique=True).map(sorted)
)
# A histogram is native (schema, max_buckets) a third of the time.
_NATIVE = st.one_of(st.none(), st.none(), st.tuples(st.integers(-4, 8), st.integers(1, 200)))
_COUNTER_STEPS = st.lists(st.floats(0, 1e9), max_size=3)
_INT_STEPS = st.lists(st.integers(0, 2**62), max_size=3)
# Non-negative: a negative _sum is invalid OpenMetrics ("Sum MUST NOT be negative").
_OBSERVATIONS = st.lists(st.floats(0, 1e6), max_size=4)
_GAUGE_VALUES = st.one_of(st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, -0.0]))
_INT_GAUGE = st.integers(-(2**62), 2**62)
_KINDS = (
    "counter",
    "intcounter",
    "gauge",
    "intgauge",
    "histogram",
    "countervec",
    "intcountervec",
    "gaugevec",
    "intgaugevec",
    "histogramvec",
)


@st.composite
def registries(draw: st.DrawFn, max_metrics: int = 5) -> Registry:
    """A ``dyn_metrics.Registry`` with random metrics and recorded values.

    Uses only the public API: the metric classes, ``register``,
    ``with_label_values`` and the update methods; a third of the histograms
    are native.
    """
    reg = Registry()
    claimed: set[str] = set()
    for _ in range(draw(st.integers(0, max_metrics))):
        kind = draw(st.sampled_from(_KINDS))
        name = draw(_REGISTRY_NAMES)
        if kind in ("counter", "intcounter", "countervec", "intcountervec") and draw(st.booleans()):
            name += "_total"
        names = _claimed(name, name)
        if names & claimed:
            continue
        claimed |= names
        help_text = draw(_REGISTRY_HELP)
        const = dict(draw(_CONST_LABELS))
        variable = [n for n in draw(_VARIABLE_NAMES) if n not in const] or ["v" + str(len(const))]
        hist: dict[str, Any] = {"buckets": draw(_BUCKETS)}
        native = draw(_NATIVE) if kind.startswith("histogram") else None
        if native is not None:
            hist.update(native=True, schema=native[0], max_buckets=native[1])
        if kind.endswith("vec"):
            vec = _make_vec(kind, name, help_text, const, variable, hist)
            reg.register(vec)
            for row in draw(_VEC_ROWS[len(variable)]):
                _record(draw, kind[:-3], vec.with_label_values(*row))
        else:
            metric = _make_metric(kind, name, help_text, const, hist)
            reg.register(metric)
            _record(draw, kind, metric)
    return reg


_Metric = Union[Counter, IntCounter, Gauge, IntGauge, Histogram]
_Vec = Union[CounterVec, IntCounterVec, GaugeVec, IntGaugeVec, HistogramVec]
_SCALAR_CLASSES: dict[str, type[Union[Counter, Gauge]]] = {
    "counter": Counter,
    "intcounter": IntCounter,
    "gauge": Gauge,
    "intgauge": IntGauge,
}
_VEC_CLASSES: dict[str, type[Union[CounterVec, IntCounterVec, GaugeVec, IntGaugeVec]]] = {
    "countervec": CounterVec,
    "intcountervec": IntCounterVec,
    "gaugevec": GaugeVec,
    "intgaugevec": IntGaugeVec,
}


def _make_metric(
    kind: str, name: str, help_text: str, const: dict[str, str], hist: dict[str, Any]
) -> _Metric:
    if kind == "histogram":
        return Histogram(name, help_text, const_labels=const, **hist)
    return _SCALAR_CLASSES[kind](name, help_text, const_labels=const)


def _make_vec(
    kind: str,
    name: str,
    help_text: str,
    const: dict[str, str],
    variable: list[str],
    hist: dict[str, Any],
) -> _Vec:
    if kind == "histogramvec":
        return HistogramVec(name, help_text, variable, const_labels=const, **hist)
    return _VEC_CLASSES[kind](name, help_text, variable, const_labels=const)


# What recording needs of a metric, or of a vec's child, of each kind. The
# kind names the methods, which the type of the handle alone does not say
# (a vec's children are value cells).
class _Counts(Protocol):
    def inc_by(self, amount: float) -> None: ...


class _IntCounts(Protocol):
    def inc_by(self, amount: int) -> None: ...


class _Sets(Protocol):
    def set(self, value: float) -> None: ...


class _IntSets(Protocol):
    def set(self, value: int) -> None: ...


class _Observes(Protocol):
    def observe(self, value: float) -> None: ...


def _record(draw: st.DrawFn, kind: str, metric: object) -> None:
    if kind == "counter":
        for amount in draw(_COUNTER_STEPS):
            cast(_Counts, metric).inc_by(amount)
    elif kind == "intcounter":
        for count in draw(_INT_STEPS):
            cast(_IntCounts, metric).inc_by(count)
    elif kind == "gauge":
        cast(_Sets, metric).set(draw(_GAUGE_VALUES))
    elif kind == "intgauge":
        cast(_IntSets, metric).set(draw(_INT_GAUGE))
    else:
        for value in draw(_OBSERVATIONS):
            cast(_Observes, metric).observe(value)
