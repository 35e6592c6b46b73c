"""Counters: the cells, ``Counter`` / ``IntCounter`` and their Vecs.

The common paths avoid a lock round trip (about 170 ns in CPython, more than
the whole budget of an increment):

* :class:`CounterCell` keeps its increments in an :class:`itertools.count`
  (it extends one; a vec child hides the iterator methods, see
  :class:`CounterVecCell`): ``inc()`` is one call of the C-level
  ``count.__next__``, which runs entirely while holding the GIL and so never
  loses an update.
* ``inc_by(v)`` appends ``v`` to a list (``list.append``, one atomic C call
  too) that reads fold into the sum, left to right as Rust adds.

Reading a count means calling ``__next__`` too (the only fast way to observe
it), so a read ticks the cell *and* the cell's own read count (``_reads``,
made at the first read) in one C-level call (``map`` over both): the
increments are the difference, exact with any number of readers at once and
with no lock, and no signal handler or GC callback can run between the two
ticks. A read that finds no read count yet and cannot make one (its stripe is
held by its own thread) parses the count's ``repr``, which changes nothing.

The first ``inc_by`` turns ``_value`` into the list under the cell's stripe
(:func:`cells.take`). When that stripe is held by the same thread (an
``inc_by`` nested in a signal handler during a scrape), the amount goes to
:data:`DEFERRED` instead, counted by reads and moved into the list by the
next ``inc_by``: nothing waits and nothing is lost.

On a free-threaded interpreter nothing guarantees that ``count.__next__`` is
atomic, so :func:`counter_cell_class` picks the cells of ``locked.py``.

Counters never go down: negative, NaN or infinite increments raise
:class:`InvalidValueError` and change nothing.
"""

import functools
import itertools
import operator
import threading
from collections.abc import Mapping
from time import time as _now
from typing import TYPE_CHECKING, NoReturn, Optional, Union, cast

from ..model import COUNTER, Exemplar, Number, Sample
from .cells import (
    EXACT_INT,
    FOLD_AT,
    GIL_ENABLED,
    INF,
    count_of,
    drop,
    drop_all,
    float_increment,
    fold_free,
    fold_sum,
    hidden,
    int_increment,
    peek_sum,
    stripe,
    take,
    take_all,
)
from .exemplars import RawExemplar, as_exemplar, exemplar_labels
from .family import CellClass, ScalarFamily, ScalarMetric
from .instrument import ExceptionCounter, ExceptionTypes
from .locked import LockedCounterCell, LockedIntCounterCell
from .shortcuts import CounterVecShortcuts

if TYPE_CHECKING:
    _Count = itertools.count[int]
else:  # itertools.count takes no type arguments at run time
    _Count = itertools.count


#: The C-level ``count.__next__``, called on cells directly (a vec child hides
#: it as an attribute: a child exposes the metric API only).
_count_next = itertools.count.__next__
_get_reads = operator.attrgetter("_reads")
_get_value = operator.attrgetter("_value")
#: ``inc()``'s default amount: ``amount is _ONE`` is the cheapest test of it.
_ONE = 1
#: An exemplar as given: ``{label name: value}``.
ExemplarArg = Optional[Mapping[str, str]]


class _Pending(list):  # type: ignore[type-arg]  # list[Number], with slots
    """A counter's ``[sum, amounts...]``; ``base`` increments were moved into ``sum``.

    ``exemplar`` is the latest exemplar (a counter that records exemplars
    has its list: cells without any pay nothing for them).
    """

    __slots__ = ("base", "exemplar")
    base: int
    exemplar: Optional[RawExemplar]


#: ``(cell, amount)`` of first ``inc_by`` calls made while the cell's stripe was
#: held by their own thread; reads count them until the cell's next ``inc_by``
#: moves them into its list.
DEFERRED: list[tuple["CounterCell", Number]] = []


