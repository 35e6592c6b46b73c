"""What the cells share: the stripe locks, folding buffered amounts, exact ints."""

import functools
import math
import operator
import sys
import threading
from decimal import Decimal
from fractions import Fraction

import hypothesis.strategies as st
import pytest
from hypothesis import given

from dyn_metrics.errors import InvalidValueError
from dyn_metrics.metrics import cells


class Index:
    """An integer type of another library (numpy's int64 behaves so)."""

    def __index__(self):
        return 7


AS_INT_ROWS = [
    # (value, expected int)
    (0, 0),
    (-(2**70), -(2**70)),
    (True, 1),
    (Index(), 7),
]


@pytest.mark.parametrize("value, expected", AS_INT_ROWS)
def test_as_int_keeps_integers_exact(value, expected):
    got = cells.as_int(value, "x")
    assert got == expected and type(got) is int


@pytest.mark.parametrize("bad", [1.0, math.nan, "1", None, Decimal("1"), Fraction(1, 1)], ids=repr)
def test_as_int_refuses_what_is_not_an_integer(bad):
    with pytest.raises(InvalidValueError) as info:
        cells.as_int(bad, "thing")
    assert str(info.value) == f"thing must be an integer, got {bad!r}"


FOLD_ROWS = [
    # (pending list, folded sum): left to right, as Rust adds
    ([0.0], 0.0),
    ([1, 2, 3], 6),
    # (not sum(): from Python 3.12 it compensates rounding, which Rust does not)
    ([0.1] * 11, functools.reduce(operator.add, [0.1] * 10, 0.1)),
    ([1e16, 1.0, 1.0], (1e16 + 1.0) + 1.0),
]


@pytest.mark.parametrize("pending, total", FOLD_ROWS)
def test_fold_sum_folds_in_place_left_to_right(pending, total):
    assert cells.fold_sum(pending) == total
    assert pending == [total]


def test_stripe_is_one_of_the_shared_locks_and_stable():
    cell = object()
    assert cells.stripe(cell) is cells.stripe(cell)
    assert any(cells.stripe(cell) is lock for lock in cells.STRIPES)
    assert len(cells.STRIPES) == 64


def test_take_all_holds_every_stripe_and_drop_all_releases_them():
    assert cells.take_all()
    try:
        assert all(lock.locked() for lock in cells.STRIPES)
    finally:
        cells.drop_all()
    assert not any(lock.locked() for lock in cells.STRIPES)
    assert cells._HELD.locks == []


def test_take_all_taken_half_way_are_released_on_interrupt():
    # An interrupt while waiting for the 11th stripe (a stand-in that raises
    # it) must release the ten already taken.
    class Refusing:
        def acquire(self, wait=True):
            raise KeyboardInterrupt

        def release(self):  # pragma: no cover - never taken
            raise AssertionError("released a lock that was not taken")

    saved = cells.STRIPES
    stand_ins = saved[:10] + (Refusing(),) + saved[11:]
    cells.STRIPES = stand_ins
    try:
        with pytest.raises(KeyboardInterrupt):
            cells.take_all()
    finally:
        cells.STRIPES = saved
    assert not any(lock.locked() for lock in saved)
    assert cells._HELD.locks == []


TAKE_ROWS = [
    # (id, held by this thread before, lock asked for, taken?)
    ("free lock", [], "a", True),
    ("held by this thread: tried, not waited for", ["a"], "a", False),
    ("another lock held", ["b"], "a", True),
]


@pytest.mark.parametrize(
    "held, wanted, taken", [r[1:] for r in TAKE_ROWS], ids=[r[0] for r in TAKE_ROWS]
)
def test_take_never_waits_for_a_lock_its_own_thread_holds(held, wanted, taken):
    locks = {"a": threading.Lock(), "b": threading.Lock()}
    for name in held:
        assert cells.take(locks[name])
    try:
        assert cells.take(locks[wanted]) is taken
        if taken:
            cells.drop(locks[wanted])
        assert cells._HELD.locks == [locks[n] for n in held]
    finally:
        for name in reversed(held):
            cells.drop(locks[name])
    assert cells._HELD.locks == []


def test_take_all_only_tries_when_this_thread_holds_a_stripe():
    lock = cells.STRIPES[5]
    assert cells.take(lock)
    try:
        assert cells.take_all() is False
        assert not cells.STRIPES[0].locked()  # all or nothing
    finally:
        cells.drop(lock)
    assert cells.take_all()
    cells.drop_all()


def test_peek_sum_equals_fold_and_changes_nothing():
    pending = [1.0, 0.1, 0.2, 0.3]
    assert cells.peek_sum(pending) == cells.fold_sum(list(pending))
    assert pending == [1.0, 0.1, 0.2, 0.3]


def test_read_one_by_one_reads_each_cell():
    class Cell:
        def __init__(self, value):
            self.value = value

        def _read_locked(self):
            return self.value

    assert cells.read_one_by_one([Cell(1), Cell(2.5)]) == [1, 2.5]


def test_gil_flag_matches_interpreter():
    expected = getattr(sys, "_is_gil_enabled", lambda: True)()
    assert cells.GIL_ENABLED is expected


@pytest.mark.parametrize(
    "start, ticks", [(0, 0), (0, 3), (2**70, 2)], ids=["fresh", "ticked", "beyond ssize_t"]
)
def test_count_of_reads_a_count_without_ticking_it(start, ticks):
    import itertools

    count = itertools.count(start)
    for _ in range(ticks):
        next(count)
    assert cells.count_of(count) == start + ticks
    assert cells.count_of(count) == start + ticks  # reading changed nothing
    assert next(count) == start + ticks


@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=0, max_value=2**70),
        ),
        max_size=20,
    ),
    st.sampled_from([0.0, -0.0, 0, 2.5]),
)
def test_add_in_order_adds_left_to_right_as_float_additions_do(items, start):
    expected = functools.reduce(operator.add, items, start)
    got = cells.add_in_order(items, start)
    assert type(got) is type(expected)
    assert got == expected or (got != got and expected != expected)
    if got == 0:
        assert math.copysign(1.0, got) == math.copysign(1.0, expected)
