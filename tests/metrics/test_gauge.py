"""Gauges: the lock-free cells, ``Gauge`` / ``IntGauge`` and their Vec children."""

import decimal
import fractions
import math
import threading
import time

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidValueError
from dyn_metrics.metrics import cells, gauge, gauge_functions
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
        ops = (metric.set, metric.add, metric.sub, metric.inc_by, metric.dec_by)
        for op in ops + (metric.inc, metric.dec):
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
        for op in (g.set, g.add, g.sub, g.inc, g.dec, c.inc_by):
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


INC_DEC_ROWS = [
    # (id, metric maker, calls from 10, value after)
    ("Gauge inc(2.5)", lambda: dm.Gauge("g", "g"), [("inc", 2.5)], 12.5),
    ("Gauge dec(0.5)", lambda: dm.Gauge("g", "g"), [("dec", 0.5)], 9.5),
    ("Gauge dec(int)", lambda: dm.Gauge("g", "g"), [("dec", 3)], 7.0),
    ("Gauge defaults", lambda: dm.Gauge("g", "g"), [("inc",), ("inc",), ("dec",)], 11.0),
    ("IntGauge inc(5)", lambda: dm.IntGauge("g", "g"), [("inc", 5)], 15),
    ("IntGauge dec(True)", lambda: dm.IntGauge("g", "g"), [("dec", True)], 9),
    ("IntGauge defaults", lambda: dm.IntGauge("g", "g"), [("inc",), ("dec",), ("dec",)], 9),
    ("child dec(-2)", lambda: dm.GaugeVec("g", "g", ["a"]).labels("x"), [("dec", -2)], 12.0),
    ("int child inc(2)", lambda: dm.IntGaugeVec("g", "g", ["a"]).labels("x"), [("inc", 2)], 12),
]


@pytest.mark.parametrize(
    "make, calls, value", [r[1:] for r in INC_DEC_ROWS], ids=[r[0] for r in INC_DEC_ROWS]
)
def test_inc_and_dec_take_an_amount_as_prometheus_client(make, calls, value):
    g = make()
    g.set(10)
    for name, *args in calls:
        getattr(g, name)(*args)
    assert g.get() == value and type(g.get()) is type(value)


def test_dec_error_names_the_value_given_not_its_negation():
    g = dm.IntGauge("g", "g")
    g.set(3)
    with pytest.raises(InvalidValueError) as info:
        g.dec(1.5)
    assert str(info.value) == "int gauge value must be an integer, got 1.5"
    assert g.get() == 3


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


# -- set_function ------------------------------------------------------------------------


def _family_leaves_out_none():
    """Whether family reads skip a None value (a sample left out), as family.py must."""

    class Omitting(gauge.GaugeCell):
        __slots__ = ()

        @staticmethod
        def _read_many(cells):
            return gauge_functions.PartialValues([None] * len(cells))

    class OmittingVec(dm.GaugeVec):
        _cell_class = Omitting

    vec = OmittingVec("probe", "p", ["a"])
    vec.labels("x")
    try:
        return scrape(vec) == "" and vec.collect() == []
    except TypeError:
        return False


needs_family = pytest.mark.skipif(
    not _family_leaves_out_none(),
    reason="family.py ScalarFamily.write_text must skip None values (the lead's change)",
)


def _raise(exc):
    def fn():
        raise exc

    return fn


def _read(metric):
    """What a scrape reads from a label-less gauge or a vec child (None: left out)."""
    cell = metric if isinstance(metric, gauge.GaugeCell) else metric._children[()]
    return type(cell)._read_many([cell])[0]


