"""Value cells: counter, gauge and histogram semantics.

Both counter implementations are exercised by the same tests: the GIL-build
cells (``CounterCell``, ``IntCounterCell``) and the free-threaded fallback
(``LockedCounterCell``, ``LockedIntCounterCell``). A cell is built with the
family's ``threading.Lock``. Thread tests over the same classes live in
``test_threads.py``.
"""

import math
import threading
import time
from decimal import Decimal
from fractions import Fraction

import pytest

from dyn_metrics.errors import InvalidValueError, MetricsError
from dyn_metrics.metrics import values

FLOAT_COUNTER_CELLS = [values.CounterCell, values.LockedCounterCell]
INT_COUNTER_CELLS = [values.IntCounterCell, values.LockedIntCounterCell]
COUNTER_CELLS = FLOAT_COUNTER_CELLS + INT_COUNTER_CELLS
GAUGE_CELLS = [values.GaugeCell, values.IntGaugeCell]
BOUNDS = (1.0, 2.5, 5.0)


def _cell_id(cls):
    return cls.__name__


def new_cell(cls):
    return cls(threading.Lock())


def new_histogram(bounds=BOUNDS):
    return values.HistogramCell(threading.Lock(), bounds)


def snapshot(cell):
    with cell._lock:
        return cell.snapshot_locked()


# -- counters ---------------------------------------------------------------


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=_cell_id)
def test_counter_cell_starts_at_zero(cls):
    cell = new_cell(cls)
    assert cell.get() == 0
    assert type(cell.get()) is (int if cls in INT_COUNTER_CELLS else float)


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=_cell_id)
def test_counter_cell_inc_and_inc_by_add_up(cls):
    cell = new_cell(cls)
    cell.inc()
    cell.inc_by(2)
    cell.inc_by(0)
    cell.inc()
    assert cell.get() == 4


@pytest.mark.parametrize("cls", FLOAT_COUNTER_CELLS, ids=_cell_id)
def test_counter_cell_inc_by_fraction(cls):
    cell = new_cell(cls)
    cell.inc_by(123.456789)
    assert cell.get() == 123.456789
    cell.inc()
    assert cell.get() == 123.456789 + 1


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=_cell_id)
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


@pytest.mark.parametrize("cls", INT_COUNTER_CELLS, ids=_cell_id)
def test_int_counter_cell_holds_big_ints_exactly(cls):
    cell = new_cell(cls)
    cell.inc_by(2**70)
    cell.inc()
    assert cell.get() == 2**70 + 1
    assert type(cell.get()) is int


def test_counter_cell_class_matches_interpreter():
    float_cls = values.counter_cell_class(integer=False)
    int_cls = values.counter_cell_class(integer=True)
    if values.GIL_ENABLED:
        assert (float_cls, int_cls) == (values.CounterCell, values.IntCounterCell)
    else:
        assert (float_cls, int_cls) == (values.LockedCounterCell, values.LockedIntCounterCell)


# -- gauges -----------------------------------------------------------------


@pytest.mark.parametrize("cls", GAUGE_CELLS, ids=_cell_id)
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
    cell = new_cell(values.GaugeCell)
    for v in (0.1, -2.5, 1e300, -math.inf, math.inf):
        cell.set(v)
        assert cell.get() == v
    cell.set(math.nan)
    assert math.isnan(cell.get())
    cell.set(7)
    assert type(cell.get()) is float


@pytest.mark.parametrize("bad", ["1", None, [1], b"1"])
def test_gauge_cell_rejects_non_numbers(bad):
    cell = new_cell(values.GaugeCell)
    cell.set(1.5)
    for op in (cell.set, cell.add, cell.sub):
        with pytest.raises(InvalidValueError) as info:
            op(bad)
        assert str(info.value).startswith("gauge value must be a number, got")
    assert cell.get() == 1.5


@pytest.mark.parametrize("bad", [1.0, 0.5, math.nan, "1", None])
def test_int_gauge_cell_rejects_non_integers(bad):
    cell = new_cell(values.IntGaugeCell)
    cell.set(4)
    for op in (cell.set, cell.add, cell.sub):
        with pytest.raises(InvalidValueError) as info:
            op(bad)
        assert str(info.value).startswith("int gauge value must be an integer, got")
    assert cell.get() == 4


def test_int_gauge_cell_holds_big_ints_exactly():
    cell = new_cell(values.IntGaugeCell)
    cell.set(-(2**70))
    cell.sub(1)
    assert cell.get() == -(2**70) - 1
    assert type(cell.get()) is int


# -- histograms -------------------------------------------------------------


