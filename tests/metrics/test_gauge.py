"""Gauges: the lock-free cells, ``Gauge`` / ``IntGauge`` and their Vec children."""

import math

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidValueError
from dyn_metrics.metrics import gauge
from tests.metrics.support import cell_id, new_cell, scrape

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
        assert str(info.value).startswith("gauge value must be a number, got")
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
