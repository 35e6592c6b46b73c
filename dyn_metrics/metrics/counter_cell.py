"""Counter cells: the number behind each counter child, lock-free on the update paths.

The common paths avoid a lock round trip (about 170 ns in CPython, more than
the whole budget of an increment):

* :class:`CounterCell` keeps its increments in an :class:`itertools.count`
  (it extends one; a vec child hides the iterator methods, see
  :class:`CounterVecCell`): ``inc()`` is one call of the C-level
  ``count.__next__``, which runs entirely while holding the GIL and so never
  loses an update.
* ``inc_by(v)`` appends ``v`` to a list (``list.append``, one atomic C call
  too) that reads fold into the sum, left to right as Rust adds.

Reading. The only fast way to observe a count is to tick it, so a family read
ticks every cell once and remembers it: the cell's one slot, ``_value``, holds
the number of reads that ticked it, and the increments are the count minus
that number. The tick and the new number are stored by one C-level call
(:func:`_tick_all`), so no signal handler, GC callback or other thread ever
sees one without the other; the numbers are shared objects (every cell read
as often holds the same ``int``), so reads cost a cell no memory. A single
``get()`` and a read that cannot take the stripes (its own thread holds one:
a read nested in a signal handler) tick nothing: they parse the count's
``repr``, read together with ``_value`` in one C-level call.

The first ``inc_by`` turns ``_value`` into a :class:`_Pending` list
``[sum, amounts...]`` under the cell's stripe (:func:`cells.take`); from then
on reads tick the list's ``base`` instead. When that stripe is held by the
same thread (an ``inc_by`` nested in a signal handler during a scrape), the
amount goes to :data:`DEFERRED` instead, counted by reads and moved into the
list by the next ``inc_by``: nothing waits and nothing is lost.

Reads hold the stripes of the cells they tick (:func:`cells.take_all`), so two
reads, or a read and a first ``inc_by``, never interleave on one cell.

Counters never go down: negative, NaN or infinite increments raise
:class:`InvalidValueError` and change nothing.
"""

import functools
import itertools
import operator
from collections.abc import Iterator, Mapping
from itertools import chain, islice, repeat
from time import time as _now
from typing import TYPE_CHECKING, NoReturn, Optional, Union, cast

