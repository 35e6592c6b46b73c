"""Hypothesis: families -> encode -> parse gives the families back, in both formats.

Also: parse -> encode -> parse is stable, encoder output is never rejected by
the checker, and a random Registry's scrape parses back to its own model.
"""

import math

from hypothesis import given

from dyn_metrics.exposition import openmetrics
from dyn_metrics.exposition import text as expfmt
from dyn_metrics.exposition.check import check
from dyn_metrics.exposition.parse.reader import parse
from dyn_metrics.model import COUNTER
from dyn_metrics.testing import families, registries


def _same_value(a, b):
    if a.__class__ is int and b.__class__ is int:
        return a == b
    fa, fb = float(a), float(b)
    if fa != fa or fb != fb:
        return fa != fa and fb != fb
    return fa == fb and math.copysign(1, fa) == math.copysign(1, fb)


def _same_exemplar(a, b):
    if a is None or b is None:
        return a is b
    return a.labels == b.labels and _same_value(a.value, b.value) and a.timestamp == b.timestamp


def assert_same_families(got, expected):
    """Equality of family lists with value semantics (NaN == NaN, 1 == 1.0, -0.0 != 0)."""
    assert [(f.name, f.type, f.help, f.unit, len(f.samples)) for f in got] == [
        (f.name, f.type, f.help, f.unit, len(f.samples)) for f in expected
    ]
    for g, e in zip(got, expected):
        for gs, es in zip(g.samples, e.samples):
            assert (gs.name, gs.labels, gs.timestamp) == (es.name, es.labels, es.timestamp), (
                gs,
                es,
            )
            assert _same_value(gs.value, es.value), (gs, es)
            assert _same_exemplar(gs.exemplar, es.exemplar), (gs, es)


def _non_empty(fams):
    return [f for f in fams if f.samples]


def _as_openmetrics_sees_it(fams):
    """What the model looks like after OpenMetrics: counters always end in _total."""
    out = []
    for f in fams:
        if f.type == COUNTER and not f.name.endswith("_total"):
            samples = tuple(
                s._replace(name=f.name + "_total") if s.name == f.name else s for s in f.samples
            )
            f = f._replace(name=f.name + "_total", samples=samples)
        out.append(f)
    return out


# Each strategy is drawn once per group of properties: generating examples
# costs more than checking them.


@given(families("text"))
def test_roundtrip_text_families(fams):
    text = expfmt.encode_to_string(fams)
    # encoder output is never rejected
    assert check(text, "text").errors == []
    # encode -> parse gives the families back
    once = parse(text, "text")
    assert_same_families(once, _non_empty(fams))
    # parse -> encode -> parse is stable
    again = expfmt.encode_to_string(once)
    assert expfmt.encode_to_string(parse(again)) == again
    # the same families in OpenMetrics: never rejected, and back to the same
    # text (the normalisation parse() documents; counters gain _total)
    om = openmetrics.encode_to_string(fams)
    if any(f.name.startswith("_") for f in fams):
        return  # OpenMetrics reserves such names
    assert check(om, "openmetrics").errors == []
    assert expfmt.encode_to_string(parse(om, "openmetrics")) == expfmt.encode_to_string(
        _as_openmetrics_sees_it(fams)
    )


@given(families("openmetrics"))
def test_roundtrip_openmetrics_families(fams):
    text = openmetrics.encode_to_string(fams)
    assert check(text, "openmetrics").errors == []
    once = parse(text, "openmetrics")
    assert_same_families(once, _non_empty(fams))
    again = openmetrics.encode_to_string(once)
    assert again == text
    assert openmetrics.encode_to_string(parse(again, "openmetrics")) == again


@given(registries())
def test_roundtrip_registry_scrape_parses_to_its_model(reg):
    text = reg.prometheus_expfmt()
    fams = reg.collect()
    assert check(text, "text").errors == []
    assert_same_families(parse(text, "text"), fams)
    om = openmetrics.encode_to_string(fams)
    assert check(om, "openmetrics").errors == []
    assert expfmt.encode_to_string(parse(om, "openmetrics")) == expfmt.encode_to_string(
        _as_openmetrics_sees_it(fams)
    )
