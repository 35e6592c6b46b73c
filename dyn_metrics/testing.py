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
  counters, gauges, histograms and vecs with recorded values.

:func:`assert_valid_exposition` runs :func:`dyn_metrics.check.check` and
raises ``AssertionError`` listing every problem.
"""

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "dyn_metrics.testing needs Hypothesis, a test-only dependency: pip install hypothesis"
    ) from exc

import math

from . import expfmt
from .check import check
from .model import (
    COUNTER,
    GAUGE,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    STATESET,
    SUMMARY,
    UNTYPED,
    Exemplar,
    Family,
    Sample,
)

__all__ = [
    "assert_valid_exposition",
    "families",
    "label_names",
    "label_values",
    "metric_names",
    "registries",
    "values",
]

TEXT = "text"
OPENMETRICS = "openmetrics"

_AWKWARD = ["", '"', "\\", "\n", "\t", "\r", "\x00", "\\n", '\\"', "é ✓ 𝄞", 'C:\\dir\\"x"\n\t']
_CHARS = st.characters(blacklist_categories=("Cs",))
_UNITS = ("seconds", "bytes", "ratio", "celsius")
# Every suffix either format gives a sample of some family; used to keep
# generated families from sharing sample names.
_SUFFIXES = ("", "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info")


def assert_valid_exposition(text, format=TEXT, allow_warnings=True):
    """Raise ``AssertionError`` listing the problems if ``text`` is not a valid exposition.

    Lint warnings fail too when ``allow_warnings`` is false.
    """
    result = check(text, format)
    problems = [f"line {p.line}: {p.message}" for p in result.errors]
    if not allow_warnings:
        problems += [f"line {p.line}: warning: {p.message}" for p in result.warnings]
    if problems:
        raise AssertionError(f"invalid {result.format} exposition:\n  " + "\n  ".join(problems))


def metric_names(format=TEXT):
    """Valid metric names; OpenMetrics reserves a leading underscore, so none for it."""
    first = "[a-zA-Z:]" if format == OPENMETRICS else "[a-zA-Z_:]"
    return st.from_regex(first + r"[a-zA-Z0-9_:]{0,15}", fullmatch=True)


def label_names():
    """Valid label names that no format reserves (no leading ``_``, not ``le``/``quantile``)."""
    return st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,10}", fullmatch=True).filter(
        lambda n: n not in ("le", "quantile"))


def label_values():
    """Any string: the awkward characters often, arbitrary Unicode otherwise."""
    return st.one_of(st.sampled_from(_AWKWARD), st.text(_CHARS, max_size=12))


def values():
    """Sample values: ints of any size, floats, ``NaN``, ``±Inf``, ``-0.0``."""
    return st.one_of(
        st.integers(-(2 ** 70), 2 ** 70),
        st.floats(),
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0]),
    )


def _help_texts():
    # The text format separates the docstring from the name by blanks, so a
    # leading blank cannot survive; a trailing CR would read as CRLF.
    return st.text(_CHARS, max_size=20).filter(
        lambda h: h == h.lstrip(" \t") and not h.endswith("\r"))


def _counts():
    return st.integers(0, 2 ** 40)


def _non_negative():
    return st.one_of(_counts(), st.floats(0, 1e12), st.just(math.inf))


def _timestamps(om):
    if om:
        return st.one_of(st.none(), st.floats(-1e10, 1e10))
    return st.one_of(st.none(), st.integers(0, 10 ** 13).map(lambda ms: ms / 1000))


def _exemplars(draw, at_most=None):
    labels = draw(st.lists(st.tuples(label_names(), st.text(_CHARS, max_size=8)),
                           max_size=2, unique_by=lambda p: p[0]))
    high = 1e6 if at_most is None else at_most
    value = draw(st.one_of(st.integers(-1000, int(min(high, 1000))),
                           st.floats(-1e6, high)))
    return Exemplar(tuple(labels), value, draw(st.one_of(st.none(), st.floats(0, 1e10))))


def _claimed(name, om_name):
    return {n + s for n in (name, om_name) for s in _SUFFIXES}


@st.composite
def families(draw, format=TEXT, max_families=4):
    """A list of valid families for ``format``, in the model's normal form.

    Normal form: counters in OpenMetrics end in ``_total``; ``le`` and
    ``quantile`` values use the text spelling (:func:`expfmt.format_value`);
    no two families can produce the same sample name. OpenMetrics lists
    also use units, ``_created`` samples, exemplars and the OpenMetrics-only
    types.
    """
    om = format == OPENMETRICS
    types = [COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED]
    if om:
        types += [INFO, STATESET, GAUGEHISTOGRAM]
    out = []
    claimed = set()
    for _ in range(draw(st.integers(0, max_families))):
        family = draw(_family(draw(st.sampled_from(types)), om))
        om_name = family.name[:-6] if family.type == COUNTER and om else family.name
        names = _claimed(family.name, om_name)
        if names & claimed:
            continue
        claimed |= names
        out.append(family)
    return out


@st.composite
def _family(draw, t, om):
    if t == STATESET:
        name = draw(label_names())
    else:
        name = draw(metric_names(OPENMETRICS if om else TEXT))
    unit = ""
    if om and t not in (INFO, STATESET) and draw(st.booleans()):
        unit = draw(st.sampled_from(_UNITS))
        name += "_" + unit
    if t == COUNTER and (om or draw(st.booleans())):
        name += "_total"
    help_text = draw(_help_texts())
    names = draw(st.lists(label_names().filter(lambda n: n != name), max_size=3, unique=True))
    rows = draw(st.lists(st.tuples(*[label_values() for _ in names]), min_size=1,
                         max_size=3 if names else 1, unique=True))
    samples = []
    for row in rows:
        labels = tuple(zip(names, row))
        samples.extend(draw(_metric_samples(t, om, name, labels)))
    return Family(name, t, help_text, tuple(samples), unit)


@st.composite
def _metric_samples(draw, t, om, name, labels):
    created = om and draw(st.booleans())
    created_value = draw(st.floats(0, 1e10)) if created else None
    ts = draw(_timestamps(om))
    if t == COUNTER:
        exemplar = _exemplars(draw) if om and draw(st.booleans()) else None
        out = [Sample(name, labels, draw(_non_negative()), ts, exemplar)]
        if created:
            out.append(Sample(name[:-6] + "_created", labels, created_value))
        return out
    if t in (GAUGE, UNTYPED):
        return [Sample(name, labels, draw(values()), ts)]
    if t == INFO:
        return [Sample(name + "_info", labels, 1)]
    if t == STATESET:
        states = draw(st.lists(label_values(), min_size=1, max_size=3, unique=True))
        return [Sample(name, labels + ((name, s),), draw(st.sampled_from([0, 1]))) for s in states]
    if t in (HISTOGRAM, GAUGEHISTOGRAM):
        bounds = draw(st.lists(st.floats(0, 1e6), max_size=4, unique=True).map(sorted))
        counts = sorted(draw(st.lists(_counts(), min_size=len(bounds) + 1, max_size=len(bounds) + 1)))
        out = []
        for bound, count in zip(bounds + [math.inf], counts):
            le = "+Inf" if bound == math.inf else expfmt.format_value(bound)
            exemplar = None
            if om and draw(st.booleans()):
                exemplar = _exemplars(draw, None if bound == math.inf else bound)
            out.append(Sample(name + "_bucket", labels + (("le", le),), count, None, exemplar))
        total = draw(st.one_of(_counts(), st.floats(0, 1e12)))
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
    quantiles = draw(st.lists(st.floats(0, 1), max_size=3, unique=True).map(sorted))
    out = [Sample(name, labels + (("quantile", expfmt.format_value(q)),),
                  draw(st.one_of(st.floats(0, 1e6), st.just(math.nan))))
           for q in quantiles]
    out.append(Sample(name + "_sum", labels, draw(st.one_of(_counts(), st.floats(0, 1e12)))))
    out.append(Sample(name + "_count", labels, draw(_counts())))
    if created:
        out.append(Sample(name + "_created", labels, created_value))
    return out


_KINDS = ("counter", "intcounter", "gauge", "intgauge", "histogram",
          "countervec", "intcountervec", "gaugevec", "intgaugevec", "histogramvec")


@st.composite
def registries(draw, max_metrics=5):
    """A ``dyn_metrics.Registry`` with random metrics and recorded values.

    Uses only the public API: the metric classes, ``register``,
    ``with_label_values`` and the update methods.
    """
    import dyn_metrics as dm

    reg = dm.Registry()
    claimed = set()
    for _ in range(draw(st.integers(0, max_metrics))):
        kind = draw(st.sampled_from(_KINDS))
        name = draw(st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True))
        if kind in ("counter", "intcounter", "countervec", "intcountervec") and draw(st.booleans()):
            name += "_total"
        names = _claimed(name, name)
        if names & claimed:
            continue
        claimed |= names
        help_text = draw(_help_texts().filter(bool))
        const = dict(draw(st.lists(st.tuples(label_names(), label_values()), max_size=2,
                                   unique_by=lambda p: p[0])))
        variable = draw(st.lists(label_names().filter(lambda n: n not in const),
                                 min_size=1, max_size=2, unique=True))
        buckets = draw(st.one_of(st.none(), st.lists(st.floats(0.001, 1e4), min_size=1,
                                                     max_size=5, unique=True).map(sorted)))
        metric = _make_metric(dm, kind, name, help_text, const, variable, buckets)
        reg.register(metric)
        if kind.endswith("vec"):
            rows = draw(st.lists(st.tuples(*[label_values() for _ in variable]), max_size=3))
            for row in rows:
                _record(draw, kind[:-3], metric.with_label_values(*row))
        else:
            _record(draw, kind, metric)
    return reg


def _make_metric(dm, kind, name, help_text, const, variable, buckets):
    if kind == "histogram":
        return dm.Histogram(name, help_text, const_labels=const, buckets=buckets)
    if kind == "histogramvec":
        return dm.HistogramVec(name, help_text, variable, const_labels=const, buckets=buckets)
    cls = {"counter": dm.Counter, "intcounter": dm.IntCounter, "gauge": dm.Gauge,
           "intgauge": dm.IntGauge, "countervec": dm.CounterVec,
           "intcountervec": dm.IntCounterVec, "gaugevec": dm.GaugeVec,
           "intgaugevec": dm.IntGaugeVec}[kind]
    if kind.endswith("vec"):
        return cls(name, help_text, variable, const_labels=const)
    return cls(name, help_text, const_labels=const)


def _record(draw, kind, metric):
    if kind == "counter":
        for amount in draw(st.lists(st.floats(0, 1e9), max_size=3)):
            metric.inc_by(amount)
    elif kind == "intcounter":
        for amount in draw(st.lists(st.integers(0, 2 ** 62), max_size=3)):
            metric.inc_by(amount)
    elif kind == "gauge":
        metric.set(draw(st.floats()))
    elif kind == "intgauge":
        metric.set(draw(st.integers(-(2 ** 62), 2 ** 62)))
    else:
        for value in draw(st.lists(st.floats(-1e6, 1e6), max_size=4)):
            metric.observe(value)
