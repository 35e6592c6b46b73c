"""The family core: ``collect()`` model and ``write_text`` agree for every type, labels in order."""

import math

import pytest

import dyn_metrics as dm
from dyn_metrics.exposition import text as expfmt
from tests.metrics.support import scrape

ODD_VALUES = ['say "hi"', "back\\slash", "new\nline", "ünïcødé ✓ 日本", "", 'all "\\\n']


def _scalar(cls, **kw):
    def build():
        m = cls("m_x", "Help with \\ and\nnewline", {"zz": 'q"\\\n✓', "aa": "first"}, **kw)
        return m

    return build


def _filled_vec(cls, op, **kw):
    def build():
        v = cls("v_x", "Vec help", ["zeta", "alpha"], {"mid": 'c"o\\n\nst'}, **kw)
        for i, odd in enumerate(ODD_VALUES):
            op(v.with_label_values(odd, str(i)), i)
            op(v.with_label_values(str(i), odd), i)
        return v

    return build


def _inc(child, i):
    child.inc_by(i)


def _set(child, i):
    child.set(i - 2.5)


def _iset(child, i):
    child.set(i - 3)


def _observe(child, i):
    for k in range(i + 1):
        child.observe(k * 0.75)


def _counter():
    c = _scalar(dm.Counter)()
    c.inc_by(123.456789)
    return c


def _intcounter():
    c = _scalar(dm.IntCounter)()
    c.inc_by(2**60 + 1)
    return c


def _gauge():
    g = _scalar(dm.Gauge)()
    g.set(-1e-7)
    return g


def _intgauge():
    g = _scalar(dm.IntGauge)()
    g.set(-12345)
    return g


def _histogram():
    h = _scalar(dm.Histogram, buckets=[0.5, 1, 2.5])()
    for v in (0.1, 1, 3, math.nan):
        h.observe(v)
    return h


EVERY_TYPE = [
    ("counter", _counter),
    ("intcounter", _intcounter),
    ("gauge", _gauge),
    ("intgauge", _intgauge),
    ("histogram", _histogram),
    ("countervec", _filled_vec(dm.CounterVec, _inc)),
    ("intcountervec", _filled_vec(dm.IntCounterVec, _inc)),
    ("gaugevec", _filled_vec(dm.GaugeVec, _set)),
    ("intgaugevec", _filled_vec(dm.IntGaugeVec, _iset)),
    ("histogramvec", _filled_vec(dm.HistogramVec, _observe, buckets=[0.5, 1, 2.5])),
]


@pytest.mark.parametrize("build", [b for _, b in EVERY_TYPE], ids=[i for i, _ in EVERY_TYPE])
def test_collect_model_encodes_to_the_same_text_as_write_text(build):
    metric = build()
    reg = dm.Registry()
    reg.register(metric)
    direct = []
    metric.write_text(direct.append)
    text = reg.prometheus_expfmt()
    assert expfmt.encode_to_string(metric.collect()) == text
    assert "".join(direct) == text
    assert expfmt.encode_to_string(reg.collect()) == text
    assert text.endswith("\n") and "\n\n" not in text


@pytest.mark.parametrize("build", [b for _, b in EVERY_TYPE], ids=[i for i, _ in EVERY_TYPE])
def test_collect_model_labels_are_sorted_with_le_last(build):
    for family in build().collect():
        for sample in family.samples:
            names = [k for k, _ in sample.labels]
            if names and names[-1] == "le":
                names.pop()
            assert names == sorted(names)
            assert "le" not in names


def test_collect_of_scalar_types_has_one_sample_with_exact_value():
    assert _counter().collect()[0].samples[0].value == 123.456789
    assert _intcounter().collect()[0].samples[0].value == 2**60 + 1
    assert type(_intcounter().collect()[0].samples[0].value) is int
    assert _intgauge().collect()[0].samples[0].value == -12345


def test_odd_label_values_are_escaped_in_text():
    g = dm.Gauge("g", "h", {"a": 'say "hi"', "b": "back\\slash", "c": "new\nline", "d": "ü✓"})
    assert scrape(g).splitlines()[2] == (
        'g{a="say \\"hi\\"",b="back\\\\slash",c="new\\nline",d="ü✓"} 0'
    )
