"""Counters: the cells (both implementations), ``Counter`` / ``IntCounter`` and their Vec children.

Both counter implementations are exercised by the same tests: the GIL-build
cells (``CounterCell``, ``IntCounterCell``) and the free-threaded fallback
(``LockedCounterCell``, ``LockedIntCounterCell``). A cell is built with the
family's ``threading.Lock``. Thread tests over the same classes live in
``test_threads.py``.
"""

import itertools
import math
from decimal import Decimal
from fractions import Fraction

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidValueError, MetricsError
from dyn_metrics.metrics import cells, counter
from dyn_metrics.metrics.cells import FOLD_AT
from tests.metrics.support import cell_id, new_cell, sample_lines, scrape

FLOAT_COUNTER_CELLS = [counter.CounterCell, counter.CounterVecCell, counter.LockedCounterCell]


INT_COUNTER_CELLS = [
    counter.IntCounterCell,
    counter.IntCounterVecCell,
    counter.LockedIntCounterCell,
]


COUNTER_CELLS = FLOAT_COUNTER_CELLS + INT_COUNTER_CELLS


# -- cells -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=cell_id)
def test_counter_cell_starts_at_zero(cls):
    cell = new_cell(cls)
    assert cell.get() == 0
    assert type(cell.get()) is (int if cls in INT_COUNTER_CELLS else float)


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=cell_id)
def test_counter_cell_inc_and_inc_by_add_up(cls):
    cell = new_cell(cls)
    cell.inc()
    cell.inc_by(2)
    cell.inc_by(0)
    cell.inc()
    assert cell.get() == 4


@pytest.mark.parametrize("cls", FLOAT_COUNTER_CELLS, ids=cell_id)
def test_counter_cell_inc_by_fraction(cls):
    cell = new_cell(cls)
    cell.inc_by(123.456789)
    assert cell.get() == 123.456789
    cell.inc()
    assert cell.get() == 123.456789 + 1


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=cell_id)
def test_counter_cell_reads_do_not_change_the_value(cls):
    # CounterCell reads through next() and must compensate for it.
    cell = new_cell(cls)
    cell.inc()
    reads = [cell.get() for _ in range(5)]
    reads.append(cell._read_locked())  # what a family read calls
    assert reads == [1] * 6
    cell.inc()
    assert cell.get() == 2


BAD_FLOAT_INCREMENTS = [
    # (amount, message prefix)
    (-1, "counter increment must be a finite number >= 0, got -1"),
    (-0.5, "counter increment must be a finite number >= 0, got -0.5"),
    (math.nan, "counter increment must be a finite number >= 0, got nan"),
    (math.inf, "counter increment must be a finite number >= 0, got inf"),
    (-math.inf, "counter increment must be a finite number >= 0, got -inf"),
    ("1", "counter increment must be a finite number >= 0, got '1'"),
    (None, "counter increment must be a finite number >= 0, got None"),
    ([1], "counter increment must be a finite number >= 0, got [1]"),
]


BAD_INT_INCREMENTS = [
    (1.0, "int counter increment must be an integer, got 1.0"),
    (0.5, "int counter increment must be an integer, got 0.5"),
    (math.nan, "int counter increment must be an integer, got nan"),
    (math.inf, "int counter increment must be an integer, got inf"),
    ("1", "int counter increment must be an integer, got '1'"),
    (None, "int counter increment must be an integer, got None"),
    (-1, "int counter increment must be an integer >= 0, got -1"),
    (-(2**70), "int counter increment must be an integer >= 0, got"),
]


# (cell classes, starting increment, bad increments): the value must not move.
BAD_INCREMENT_CASES = [
    (cls, 2.5, amount, prefix)
    for cls in FLOAT_COUNTER_CELLS
    for amount, prefix in BAD_FLOAT_INCREMENTS
] + [(cls, 3, amount, prefix) for cls in INT_COUNTER_CELLS for amount, prefix in BAD_INT_INCREMENTS]