class CounterCell(_Count):
    """A float counter whose updates are single atomic C calls (GIL builds).

    ``inc()`` is ``count.__next__``. ``_value`` holds the sum of ``inc_by``
    amounts: a number until the first ``inc_by``, then a :class:`_Pending`
    list ``[sum, pending...]`` to which ``inc_by`` appends (``list.append``
    is atomic), so neither path takes a lock. Pending amounts are folded into
    ``list[0]``, left to right as Rust adds them, under the cell's stripe: at
    reads and whenever 256 are pending.
    """

    __slots__ = ("_value", "_reads")
    _value: Union[Number, _Pending]
    _reads: Optional[_Count]
    _increment = staticmethod(float_increment)

    def __new__(cls, lock: threading.Lock) -> "CounterCell":
        # itertools.count.__new__ takes the start; the counter starts at 0.
        return super().__new__(cls)  # type: ignore[return-value]  # count.__new__ makes a cls

    def __init__(self, lock: threading.Lock) -> None:
        self._value = 0.0
        self._reads = None

    def inc(self, amount: Number = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1); ``exemplar`` as for :meth:`inc_by`. Lock-free."""
        if amount is _ONE and exemplar is None and self._value.__class__ is not _Pending:
            next(self)
        else:
            # Amounts are buffered (or this is not a plain +1): add in turn
            # with them, so the float sum rounds as Rust's additions do.
            self.inc_by(amount, exemplar)

    def inc_by(self, amount: Number, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (finite and >= 0); :class:`InvalidValueError` otherwise.

        ``exemplar`` (``{label: value}``, at most 128 characters in all)
        becomes the latest exemplar, with ``amount`` as its value; a bad one
        raises :class:`InvalidLabelsError` and nothing is added. Lock-free
        and thread-safe (an int counter takes ints >= 0).
        """
        cls = amount.__class__
        if cls is float:
            if not 0.0 <= amount < INF:
                amount = self._increment(amount)  # raises
        elif cls is not int or not 0 <= amount < EXACT_INT:
            amount = self._increment(amount)  # raises, or converts
        # make_exemplar, inlined: an exemplar is checked and stamped on the hot path.
        ex = None if exemplar is None else (exemplar_labels(exemplar), amount, _now())
        pending = self._value
        if pending.__class__ is not _Pending:
            made = self._pending_list()
            if made is None:  # the stripe is held by this very thread
                # (a signal handler during a scrape): the amount is kept,
                # an exemplar is not, until the next call.
                DEFERRED.append((self, amount))
                return
            pending = made
        if ex is not None:
            pending.exemplar = ex  # one attribute store: atomic
        pending.append(amount)
        if len(pending) > FOLD_AT:
            fold_free(self, pending)

    def _pending_list(self) -> Optional[_Pending]:
        """The cell's list, made under its stripe; None if the stripe is ours already."""
        lock = stripe(self)
        if not take(lock):
            return None
        try:
            value = self._value
            # Re-checked under the stripe: two first calls make one list.
            if isinstance(value, _Pending):
                return value
            # The increments counted so far go first in the sum, in the order
            # Rust would have added them; then deferred amounts, in order.
            base = _ticks(self)
            mine = _deferred_of(self)
            pending = _Pending([value + base])
            pending.base = base
            pending.exemplar = None
            pending.extend(amount for _, amount in mine)
            self._value = pending
            # From here reads use the list only; move what nested calls
            # deferred meanwhile, then forget the entries.
            for entry in mine:
                DEFERRED.remove(entry)
            for entry in _deferred_of(self):
                pending.append(entry[1])
                DEFERRED.remove(entry)
            return pending
        finally:
            drop(lock)

    def count_exceptions(self, exception: ExceptionTypes = Exception) -> ExceptionCounter:
        """Context manager and decorator: +1 per ``exception`` raised through it (re-raised).

        ``exception``: an exception class or a tuple of them, as ``except``
        takes; anything else -> :class:`InvalidValueError`.
        """
        return ExceptionCounter(self.inc, exception)

    def get(self) -> Number:
        """The current value."""
        lock = stripe(self)
        value = self._value
        if take(lock):
            try:
                total = _sum_of(self, value)
            finally:
                drop(lock)
        else:
            total = _peek(self, value)
        return _base_of(value, _ticks(self)) + total

    _read_locked = get

    @staticmethod
    def _read_many(cells: list["CounterCell"]) -> list[Number]:
        """The values of many cells at once (what a family read uses)."""
        values = list(map(_get_value, cells))
        if not DEFERRED and _Pending not in set(map(type, values)):
            return list(map(operator.add, _ticks_many(cells), values))
        if take_all(cells):
            try:
                totals = list(map(_sum_of, cells, values))
            finally:
                drop_all()
        else:
            totals = list(map(_peek, cells, values))
        return list(map(operator.add, map(_base_of, values, _ticks_many(cells)), totals))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self.get()!r}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"cannot pickle {type(self).__name__}")