from ..exposition.text import format_value
from ..model import Number
from .cells import (
    EXACT_INT,
    FOLD_AT,
    INF,
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
from .exemplars import RawExemplar, exemplar_labels
from .instrument import ExceptionCounter, ExceptionTypes

if TYPE_CHECKING:
    _Count = itertools.count[int]
else:  # itertools.count takes no type arguments at run time
    _Count = itertools.count


#: The C-level ``count.__next__`` and ``__repr__``, called on cells directly
#: (a vec child hides ``__next__`` as an attribute: it exposes the metric API only).
_count_next = itertools.count.__next__
_count_repr = itertools.count.__repr__
_count_new = itertools.count.__new__
#: ``inc()``'s default amount: ``amount is _ONE`` is the cheapest test of it.
_ONE = 1
_INTS = {int}
#: An exemplar as given: ``{label name: value}``.
ExemplarArg = Optional[Mapping[str, str]]


class _Pending(list):  # type: ignore[type-arg]  # list[Number], with slots
    """A counter's ``[sum, amounts...]`` once it had an ``inc_by``.

    The count minus ``base`` is the increments not yet in ``sum`` (``base``
    takes in the increments moved into the sum and every read's tick).
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

#: What ``_value`` holds: the reads that ticked the count, or the list.
_State = Union[int, _Pending]


class CounterCell(_Count):
    """A float counter whose updates are single atomic C calls (GIL builds).

    ``inc()`` is ``count.__next__``; ``inc_by`` appends to the cell's
    :class:`_Pending` list, made by the first one. Pending amounts are folded
    into ``list[0]``, left to right as Rust adds them, under the cell's
    stripe: at reads and whenever 256 are pending. Made by :meth:`_fresh`.
    """

    __slots__ = ("_value",)
    _value: _State
    _increment = staticmethod(float_increment)
    #: What a read returns: floats here, ints for :class:`IntCounterCell`.
    _number: "type[Number]" = float

    @classmethod
    def _fresh(cls) -> "CounterCell":
        """A new cell at 0 (the C-level ``count.__new__`` and one store: no ``__init__``)."""
        cell = cast(CounterCell, _count_new(cls))
        cell._value = 0
        return cell

    def inc(self, amount: Number = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1); ``exemplar`` as for :meth:`inc_by`. Lock-free."""
        if amount is _ONE and exemplar is None and self._value.__class__ is int:
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
        if exemplar is None and amount.__class__ is float and 0.0 <= amount < INF:
            pending = self._value
            if pending.__class__ is _Pending:  # the common case, inlined
                pending.append(amount)
                if len(pending) > FOLD_AT:
                    fold_free(self, pending)
                return
        self._add(amount, exemplar)

    def _add(self, amount: Number, exemplar: ExemplarArg) -> None:
        """``inc_by`` past its inlined common case: any amount, an exemplar, the first call."""
        cls = amount.__class__
        if cls is float:
            if not 0.0 <= amount < INF:
                amount = self._increment(amount)  # raises
        elif cls is not int or not 0 <= amount < EXACT_INT:
            amount = self._increment(amount)  # raises, or converts
        # make_exemplar, inlined: an exemplar is checked and stamped here.
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
            reads = self._value
            # Re-checked under the stripe: two first calls make one list.
            if isinstance(reads, _Pending):
                return reads
            # The increments counted so far go first in the sum, in the order
            # Rust would have added them; then deferred amounts, in order.
            count = _count_of(self)
            mine = _deferred_of(self)
            pending = _Pending([self._number(count - reads)])
            pending.base = count
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
        """The current value (ticks nothing)."""
        lock = stripe(self)
        if take(lock):
            try:
                return _read_locked(self)
            finally:
                drop(lock)
        return _peek_many([self])[0]

    _read_locked = get

    @staticmethod
    def _read_many(cells: list["CounterCell"]) -> list[Number]:
        """The values of many cells of one class at once (what a family read uses)."""
        values = _read_raw(cells)
        number = cells[0]._number if cells else float
        if number is float:
            return list(map(float, values))
        return values

    @staticmethod
    def _text_values(cells: list["CounterCell"]) -> Optional[Iterator[Union[int, str]]]:
        """What text 0.0.4 prints for each cell (exact ints, or Rust's float text), lazily.

        The fast path of a scrape: a few long C calls, so a scrape competing
        with busy threads for the GIL is switched out rarely. None when
        some cell has a list or amounts are deferred, having read nothing:
        the caller reads through :meth:`_read_many` then.
        """
        if not cells or not take_all(cells):
            return None
        try:
            ticked = _tick_plain(cells)
        finally:
            drop_all()
        if ticked is None:
            return None
        done, states = ticked
        if cells[0]._number is float and max(islice(done, len(cells))) >= EXACT_INT:
            # Past 2**53 a float counter rounds, as Rust's f64 does.
            return map(format_value, map(float, map(operator.sub, done, states)))
        return map(operator.sub, done, states)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self.get()!r}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"cannot pickle {type(self).__name__}")


def _count_of(cell: CounterCell) -> int:
    """A cell's count, from its repr: changes nothing."""
    return _parse_count(_count_repr(cell))


def _parse_count(text: str) -> int:
    return int(text[text.index("(") + 1 : -1])  # "Name(N)"


def _deferred_of(cell: CounterCell) -> list[tuple[CounterCell, Number]]:
    return [entry for entry in list(DEFERRED) if entry[0] is cell] if DEFERRED else []


def _deferred_sum(cell: CounterCell, start: Number) -> Number:
    """``start`` plus the amounts deferred for ``cell``, in order."""
    amounts = [amount for c, amount in list(DEFERRED) if c is cell] if DEFERRED else []
    return functools.reduce(operator.add, amounts, start)


def _read_locked(cell: CounterCell) -> Number:
    """One cell's value without ticking; its stripe is held, so no read moves ``_value``."""
    state, text = cell._value, _count_repr(cell)
    count = _parse_count(text)
    if isinstance(state, _Pending):
        return (count - state.base) + fold_sum(state)
    return _deferred_sum(cell, cell._number(count - state))


def _peek_many(cells: list[CounterCell]) -> list[Number]:
    """The values of ``cells`` without ticking or folding (no stripe held for them).

    ``_value``, a list's ``base`` and the count of every cell are read in one
    C-level call, so no read of another thread can tick in between.
    """
    n = len(cells)
    states = map(getattr, cells, repeat("_value"))
    snap = list(
        chain(
            states,
            map(getattr, map(getattr, cells, repeat("_value")), repeat("base"), repeat(None)),
            map(_count_repr, cells),
        )
    )
    out: list[Number] = []
    for cell, state, base, text in zip(cells, snap[:n], snap[n : 2 * n], snap[2 * n :]):
        count = _parse_count(text)
        if state.__class__ is _Pending:
            out.append((count - base) + peek_sum(state))
        else:
            out.append(_deferred_sum(cell, cell._number(count - state)))
    return out