@pytest.mark.parametrize("cls, start, amount, prefix", BAD_INCREMENT_CASES)
def test_counter_cell_rejects_bad_increment_and_keeps_value(cls, start, amount, prefix):
    cell = new_cell(cls)
    cell.inc_by(start)
    with pytest.raises(InvalidValueError) as info:
        cell.inc_by(amount)
    assert str(info.value).startswith(prefix)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MetricsError)
    assert cell.get() == start


@pytest.mark.parametrize("cls", INT_COUNTER_CELLS, ids=cell_id)
def test_int_counter_cell_holds_big_ints_exactly(cls):
    cell = new_cell(cls)
    cell.inc_by(2**70)
    cell.inc()
    assert cell.get() == 2**70 + 1
    assert type(cell.get()) is int


def test_counter_cell_class_matches_interpreter():
    float_cls = counter.counter_cell_class(integer=False)
    int_cls = counter.counter_cell_class(integer=True)
    if cells.GIL_ENABLED:
        assert (float_cls, int_cls) == (counter.CounterCell, counter.IntCounterCell)
        vec_classes = (
            counter.counter_cell_class(False, vec=True),
            counter.counter_cell_class(True, vec=True),
        )
        assert vec_classes == (counter.CounterVecCell, counter.IntCounterVecCell)
    else:
        assert (float_cls, int_cls) == (counter.LockedCounterCell, counter.LockedIntCounterCell)


@pytest.mark.parametrize(
    "cls",
    [
        counter.CounterCell,
        counter.IntCounterCell,
        counter.LockedCounterCell,
        counter.LockedIntCounterCell,
    ],
)
def test_counter_cells_read_many_equals_reading_each(cls):
    cells = [new_cell(cls) for _ in range(5)]
    for n, cell in enumerate(cells):
        for _ in range(n):
            cell.inc()
    assert cls._read_many(cells) == [0, 1, 2, 3, 4]
    assert cls._read_many(cells) == [0, 1, 2, 3, 4]  # reads leave the values alone
    assert [cell.get() for cell in cells] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "cls, amount",
    [(counter.CounterCell, 3), (counter.CounterCell, 3.0), (counter.IntCounterCell, 3)],
)
def test_counter_cell_inc_by_buffer_stays_bounded_and_exact(cls, amount):
    """Every path folds at FOLD_AT pending amounts (the inlined ones spell it as a literal)."""
    cell = new_cell(cls)
    longest = 0
    for _ in range(1000):
        cell.inc_by(amount)
        longest = max(longest, len(cell._value))
    assert longest == FOLD_AT  # [sum] and FOLD_AT - 1 amounts: the next one folds them
    assert cell.get() == 3000


def test_counter_cell_inc_by_converts_other_number_types_to_float():
    cell = new_cell(counter.CounterCell)
    cell.inc_by(Decimal("1.5"))
    cell.inc_by(Fraction(1, 4))
    cell.inc_by(True)
    assert cell.get() == 2.75
    assert isinstance(cell.get(), float)


def test_counter_cell_sums_inc_by_left_to_right_as_rust_does():
    cell = new_cell(counter.CounterCell)
    amounts = [0.1] * 10 + [1e16, 1.0, 1.0]
    for amount in amounts:
        cell.inc_by(amount)
    total = 0.0
    for amount in amounts:
        total += amount
    assert cell.get() == total


# Mixed inc()/inc_by() on a float counter: the value is what Rust's sequence
# of f64 additions gives (a reordered sum differs in the last digit).
MIXED_OPERATIONS = [
    [0.1, 1, 0.7],
    [0.1, 1, 0.1],
    [1, 1, 0.1],
    [0.1, 0.2, 1, 1, 0.3],
    [1e16, 1, 1, 1],
]