def _deferred_of(cell: CounterCell) -> list[tuple[CounterCell, Number]]:
    return [entry for entry in list(DEFERRED) if entry[0] is cell] if DEFERRED else []


def _ticks(cell: CounterCell) -> int:
    """The cell's ``inc()`` count (before any move into the list): lock-free, exact."""
    reads = cell._reads
    if reads is None:
        lock = stripe(cell)
        if take(lock):
            try:
                if cell._reads is None:
                    cell._reads = itertools.count()
            finally:
                drop(lock)
        else:
            # A read ticks only once the read count exists: if there is still
            # none after the repr, no read has ticked the count.
            count = count_of(cell)
            if cell._reads is None:
                return count
        reads = cell._reads
    # One C-level call ticks both: nothing can run between the two ticks.
    ticks, read = map(_count_next, (cell, reads))
    return ticks - read


def _ticks_many(cells: list[CounterCell]) -> list[int]:
    reads = list(map(_get_reads, cells))
    if None in reads:  # the first read of some cell
        return list(map(_ticks, cells))
    # One C call ticks every cell, then every read count: no bytecode and no GC-tracked
    # allocation in it, so no signal handler or gc callback can come between two ticks.
    ticks, n = list(map(_count_next, itertools.chain(cells, reads))), len(cells)
    return list(map(operator.sub, ticks[:n], ticks[n:]))


def _base_of(value: Union[Number, _Pending], ticks: int) -> int:
    """The increments not yet in the sum (0 once all are)."""
    return ticks - value.base if value.__class__ is _Pending else ticks


def _sum_of(cell: CounterCell, value: Union[Number, _Pending]) -> Number:
    """A counter cell's ``inc_by`` total; its stripe is held (pending amounts are folded)."""
    # The exact-class test is cheaper than isinstance on this scrape path.
    if value.__class__ is _Pending:
        return fold_sum(value)
    return cast(Number, value) if not DEFERRED else _peek(cell, value)


def _peek(cell: CounterCell, value: Union[Number, _Pending]) -> Number:
    """The ``inc_by`` total without folding (for a read that cannot take the stripe)."""
    if value.__class__ is _Pending:
        return peek_sum(value)
    amounts = [amount for c, amount in list(DEFERRED) if c is cell] if DEFERRED else []
    return functools.reduce(operator.add, amounts, cast(Number, value))


class IntCounterCell(CounterCell):
    """An integer counter (unbounded Python int; Dynamo's is a u64)."""

    __slots__ = ()

    def __init__(self, lock: threading.Lock) -> None:
        self._value = 0
        self._reads = None

    _increment = staticmethod(int_increment)

    def inc(self, amount: Number = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1). Lock-free (integer sums are exact in any order)."""
        if amount is _ONE and exemplar is None:
            next(self)
        else:
            self.inc_by(amount, exemplar)

    def inc_by(self, amount: Number, exemplar: ExemplarArg = None) -> None:
        """Add an integer >= 0; :class:`InvalidValueError` otherwise. Lock-free."""
        CounterCell.inc_by(self, int_increment(amount), exemplar)


# A vec hands its children out, and a child exposes the metric API only: not
# the iterator it is built on. Hiding ``__next__`` makes ``next(cell)`` go
# through the hiding property, so these call the C-level ``count.__next__``
# directly (40 ns slower than ``next``; the label-less metrics, whose cell is
# never handed out, keep ``next``).


class CounterVecCell(CounterCell):
    """A float counter vec child (:class:`CounterCell` without iterator methods)."""

    __slots__ = ()
    __next__ = hidden("__next__")
    __iter__ = hidden("__iter__")

    def inc(self, amount: Number = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1); ``exemplar`` as for ``inc_by``. Lock-free."""
        if amount is _ONE and exemplar is None and self._value.__class__ is not _Pending:
            _count_next(self)
        else:
            self.inc_by(amount, exemplar)  # in turn with buffered amounts (CounterCell.inc)