def test_histogram_cell_observations_are_cumulative_with_le_semantics():
    cell = new_histogram()
    for v in (0.5, 1.0, 2.0, 2.5, 4.0, 100.0):
        cell.observe(v)
    cumulative, total, count = snapshot(cell)
    # le="1": 0.5, 1.0; le="2.5": + 2.0, 2.5; le="5": + 4.0; +Inf: + 100
    assert cumulative == [2, 4, 5, 6]
    assert total == 110.0
    assert count == 6
    assert cell.get_sample_count() == 6
    assert cell.get_sample_sum() == 110.0


def test_histogram_cell_nan_counts_only_in_inf_bucket():
    cell = new_histogram()
    cell.observe(math.nan)
    cumulative, total, count = snapshot(cell)
    assert cumulative == [0, 0, 0, 1]
    assert count == 1
    assert math.isnan(total)


def test_histogram_cell_negative_infinity_lands_in_first_bucket():
    cell = new_histogram()
    cell.observe(-math.inf)
    cell.observe(math.inf)
    cumulative, total, count = snapshot(cell)
    assert cumulative == [1, 1, 1, 2]
    assert count == 2
    assert math.isnan(total)  # -inf + inf


def test_histogram_cell_many_observations_fold_exactly():
    # More than the pending-buffer size, so folds happen during observe.
    cell = new_histogram()
    n = 1000
    for i in range(n):
        cell.observe((0.5, 2.0, 3.0, 10.0)[i % 4])
    cumulative, total, count = snapshot(cell)
    assert cumulative == [n // 4, n // 2, 3 * n // 4, n]
    assert total == (0.5 + 2.0 + 3.0 + 10.0) * n / 4
    assert count == n


def test_histogram_cell_time_as_context_manager():
    cell = new_histogram((0.5, 60.0))
    with cell.time():
        time.sleep(0.001)
    assert cell.get_sample_count() == 1
    assert 0.0 < cell.get_sample_sum() < 60.0


def test_histogram_cell_time_observes_even_when_block_raises():
    cell = new_histogram()
    with pytest.raises(RuntimeError):
        with cell.time():
            raise RuntimeError("boom")
    assert cell.get_sample_count() == 1


def test_histogram_cell_time_as_decorator():
    cell = new_histogram()

    @cell.time()
    def work(x):
        """Doc of work."""
        return x * 2

    assert work(21) == 42
    assert work(1) == 2
    assert work.__name__ == "work" and work.__doc__ == "Doc of work."
    assert cell.get_sample_count() == 2
    assert cell.get_sample_sum() >= 0.0


def test_histogram_cell_start_timer_observe_duration():
    cell = new_histogram()
    timer = cell.start_timer()
    elapsed = timer.observe_duration()
    assert elapsed >= 0.0
    assert cell.get_sample_count() == 1
    assert cell.get_sample_sum() == elapsed


@pytest.mark.parametrize(
    "cls",
    [
        values.CounterCell,
        values.IntCounterCell,
        values.LockedCounterCell,
        values.LockedIntCounterCell,
    ],
)
def test_counter_cells_read_many_equals_reading_each(cls):
    cells = [new_cell(cls) for _ in range(5)]
    for n, cell in enumerate(cells):
        for _ in range(n):
            cell.inc()
    assert cls.read_many(cells) == [0, 1, 2, 3, 4]
    assert cls.read_many(cells) == [0, 1, 2, 3, 4]  # reads leave the values alone
    assert [cell.get() for cell in cells] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("cls", [values.CounterCell, values.IntCounterCell])
def test_counter_cell_inc_by_buffer_stays_bounded_and_exact(cls):
    cell = new_cell(cls)
    for _ in range(1000):
        cell.inc_by(3)
        assert len(cell._value) <= 257  # [sum] + at most 256 pending amounts
    assert cell.get() == 3000


def test_counter_cell_inc_by_converts_other_number_types_to_float():
    cell = new_cell(values.CounterCell)
    cell.inc_by(Decimal("1.5"))
    cell.inc_by(Fraction(1, 4))
    cell.inc_by(True)
    assert cell.get() == 2.75
    assert isinstance(cell.get(), float)


def test_counter_cell_sums_inc_by_left_to_right_as_rust_does():
    cell = new_cell(values.CounterCell)
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
    cell = new_cell(values.CounterCell)
    expected = 0.0
    for op in operations:
        if op == 1:
            cell.inc()
        else:
            cell.inc_by(op)
        expected += op
        assert cell.get() == expected


def test_counter_cell_inc_by_beyond_float_range_is_refused():
    cell = new_cell(values.CounterCell)
    with pytest.raises(InvalidValueError):
        cell.inc_by(10**400)
    assert cell.get() == 0.0
    big = new_cell(values.IntCounterCell)
    big.inc_by(10**400)  # int counters are unbounded
    assert big.get() == 10**400
