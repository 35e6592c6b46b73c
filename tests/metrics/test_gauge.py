"""Gauges: the lock-free cells, ``Gauge`` / ``IntGauge`` and their Vec children."""

import fractions
import math

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidValueError
from dyn_metrics.metrics import gauge
from tests.metrics.support import NOT_REAL_ROWS, REAL_VALUE_ROWS, cell_id, new_cell, scrape

GAUGE_CELLS = [gauge.GaugeCell, gauge.IntGaugeCell]


# -- cells -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", GAUGE_CELLS, ids=cell_id)
def test_gauge_cell_operations(cls):
    cell = new_cell(cls)
    assert cell.get() == 0
    cell.set(10)
    cell.inc()
    cell.dec()
    cell.dec()
    cell.add(5)
    cell.sub(7)
    assert cell.get() == 10 + 1 - 1 - 1 + 5 - 7
    cell.set(-3)
    assert cell.get() == -3
    cell.inc_by(4)
    cell.dec_by(2)
    assert cell.get() == -1


def test_gauge_cell_takes_any_float():
    cell = new_cell(gauge.GaugeCell)
    for v in (0.1, -2.5, 1e300, -math.inf, math.inf):
        cell.set(v)
        assert cell.get() == v
    cell.set(math.nan)
    assert math.isnan(cell.get())
    cell.set(7)
    assert type(cell.get()) is float


@pytest.mark.parametrize("bad", ["1", None, [1], b"1"])
def test_gauge_cell_rejects_non_numbers(bad):
    cell = new_cell(gauge.GaugeCell)
    cell.set(1.5)
    for op in (cell.set, cell.add, cell.sub):
        with pytest.raises(InvalidValueError) as info:
            op(bad)
        assert str(info.value).startswith("gauge value must be a real number, got")
    assert cell.get() == 1.5


@pytest.mark.parametrize("bad", [1.0, 0.5, math.nan, "1", None])
def test_int_gauge_cell_rejects_non_integers(bad):
    cell = new_cell(gauge.IntGaugeCell)
    cell.set(4)
    for op in (cell.set, cell.add, cell.sub):
        with pytest.raises(InvalidValueError) as info:
            op(bad)
        assert str(info.value).startswith("int gauge value must be an integer, got")
    assert cell.get() == 4


def test_int_gauge_cell_holds_big_ints_exactly():
    cell = new_cell(gauge.IntGaugeCell)
    cell.set(-(2**70))
    cell.sub(1)
    assert cell.get() == -(2**70) - 1
    assert type(cell.get()) is int


@pytest.mark.parametrize(
    "value, stored", [r[1:] for r in REAL_VALUE_ROWS], ids=[r[0] for r in REAL_VALUE_ROWS]
)
def test_gauge_takes_real_numbers_as_exact_floats(value, stored):
    g = dm.Gauge("g", "g")
    g.set(value)
    assert g.get() == stored and type(g.get()) is float
    g.add(value)
    g.sub(value)
    g.add(value)
    assert g.get() == 2 * stored and type(g.get()) is float


@pytest.mark.parametrize("bad", [r[1] for r in NOT_REAL_ROWS], ids=[r[0] for r in NOT_REAL_ROWS])
def test_gauge_refuses_what_is_not_real_and_keeps_its_value(bad):
    g = dm.Gauge("g", "g")
    child = dm.GaugeVec("v", "v", ["a"]).with_label_values("x")
    for metric in (g, child):
        metric.set(1.5)
        metric.add(1.0)
        for op in (metric.set, metric.add, metric.sub, metric.inc_by, metric.dec_by):
            with pytest.raises(InvalidValueError) as info:
                op(bad)
            assert str(info.value) == f"gauge value must be a real number, got {bad!r}"
        assert metric.get() == 2.5
    # Nothing stored can fail a scrape.
    assert scrape(g) == "# HELP g g\n# TYPE g gauge\ng 2.5\n"


class _Index:
    def __init__(self, result):
        self.result = result

    def __index__(self):
        return self.result


INT_VALUE_ROWS = [
    # (id, value given, error or the int stored)
    ("int", 5, 5),
    ("bool", True, 1),
    ("__index__ int", _Index(4), 4),
    ("__index__ float", _Index(1.5), InvalidValueError),
    ("__index__ str", _Index("4"), InvalidValueError),
    ("float", 4.0, InvalidValueError),
    ("complex", 1j, InvalidValueError),
    ("fraction", fractions.Fraction(4, 1), InvalidValueError),
]


@pytest.mark.parametrize(
    "value, expected", [r[1:] for r in INT_VALUE_ROWS], ids=[r[0] for r in INT_VALUE_ROWS]
)
def test_int_metrics_take_operator_index(value, expected):
    g = dm.IntGauge("g", "g")
    c = dm.IntCounter("c", "c")
    g.set(2)
    c.inc_by(2)
    if expected is InvalidValueError:
        for op in (g.set, g.add, g.sub, c.inc_by):
            with pytest.raises(InvalidValueError, match=r"must be an integer, got "):
                op(value)
        assert g.get() == 2 and c.get() == 2
        assert scrape(g, c).endswith("# TYPE g gauge\ng 2\n")
    else:
        g.set(value)
        c.inc_by(value)
        assert g.get() == expected and type(g.get()) is int
        assert c.get() == 2 + expected and type(c.get()) is int


# -- Gauge and IntGauge ------------------------------------------------------------------


def test_gauge_operations_and_text():
    g = dm.Gauge("g", "h", {"k": "v"})
    g.set(50000)
    g.inc()
    g.dec()
    g.add(0.5)
    g.sub(0.25)
    assert g.get() == 50000.25
    assert scrape(g) == '# HELP g h\n# TYPE g gauge\ng{k="v"} 50000.25\n'


def test_gauge_set_negative_zero_keeps_its_sign():
    # Rust's f64 gauge stores -0.0 as given and prints it as "-0".
    g = dm.Gauge("g", "h")
    g.set(-0.0)
    assert math.copysign(1.0, g.get()) == -1.0
    assert scrape(g).endswith("\ng -0\n")


def test_intgauge_operations_and_rejects_floats():
    g = dm.IntGauge("g", "h")
    g.set(42)
    g.inc()
    g.sub(3)
    g.add(-100)
    assert g.get() == -60
    for op in (g.set, g.add, g.sub):
        with pytest.raises(InvalidValueError):
            op(1.5)
    assert g.get() == -60
    assert scrape(g).endswith("\ng -60\n")


# -- GaugeVec and IntGaugeVec children ---------------------------------------------------


def test_gaugevec_and_intgaugevec_children():
    gv = dm.GaugeVec("g", "h", ["a"])
    gv.with_label_values("x").set(2.5)
    gv.with_label_values("x").dec()
    igv = dm.IntGaugeVec("i", "h", ["a"])
    igv.with_label_values("x").set(10)
    with pytest.raises(InvalidValueError):
        igv.with_label_values("x").set(0.5)
    assert gv.with_label_values("x").get() == 1.5
    assert igv.with_label_values("x").get() == 10
