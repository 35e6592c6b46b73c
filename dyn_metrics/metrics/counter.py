"""Counters: the cells, ``Counter`` / ``IntCounter`` and their Vecs.

The common paths avoid a lock round trip (about 170 ns in CPython, more than
the whole budget of an increment):

* :class:`CounterCell` *is* an :class:`itertools.count`: ``inc()`` is one call
  of the C-level ``count.__next__``, which runs entirely while holding the GIL
  and so never loses an update. A read also calls ``next`` (the only way to
  observe a count without copying it), so each cell remembers how many reads
  it has taken (``_reads``) and subtracts them.
* ``inc_by(v)`` appends ``v`` to a list (``list.append``, one atomic C call
  too) that reads fold into the sum, left to right as Rust adds.

Reads and folds take the cell's stripe (``cells.stripe``). On a free-threaded
interpreter (``sys._is_gil_enabled()`` is false) nothing guarantees that
``count.__next__`` is atomic, so :func:`counter_cell_class` returns
:class:`LockedCounterCell`, which takes its own lock on every update.

Counters never go down: negative, NaN or infinite increments raise
:class:`InvalidValueError` and change nothing.
"""

import itertools
import threading
from typing import TYPE_CHECKING, NoReturn, Union, cast

from ..errors import InvalidValueError
from ..model import COUNTER, Number
from .cells import (
    ALL_STRIPES,
    EXACT_INT,
    FOLD_AT,
    GIL_ENABLED,
    INF,
    as_int,
    fold_sum,
    read_one_by_one,
    stripe,
)
from .family import CellClass, ScalarFamily, ScalarMetric
from .vec import MetricVec

if TYPE_CHECKING:
    _Count = itertools.count[int]
else:  # itertools.count takes no type arguments at run time
    _Count = itertools.count


def _float_increment(amount: float) -> float:
    """``amount`` as an int or float if it is a finite number >= 0.

    Anything else raises :class:`InvalidValueError`. Other number types
    (Decimal, Fraction, numpy scalars) become floats, so sums stay floats.
    """
    try:
        if 0.0 <= amount < INF:
            amount = amount if amount.__class__ is float else float(amount)
            if amount < INF:  # an int beyond a float's range rounds to inf
                return amount
    except (TypeError, ValueError, OverflowError):  # not a number at all
        pass
    raise InvalidValueError(f"counter increment must be a finite number >= 0, got {amount!r}")


def _int_increment(amount: object) -> int:
    """``amount`` if it is an integer >= 0, else :class:`InvalidValueError`."""
    number = as_int(amount, "int counter increment")
    if number < 0:
        raise InvalidValueError(f"int counter increment must be an integer >= 0, got {number!r}")
    return number


class CounterCell(_Count):
    """A float counter whose updates are single atomic C calls (GIL builds).

    ``inc()`` is ``count.__next__``. ``_value`` holds the sum of ``inc_by``
    amounts: a number until the first ``inc_by``, then a list ``[sum,
    pending...]`` to which ``inc_by`` appends (``list.append`` is atomic), so
    neither path takes a lock. Pending amounts are folded into ``list[0]``,
    left to right as Rust adds them, under the cell's stripe: at every read
    and whenever 256 are pending.
    """

    __slots__ = ("_value", "_reads")
    _value: Union[Number, list[Number]]
    _reads: int
    _increment = staticmethod(_float_increment)

    def __new__(cls, lock: threading.Lock) -> "CounterCell":
        # itertools.count.__new__ takes the start; the counter starts at 0.
        return super().__new__(cls)  # type: ignore[return-value]  # count.__new__ makes a cls

    def __init__(self, lock: threading.Lock) -> None:
        self._value = 0.0
        self._reads = 0

    def inc(self) -> None:
        """Add 1. Lock-free and thread-safe."""
        if self._value.__class__ is list:
            # Amounts are buffered: add 1 in turn with them, so the float sum
            # rounds exactly as Rust's sequence of additions does.
            self.inc_by(1.0)
        else:
            next(self)

    def inc_by(self, amount: Number) -> None:
        """Add ``amount`` (finite and >= 0); :class:`InvalidValueError` otherwise.

        Lock-free and thread-safe (an int counter takes ints >= 0).
        """
        cls = amount.__class__
        if cls is float:
            if not 0.0 <= amount < INF:
                amount = self._increment(amount)  # raises
        elif cls is not int or not 0 <= amount < EXACT_INT:
            amount = self._increment(amount)  # raises, or converts
        pending = self._value
        if pending.__class__ is not list:
            pending = self._pending_list()
        pending.append(amount)
        if len(pending) > FOLD_AT:
            with stripe(self):
                fold_sum(pending)

    def _pending_list(self) -> list[Number]:
        with stripe(self):
            value = self._value
            # Re-checked under the stripe: two first calls make one list.
            if isinstance(value, list):
                return value
            # The increments counted so far go first in the sum, in the order
            # Rust would have added them; the count then only tracks reads
            # (see inc()).
            ticks = next(self)
            pending = [value + (ticks - self._reads)]
            self._value = pending
            self._reads = ticks + 1
            return pending

    def get(self) -> Number:
        """The current value."""
        return self._read_locked()

    def _read_locked(self) -> Number:
        """The value (a family read calls it with the family lock held)."""
        with stripe(self):
            ticks = next(self) - self._reads
            self._reads += 1
            return ticks + _sum_of(self._value)

    @staticmethod
    def read_many(cells: list["CounterCell"]) -> list[Number]:
        """The values of many cells at once (what a family read uses)."""
        with ALL_STRIPES:
            values = [next(cell) - cell._reads + _sum_of(cell._value) for cell in cells]
            for cell in cells:
                cell._reads += 1
        return values

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self.get()!r}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"cannot pickle {type(self).__name__}")