class IntCounterVecCell(IntCounterCell):
    """An integer counter vec child (:class:`IntCounterCell` without iterator methods)."""

    __slots__ = ()
    __next__ = hidden("__next__")
    __iter__ = hidden("__iter__")

    def inc(self, amount: Number = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1). Lock-free (integer sums are exact in any order)."""
        if amount is _ONE and exemplar is None:
            _count_next(self)
        else:
            self.inc_by(amount, exemplar)


#: What a counter child is on this interpreter (see :func:`counter_cell_class`).
CounterChild = Union[CounterCell, LockedCounterCell]


def counter_cell_class(integer: bool, vec: bool = False) -> CellClass[CounterChild, Number]:
    """The counter cell class for this interpreter (see the module docstring).

    ``vec``: for the children of a vec, which hide their iterator methods.
    """
    if GIL_ENABLED:
        cls: type[CounterChild]
        if vec:
            cls = IntCounterVecCell if integer else CounterVecCell
        else:
            cls = IntCounterCell if integer else CounterCell
    else:
        cls = LockedIntCounterCell if integer else LockedCounterCell
    # All counter cells of a process are of the class chosen here, so each
    # class's _read_many only ever sees its own cells; the type system cannot
    # express a choice made once at import, hence the cast.
    return cast("CellClass[CounterChild, Number]", cls)


def counter_exemplar(cell: CounterChild) -> Optional[Exemplar]:
    """The latest exemplar of a counter cell, or None."""
    found: Optional[RawExemplar] = getattr(cell._value, "exemplar", None)  # a _Pending list's
    if found is None:
        found = getattr(cell, "_exemplar", None)
    return None if found is None else as_exemplar(found)


def with_counter_exemplar(samples: tuple[Sample, ...], cell: CounterChild) -> tuple[Sample, ...]:
    """A counter child's samples, its value sample carrying the cell's latest exemplar."""
    ex = counter_exemplar(cell)
    if ex is None:
        return samples
    return (samples[0]._replace(exemplar=ex),) + samples[1:]


class Counter(ScalarMetric[CounterChild]):
    """A float counter: ``inc(amount=1)``, ``inc_by(v)`` (finite, >= 0), ``get()``.

    Negative, NaN or infinite increments raise :class:`InvalidValueError`.
    Both take an optional ``exemplar``. Mirrors rust-prometheus' ``Counter``
    (``inc(amount)`` is prometheus_client's).
    """

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False)
    _methods = ("inc", "inc_by", "get", "count_exceptions")
    _with_exemplars = staticmethod(with_counter_exemplar)

    def inc(self, amount: float = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1); ``exemplar`` as for :meth:`inc_by`."""

    def inc_by(self, amount: float, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (finite, >= 0).

        ``exemplar``: ``{label: value}`` kept as the latest exemplar, with
        ``amount`` as its value (OpenMetrics only; at most 128 characters).
        """

    def count_exceptions(self, exception: ExceptionTypes = Exception) -> ExceptionCounter:
        """Context manager and decorator counting ``exception`` raised through it."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)

    def get(self) -> Number:
        """The current value."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)


class IntCounter(Counter):
    """An integer counter; ``inc_by`` takes non-negative ints (values are unbounded)."""

    _cell_class = counter_cell_class(integer=True)


class CounterVec(CounterVecShortcuts[CounterChild], ScalarFamily[CounterChild]):
    """Float counters by label values (rust-prometheus ``CounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False, vec=True)
    _with_exemplars = staticmethod(with_counter_exemplar)


class IntCounterVec(CounterVecShortcuts[CounterChild], ScalarFamily[CounterChild]):
    """Integer counters by label values (``IntCounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=True, vec=True)
    _with_exemplars = staticmethod(with_counter_exemplar)
