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
reads, or a read and a first ``inc_by``, never interleave on one cell. The
read functions live in ``counter_reads.py``.

Counters never go down: negative, NaN or infinite increments raise
:class:`InvalidValueError` and change nothing.
"""

import itertools
import operator
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from time import time as _now
from typing import TYPE_CHECKING, NoReturn, Optional, cast

from ..exposition.text import format_value
from ..model import Number
from .cells import (
    EXACT_INT,
    FOLD_AT,
    INF,
    count_of,
    drop,
    drop_all,
    float_increment,
    fold_free,
    hidden,
    int_increment,
    stripe,
    take,
    take_all,
)
from .counter_reads import (
    DEFERRED,
    Pending,
    State,
    deferred_of,
    draw_ticks,
    draw_with,
    peek_many,
    read_locked,
    read_raw,
)
from .exemplars import exemplar_labels
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
#: An exemplar as given: ``{label name: value}``.
ExemplarArg = Optional[Mapping[str, str]]


class CounterCell(_Count):
    """A float counter whose updates are single atomic C calls (GIL builds).

    ``inc()`` is ``count.__next__``; ``inc_by`` appends to the cell's
    :class:`Pending` list, made by the first one. Pending amounts are folded
    into ``list[0]``, left to right as Rust adds them, under the cell's
    stripe: at reads and whenever 256 are pending. Made by :meth:`_fresh`.
    """

    __slots__ = ("_value",)
    _value: State
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
        # Two comparisons, not a chained one: each then jumps on its own result,
        # without the chain's stack shuffling (a tenth of this path). The bounds
        # are literals (1e999 is inf, 256 is FOLD_AT): a constant loads faster
        # than a module global, and every bytecode is a few percent of this path.
        if exemplar is None and amount.__class__ is float and amount >= 0.0 and amount < 1e999:
            # The common case, inlined. Only a list has append: a count of
            # reads (an int) means this is the first inc_by. Once a list, a
            # cell's _value stays that list, so it is read again rather than
            # kept in a local (one store and load fewer).
            try:
                self._value.append(amount)  # type: ignore[union-attr]
            except AttributeError:
                pass
            else:
                if len(self._value) > 256:  # type: ignore[arg-type]
                    fold_free(self, self._value)  # type: ignore[arg-type]
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
        if pending.__class__ is not Pending:
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

    def _pending_list(self) -> Optional[Pending]:
        """The cell's list, made under its stripe; None if the stripe is ours already."""
        lock = stripe(self)
        if not take(lock):
            return None
        try:
            reads = self._value
            # Re-checked under the stripe: two first calls make one list.
            if isinstance(reads, Pending):
                return reads
            # The increments counted so far go first in the sum, in the order
            # Rust would have added them; then deferred amounts, in order.
            count = count_of(self)
            mine = deferred_of(self)
            pending = Pending([self._number(count - reads)])
            pending.base = count
            pending.exemplar = None
            pending.extend(amount for _, amount in mine)
            self._value = pending
            # From here reads use the list only; move what nested calls
            # deferred meanwhile, then forget the entries.
            for entry in mine:
                DEFERRED.remove(entry)
            for entry in deferred_of(self):
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
                return read_locked(self)
            finally:
                drop(lock)
        return peek_many([self])[0]

    _read_locked = get

    #: The values of many cells of one class at once (what a family read uses).
    _read_many = staticmethod(read_raw)

    @staticmethod
    def _text_fill(
        cells: list["CounterCell"], fill: Callable[[Iterable[object]], str]
    ) -> Optional[str]:
        """``fill(values)``, given what text 0.0.4 prints for each cell, drawn lazily.

        The fast path of a scrape: the cells are ticked inside ``fill``'s own
        C call (under their stripes), so a scrape competing with busy threads
        for the GIL is switched out rarely. None when some cell has a list or
        amounts are deferred, having read nothing: the caller reads through
        :meth:`_read_many` then.
        """
        if not cells or not take_all(cells):
            return None
        try:
            drawn = draw_ticks(cells)
            text = draw_with(drawn, fill)
        finally:
            drop_all()
        if text is None or drawn is None:
            return None
        ticks, _increments, reads = drawn
        n = len(cells)
        if cells[0]._number is float and max(islice(ticks, n)) >= EXACT_INT:
            # Past 2**53 a float counter rounds, as Rust's f64 does.
            counts = map(operator.sub, islice(ticks, n), reads)
            text = fill(map(format_value, map(float, counts)))
        return text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self.get()!r}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"cannot pickle {type(self).__name__}")


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
            try:  # as in CounterCell.inc_by
                self._value.append(amount)  # type: ignore[union-attr]
            except AttributeError:
                pass
            else:
                if len(self._value) > 256:  # type: ignore[arg-type]
                    fold_free(self, self._value)  # type: ignore[arg-type]
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