FUNCTION_ROWS = [
    # (id, gauge maker, what fn returns, value read; None: sample left out, error counted)
    ("float", dm.Gauge, 2.5, 2.5),
    ("int to a float gauge", dm.Gauge, 3, 3.0),
    ("bool", dm.Gauge, True, 1.0),
    ("decimal", dm.Gauge, decimal.Decimal("0.5"), 0.5),
    ("inf", dm.Gauge, math.inf, math.inf),
    ("str", dm.Gauge, "1", None),
    ("None", dm.Gauge, None, None),
    ("complex", dm.Gauge, 1j, None),
    ("int beyond float", dm.Gauge, 10**400, None),
    ("int gauge: int", dm.IntGauge, 7, 7),
    ("int gauge: big int", dm.IntGauge, 2**70, 2**70),
    ("int gauge: bool", dm.IntGauge, True, 1),
    ("int gauge: __index__", dm.IntGauge, _Index(4), 4),
    ("int gauge: float", dm.IntGauge, 7.0, None),
    ("int gauge: str", dm.IntGauge, "7", None),
    ("int gauge: fraction", dm.IntGauge, fractions.Fraction(4, 1), None),
]


@pytest.mark.parametrize(
    "make, result, read", [r[1:] for r in FUNCTION_ROWS], ids=[r[0] for r in FUNCTION_ROWS]
)
def test_set_function_result_rows(make, result, read):
    vec_type = dm.IntGaugeVec if make is dm.IntGauge else dm.GaugeVec
    for metric in (make("g", "g"), vec_type("v", "v", ["a"]).labels("x")):
        metric.set_function(lambda: result)
        errors = gauge_functions.function_errors_total()
        got = _read(metric)
        if read is None:
            assert got is None
            assert gauge_functions.function_errors_total() == errors + 1
            with pytest.raises(InvalidValueError, match=r"gauge function result must be an? "):
                metric.get()
        else:
            assert got == read and type(got) is type(read)
            assert metric.get() == read and type(metric.get()) is type(read)
            assert gauge_functions.function_errors_total() == errors


def test_function_that_raises_is_left_out_logged_and_counted(caplog):
    vec = dm.GaugeVec("v", "v", ["a"])
    vec.labels("ok").set(1.0)
    vec.labels("bad").set_function(_raise(ZeroDivisionError("division by zero")))
    vec.labels("fn").set_function(lambda: 5)
    cells = [vec.labels(k) for k in ("bad", "fn", "ok")]
    errors = gauge_functions.function_errors_total()
    with caplog.at_level("ERROR", logger="dyn_metrics.metrics.gauge"):
        values = gauge.GaugeCell._read_many(cells)
    assert values == [None, 5.0, 1.0] and isinstance(values, gauge_functions.PartialValues)
    assert gauge_functions.function_errors_total() == errors + 1
    [record] = caplog.records
    assert "ZeroDivisionError('division by zero')" in record.getMessage()
    assert "\n" not in record.getMessage()
    with pytest.raises(ZeroDivisionError):  # get() gives the caller the function's error
        cells[0].get()
    assert gauge_functions.function_errors_total() == errors + 1


def test_reads_with_every_value_present_are_plain_lists():
    vec = dm.GaugeVec("v", "v", ["a"])
    vec.labels("a").set_function(lambda: 2)
    vec.labels("b").set(3)
    values = gauge.GaugeCell._read_many([vec.labels("a"), vec.labels("b")])
    assert values == [2.0, 3.0] and type(values) is list


