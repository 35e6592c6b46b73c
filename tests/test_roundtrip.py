"""Hypothesis: families -> encode -> parse gives the families back, in both formats.

Also: parse -> encode -> parse is stable, encoder output is never rejected by
the checker, and a random Registry's scrape parses back to its own model.
"""

import math

from hypothesis import given

from dyn_metrics import expfmt, omfmt
from dyn_metrics.check import check
from dyn_metrics.model import COUNTER
from dyn_metrics.parse import parse
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
    assert [(f.name, f.type, f.help, f.unit, len(f.samples)) for f in got] == \
        [(f.name, f.type, f.help, f.unit, len(f.samples)) for f in expected]
    for g, e in zip(got, expected):
        for gs, es in zip(g.samples, e.samples):
            assert (gs.name, gs.labels, gs.timestamp) == (es.name, es.labels, es.timestamp), (gs, es)
            assert _same_value(gs.value, es.value), (gs, es)
            assert _same_exemplar(gs.exemplar, es.exemplar), (gs, es)


def _non_empty(fams):
    return [f for f in fams if f.samples]


def _as_openmetrics_sees_it(fams):
    """What the model looks like after OpenMetrics: counters always end in _total."""
    out = []
    for f in fams:
        if f.type == COUNTER and not f.name.endswith("_total"):
            samples = tuple(s._replace(name=f.name + "_total") if s.name == f.name else s for s in f.samples)
            f = f._replace(name=f.name + "_total", samples=samples)
        out.append(f)
    return out


@given(families("text"))
def test_roundtrip_text_families_parse_back(fams):
    text = expfmt.encode_to_string(fams)
    assert_same_families(parse(text, "text"), _non_empty(fams))


@given(families("openmetrics"))
def test_roundtrip_openmetrics_families_parse_back(fams):
    text = omfmt.encode_to_string(fams)
    assert_same_families(parse(text, "openmetrics"), _non_empty(fams))


@given(families("text"))
def test_roundtrip_text_parse_encode_parse_is_stable(fams):
    once = parse(expfmt.encode_to_string(fams))
    text = expfmt.encode_to_string(once)
    assert expfmt.encode_to_string(parse(text)) == text


@given(families("openmetrics"))
def test_roundtrip_openmetrics_parse_encode_parse_is_stable(fams):
    once = parse(omfmt.encode_to_string(fams), "openmetrics")
    text = omfmt.encode_to_string(once)
    assert omfmt.encode_to_string(parse(text, "openmetrics")) == text


@given(families("text"))
def test_roundtrip_text_through_openmetrics_gives_the_same_text(fams):
    # The normalisation parse() documents: OpenMetrics -> model -> text 0.0.4
    # is the original text, counters without _total aside.
    om = omfmt.encode_to_string(fams)
    assert expfmt.encode_to_string(parse(om, "openmetrics")) == \
        expfmt.encode_to_string(_as_openmetrics_sees_it(fams))


@given(families("text"))
def test_roundtrip_text_encoder_output_is_never_rejected(fams):
    assert check(expfmt.encode_to_string(fams), "text").errors == []
    assert check(omfmt.encode_to_string(fams), "openmetrics").errors == []


@given(families("openmetrics"))
def test_roundtrip_openmetrics_encoder_output_is_never_rejected(fams):
    assert check(omfmt.encode_to_string(fams), "openmetrics").errors == []


@given(registries())
def test_roundtrip_registry_text_parses_to_its_model(reg):
    text = reg.prometheus_expfmt()
    assert check(text, "text").errors == []
    assert_same_families(parse(text, "text"), reg.collect())


@given(registries())
def test_roundtrip_registry_openmetrics_gives_the_same_text(reg):
    fams = reg.collect()
    om = omfmt.encode_to_string(fams)
    assert check(om, "openmetrics").errors == []
    assert expfmt.encode_to_string(parse(om, "openmetrics")) == \
        expfmt.encode_to_string(_as_openmetrics_sees_it(fams))