def _sum_of(value: Union[Number, list[Number]]) -> Number:
    """A counter cell's ``inc_by`` total; its stripe is held."""
    # The exact-class test (cheaper than isinstance on this scrape path)
    # narrows only its true branch for mypy; the value is a number otherwise.
    return value if value.__class__ is not list else fold_sum(value)  # type: ignore[return-value]


class IntCounterCell(CounterCell):
    """An integer counter (unbounded Python int; Dynamo's is a u64)."""

    __slots__ = ()

    def __init__(self, lock: threading.Lock) -> None:
        self._value = 0
        self._reads = 0

    _increment = staticmethod(_int_increment)

    def inc(self) -> None:
        """Add 1. Lock-free (integer sums are exact in any order)."""
        next(self)

    def inc_by(self, amount: float) -> None:
        """Add an integer >= 0; :class:`InvalidValueError` otherwise. Lock-free."""
        CounterCell.inc_by(self, _int_increment(amount))


class LockedCounterCell:
    """The counter for free-threaded interpreters: every update takes a lock."""

    __slots__ = ("_value", "_lock")
    _value: Number
    _zero: Number = 0.0
    _increment = staticmethod(_float_increment)

    def __init__(self, lock: threading.Lock) -> None:
        # Its own lock, so threads updating different children never contend.
        self._value = self._zero
        self._lock = threading.Lock()

    def inc(self) -> None:
        """Add 1."""
        with self._lock:
            self._value += 1

    def inc_by(self, amount: float) -> None:
        """Add ``amount`` (finite and >= 0; an int >= 0 for int counters)."""
        number = self._increment(amount)
        with self._lock:
            self._value += number

    def get(self) -> Number:
        """The current value (a single attribute read: atomic)."""
        return self._value

    _read_locked = get
    read_many = staticmethod(read_one_by_one)


class LockedIntCounterCell(LockedCounterCell):
    """The free-threaded integer counter."""

    __slots__ = ()
    _zero = 0
    _increment = staticmethod(_int_increment)


#: What a counter child is on this interpreter (see :func:`counter_cell_class`).
CounterChild = Union[CounterCell, LockedCounterCell]


def counter_cell_class(integer: bool) -> CellClass[CounterChild, Number]:
    """The counter cell class for this interpreter (see the module docstring)."""
    if GIL_ENABLED:
        cls: type[CounterChild] = IntCounterCell if integer else CounterCell
    else:
        cls = LockedIntCounterCell if integer else LockedCounterCell
    # All counter cells of a process are of the class chosen here, so each
    # class's read_many only ever sees its own cells; the type system cannot
    # express a choice made once at import, hence the cast.
    return cast("CellClass[CounterChild, Number]", cls)


class Counter(ScalarMetric[CounterChild]):
    """A float counter: ``inc()``, ``inc_by(v)`` (finite, >= 0), ``get()``.

    Negative, NaN or infinite increments raise :class:`InvalidValueError`.
    Mirrors rust-prometheus' ``Counter``.
    """

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False)
    _methods = ("inc", "inc_by", "get")

    def inc(self) -> None:
        """Add 1."""

    def inc_by(self, amount: float) -> None:
        """Add ``amount`` (finite, >= 0)."""

    def get(self) -> Number:
        """The current value."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)


class IntCounter(Counter):
    """An integer counter; ``inc_by`` takes non-negative ints (values are unbounded)."""

    _cell_class = counter_cell_class(integer=True)


class CounterVec(MetricVec[CounterChild, Number], ScalarFamily[CounterChild]):
    """Float counters by label values (rust-prometheus ``CounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False)


class IntCounterVec(MetricVec[CounterChild, Number], ScalarFamily[CounterChild]):
    """Integer counters by label values (``IntCounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=True)