@pytest.mark.parametrize("operations", MIXED_OPERATIONS)
def test_counter_cell_mixed_inc_and_inc_by_add_in_rust_order(operations):
    cell = new_cell(counter.CounterCell)
    expected = 0.0
    for op in operations:
        if op == 1:
            cell.inc()
        else:
            cell.inc_by(op)
        expected += op
        assert cell.get() == expected


def test_counter_cell_inc_by_beyond_float_range_is_refused():
    cell = new_cell(counter.CounterCell)
    with pytest.raises(InvalidValueError):
        cell.inc_by(10**400)
    assert cell.get() == 0.0
    big = new_cell(counter.IntCounterCell)
    big.inc_by(10**400)  # int counters are unbounded
    assert big.get() == 10**400


# -- Counter and IntCounter --------------------------------------------------------------


def test_counter_inc_inc_by_get():
    c = dm.Counter("c_total", "h")
    c.inc()
    c.inc_by(2.5)
    assert c.get() == 3.5
    assert scrape(c) == "# HELP c_total h\n# TYPE c_total counter\nc_total 3.5\n"


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, math.inf, -math.inf, "1", None])
@pytest.mark.parametrize("cls", [dm.Counter, dm.IntCounter])
def test_counter_bad_increment_raises_and_keeps_value(cls, bad):
    c = cls("c_total", "h")
    c.inc_by(2)
    with pytest.raises(InvalidValueError):
        c.inc_by(bad)
    assert c.get() == 2


@pytest.mark.parametrize("bad", [1.0, 0.5, 1e20])
def test_intcounter_rejects_floats(bad):
    c = dm.IntCounter("c_total", "h")
    with pytest.raises(InvalidValueError) as info:
        c.inc_by(bad)
    assert str(info.value).startswith("int counter increment must be an integer")
    assert c.get() == 0


def test_intcounter_holds_big_ints_exactly():
    c = dm.IntCounter("c_total", "h")
    c.inc_by(2**70)
    c.inc()
    assert c.get() == 2**70 + 1
    assert scrape(c).endswith("\nc_total 1180591620717411303425\n")


def test_counter_registered_twice_shares_its_value():
    c = dm.Counter("c_total", "h")
    a, b = dm.Registry(), dm.Registry()
    a.register(c)
    b.register(c)
    c.inc_by(4)
    assert a.prometheus_expfmt() == b.prometheus_expfmt()
    assert a.prometheus_expfmt().endswith("c_total 4\n")


# -- CounterVec and IntCounterVec children -----------------------------------------------


def test_countervec_child_rejects_negative():
    child = dm.CounterVec("v", "h", ["a"]).with_label_values("x")
    child.inc_by(1.5)
    with pytest.raises(InvalidValueError):
        child.inc_by(-1)
    assert child.get() == 1.5


def test_intcountervec_child_rejects_floats_and_holds_big_ints():
    v = dm.IntCounterVec("v", "h", ["a"])
    child = v.with_label_values("x")
    with pytest.raises(InvalidValueError):
        child.inc_by(1.0)
    child.inc_by(2**70)
    assert sample_lines(scrape(v)) == [f'v{{a="x"}} {2**70}']


@pytest.mark.parametrize("integer", [False, True])
def test_counts_past_2_53_print_as_the_counter_type_rounds(integer):
    # A float counter's count past 2**53 prints as Rust's f64 holds it; an int
    # counter's exactly. Made at such a count directly: 2**53 inc() calls take years.
    vec = (dm.IntCounterVec if integer else dm.CounterVec)("m_total", "h", ["k"])
    vec.with_label_values("a").inc()
    scrape(vec)
    cell = itertools.count.__new__(vec._cell_class, 2**53 + 1)
    cell._value = 0
    vec._children[("b",)] = cell
    vec._logged(("b",))
    lines = sample_lines(scrape(vec))
    assert lines[0] == 'm_total{k="a"} 1'
    assert lines[1] == (
        'm_total{k="b"} 9007199254740993' if integer else 'm_total{k="b"} 9007199254740992'
    )
    assert cell.get() == (2**53 + 1 if integer else 2.0**53)