def _read_raw(cells: list[CounterCell]) -> list[Number]:
    """The values of ``cells``, ticking each once (exact ints where the value is integral).

    Takes the cells' stripes; a read whose own thread holds one already
    (nested in a signal handler or GC callback) peeks instead.
    """
    if not cells:
        return []
    if not take_all(cells):
        return _peek_many(cells)
    try:
        ticked = _tick_plain(cells)
        if ticked is None:
            return _read_mixed(cells, list(map(getattr, cells, repeat("_value"))))
    finally:
        drop_all()
    done, states = ticked
    values: list[Number] = list(map(operator.sub, done, states))
    if cells[0]._number is float and max(values) >= EXACT_INT:
        return list(map(float, values))  # past 2**53 a float counter rounds
    return values


def _tick_plain(cells: list[CounterCell]) -> Optional[tuple[list[int], list[int]]]:
    """``(ticks, reads before)`` of cells whose ``_value`` are all counts of reads; stripes held.

    Ticks every cell and stores its new count of reads in one C call (no
    bytecode, so nothing can run between a tick and its store); the
    increments are ``ticks - reads``, item by item (``ticks`` runs on past
    them). None, having changed nothing, when a cell has a list (a list is
    unhashable) or amounts are deferred.
    """
    states = list(map(getattr, cells, repeat("_value")))
    if DEFERRED:
        return None
    try:
        distinct = set(states)
    except TypeError:
        return None
    # Every cell read as often shares one int: map each distinct count of
    # reads to one successor object.
    new: Iterator[int]
    if len(distinct) == 1:
        new = repeat(states[0] + 1)
    else:
        succ = {r: r + 1 for r in distinct}
        new = map(succ.__getitem__, states)
    done = list(chain(map(_count_next, cells), map(setattr, cells, repeat("_value"), new)))
    return cast(list[int], done), states


def _read_mixed(cells: list[CounterCell], states: list[_State]) -> list[Number]:
    """:func:`_read_raw` when some cells have lists or deferred amounts; stripes held."""
    plain: list[CounterCell] = []
    plain_new: list[int] = []
    lists: list[_Pending] = []
    list_new: list[int] = []
    shared: dict[int, int] = {}
    for cell, state in zip(cells, states):
        if isinstance(state, _Pending):
            lists.append(state)
            list_new.append(state.base + 1)
        else:
            plain.append(cell)
            plain_new.append(shared.setdefault(state, state + 1))
    # The ticks, then None for each store, from one C call (as in _read_raw).
    done = cast(
        list[int],
        list(
            chain(
                map(_count_next, cells),
                map(setattr, plain, repeat("_value"), plain_new),
                map(setattr, lists, repeat("base"), list_new),
            )
        ),
    )
    out: list[Number] = []
    for cell, state, tick in zip(cells, states, done):
        if isinstance(state, _Pending):  # its base has just moved on by this read's tick
            out.append((tick - (state.base - 1)) + fold_sum(state))
        else:
            out.append(_deferred_sum(cell, cell._number(tick - state)))
    return out


class IntCounterCell(CounterCell):
    """An integer counter (unbounded Python int; Dynamo's is a u64)."""

    __slots__ = ()
    _increment = staticmethod(int_increment)
    _number = int

    def inc(self, amount: Number = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1). Lock-free (integer sums are exact in any order)."""
        if amount is _ONE and exemplar is None:
            next(self)
        else:
            self.inc_by(amount, exemplar)

    def inc_by(self, amount: Number, exemplar: ExemplarArg = None) -> None:
        """Add an integer >= 0; :class:`InvalidValueError` otherwise. Lock-free."""
        if exemplar is None and amount.__class__ is int and amount >= 0:
            pending = self._value
            if pending.__class__ is _Pending:  # the common case, inlined
                pending.append(amount)
                if len(pending) > FOLD_AT:
                    fold_free(self, pending)
                return
        self._add(int_increment(amount), exemplar)


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
        if amount is _ONE and exemplar is None and self._value.__class__ is int:
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