def test_a_base_exception_from_a_function_is_not_swallowed():
    g = dm.Gauge("g", "g")
    g.set_function(_raise(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _read(g)


SEQUENCE_ROWS = [
    # (id, calls after set(3) and set_function(lambda: 7), value read)
    ("function gives the value", [], 7.0),
    ("inc/dec/add/sub change nothing", ["inc", "dec", "dec", ("add", 5), ("sub", 1)], 7.0),
    ("set replaces the function", [("set", 2)], 2.0),
    ("set then inc", [("set", 2), "inc"], 3.0),
    ("None brings back the value from before", [("set_function", None)], 3.0),
    ("inc meanwhile is not kept", ["inc", ("set_function", None)], 3.0),
    ("None then inc", [("set_function", None), "inc"], 4.0),
    ("None twice", [("set_function", None), ("set_function", None)], 3.0),
    ("another function", [("set_function", lambda: 9)], 9.0),
    ("another, then None", [("set_function", lambda: 9), ("set_function", None)], 3.0),
    ("set, then None changes nothing", [("set", 2), ("set_function", None)], 2.0),
    ("track_inprogress changes nothing", ["track"], 7.0),
]


@pytest.mark.parametrize(
    "calls, value", [r[1:] for r in SEQUENCE_ROWS], ids=[r[0] for r in SEQUENCE_ROWS]
)
def test_set_function_with_the_other_methods(calls, value):
    for metric in (dm.Gauge("g", "g"), dm.GaugeVec("v", "v", ["a"]).labels("x")):
        metric.set(3)
        metric.set_function(lambda: 7)
        for call in calls:
            if call == "track":
                with metric.track_inprogress():
                    assert metric.get() == 7.0
            elif isinstance(call, str):
                getattr(metric, call)()
            else:
                getattr(metric, call[0])(call[1])
        assert metric.get() == value and _read(metric) == value


def test_deltas_while_a_function_is_set_do_not_pile_up():
    cell = new_cell(gauge.GaugeCell)
    cell.set_function(lambda: 1)
    for _ in range(10_000):
        cell.inc()
    assert len(cell._value) <= gauge.FOLD_AT + 1
    assert cell.get() == 1.0


@pytest.mark.parametrize("bad", [5, "fn", 1.5, [len]])
def test_set_function_refuses_what_is_not_callable_and_changes_nothing(bad):
    for metric in (dm.Gauge("g", "g"), dm.IntGaugeVec("v", "v", ["a"]).labels("x")):
        metric.set(4)
        with pytest.raises(InvalidValueError) as info:
            metric.set_function(bad)
        assert str(info.value) == f"gauge function must be callable or None, got {bad!r}"
        assert metric.get() == 4
        metric.set_function(lambda: 6)
        with pytest.raises(InvalidValueError):
            metric.set_function(bad)
        assert metric.get() == 6  # the function stays


def test_repr_of_a_function_gauge_does_not_call_it():
    cell = new_cell(gauge.GaugeCell)
    cell.set_function(_raise(AssertionError("called")))
    assert repr(cell) == "<GaugeCell function=_raise.<locals>.fn>"
    cell.set_function(cell.get)  # the function's own repr holds the cell
    assert repr(cell) == "<GaugeCell function=GaugeCell.get>"


def test_function_may_update_and_read_metrics_during_a_scrape():
    other = dm.Gauge("o", "o")
    vec = dm.GaugeVec("v", "v", ["a"])
    vec.labels("x").set(2)

    def fn():
        other.inc()
        # A scrape of another registry, from inside the function.
        assert scrape(other) == f"# HELP o o\n# TYPE o gauge\no {other.get():g}\n"
        return vec.labels("x").get() + other.get() + _read(other)

    vec.labels("y").set_function(fn)
    assert gauge.GaugeCell._read_many([vec.labels("x"), vec.labels("y")]) == [2.0, 4.0]


def test_function_reading_its_own_gauge_is_left_out_not_recursing():
    g = dm.Gauge("g", "g")
    g.set_function(lambda: _read(g) or 0.0)  # the nested read leaves the sample out
    errors = gauge_functions.function_errors_total()
    assert _read(g) == 0.0
    assert gauge_functions.function_errors_total() == errors + 1
    g.set_function(g.get)
    with pytest.raises(InvalidValueError, match="was called from within itself"):
        g.get()


# -- set_to_current_time -----------------------------------------------------------------

CURRENT_TIME_ROWS = [
    # (id, metric maker, time.time(), value stored)
    ("Gauge", lambda: dm.Gauge("g", "g"), 1764590400.75, 1764590400.75),
    ("IntGauge: whole seconds", lambda: dm.IntGauge("g", "g"), 1764590400.75, 1764590400),
    ("GaugeVec child", lambda: dm.GaugeVec("g", "g", ["a"]).labels("x"), 12.5, 12.5),
    ("IntGaugeVec child", lambda: dm.IntGaugeVec("g", "g", ["a"]).labels("x"), 12.5, 12),
]


@pytest.mark.parametrize(
    "make, now, stored", [r[1:] for r in CURRENT_TIME_ROWS], ids=[r[0] for r in CURRENT_TIME_ROWS]
)
def test_set_to_current_time(monkeypatch, make, now, stored):
    monkeypatch.setattr(time, "time", lambda: now)
    g = make()
    g.set_function(lambda: 1)
    g.set_to_current_time()  # replaces the function, as set() does
    assert g.get() == stored and type(g.get()) is type(stored)


# -- through the registry (needs family.py to skip None) ---------------------------------


@needs_family
def test_function_gauges_through_both_encoders():
    reg = dm.Registry()
    g = dm.Gauge("g", "plain")
    vec = dm.IntGaugeVec("v", "vec", ["a"])
    reg.register(g)
    reg.register(vec)
    g.set_function(lambda: 1.5)
    vec.labels("bad").set_function(_raise(RuntimeError("x")))
    vec.labels("float").set_function(lambda: 2.5)  # not an integer: left out too
    vec.labels("ok").set_function(lambda: 3)
    vec.labels("plain").set(4)
    errors = gauge_functions.function_errors_total()
    assert reg.prometheus_expfmt() == (
        "# HELP g plain\n# TYPE g gauge\ng 1.5\n"
        '# HELP v vec\n# TYPE v gauge\nv{a="ok"} 3\nv{a="plain"} 4\n'
    )
    assert gauge_functions.function_errors_total() == errors + 2
    assert reg.openmetrics_expfmt() == (
        "# TYPE g gauge\n# HELP g plain\ng 1.5\n"
        '# TYPE v gauge\n# HELP v vec\nv{a="ok"} 3\nv{a="plain"} 4\n# EOF\n'
    )
    assert gauge_functions.function_errors_total() == errors + 4


@needs_family
def test_a_family_whose_only_sample_is_left_out_is_not_written():
    reg = dm.Registry()
    g = dm.Gauge("g", "g")
    reg.register(g)
    g.set_function(_raise(ValueError("x")))
    assert reg.prometheus_expfmt() == ""
    assert "g" not in reg.openmetrics_expfmt()
    g.set_function(None)
    assert reg.prometheus_expfmt() == "# HELP g g\n# TYPE g gauge\ng 0\n"


@needs_family
def test_function_that_scrapes_its_own_registry_does_not_deadlock():
    reg = dm.Registry()
    g = dm.Gauge("g", "g")
    other = dm.Gauge("o", "o")
    reg.register(g)
    reg.register(other)
    other.set(2)
    inner = []

    def fn():
        inner.append(reg.prometheus_expfmt())  # the nested scrape leaves g out
        return len(inner)

    g.set_function(fn)
    done = []
    thread = threading.Thread(target=lambda: done.append(reg.prometheus_expfmt()))
    thread.start()
    thread.join(60.0)
    assert not thread.is_alive()
    assert done == ["# HELP g g\n# TYPE g gauge\ng 1\n# HELP o o\n# TYPE o gauge\no 2\n"]
    assert inner == ["# HELP o o\n# TYPE o gauge\no 2\n"]


def test_function_read_nested_in_a_scrape_that_holds_the_stripes():
    # As a signal handler's scrape during a scrape: nothing may wait for a stripe.
    other = dm.Gauge("o", "o")
    cell = new_cell(gauge.GaugeCell)

    def fn():
        other.inc()
        return other.get() + 1

    cell.set_function(fn)
    assert cells.take_all()
    try:
        assert gauge.GaugeCell._read_many([cell]) == [2.0]
        assert cell.get() == 3.0
    finally:
        cells.drop_all()
    assert other.get() == 2.0
