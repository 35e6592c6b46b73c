"""Counters in the file: each update of a placed counter is one C-level call, with no lock.

A counter update is a read-modify-write of one double in the file. Done as
one C-level call (``next`` over nested ``map`` objects: read the double, add,
store), nothing can run in between: no other thread, and no signal handler
or GC callback either (no bytecode runs, and the only allocation is a float,
which the collector does not count). Hence ``operator.getitem`` and
``setitem``, called without an argument tuple, and not the memoryview's own
``__getitem__``: a bound slot wrapper gets a fresh tuple per call, and a
tuple allocation may start a collection in the middle of the update.

So an update needs neither the cell's lock nor the pending list of
``values.py``: ``inc()`` costs about a third less than a tried lock around
``mv[i] += 1.0``.

Where it applies. A cell placed in its file keeps its double there for good
(a file is never remapped): once ``_placed``, updates go straight to
``_mv[_i]``, and ``inc()``'s endless chain, made by its first ``inc()``, is
bound to that place. Until then, while the cell is in its private buffer,
its updates take the lock as every other cell's do; the move into the file
happens under that lock, before ``_placed`` is set. Every other change of
the value under the lock (pending updates applied) is one C call too.

A free-threaded interpreter makes no C call atomic: there every update of
a counter takes its lock (``_placed`` stays false).

Forks: the fork hook (``mode.forked``) clears ``_placed`` and the chain, so a
forked child's first update goes the locked way, whose stand-in lock
re-places the cell in the child's own file (``mode.py``).
"""

import functools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Optional, cast

from ..metrics.cells import EXACT_INT, GIL_ENABLED, INF, float_increment, int_increment
from ..metrics.exemplars import RawExemplar, make_exemplar
from ..metrics.instrument import ExceptionCounter, ExceptionTypes
from ..model import Number
from .values import FileCell
from .writer import Doubles, ProcessFile

_ONE = 1
_ONES = repeat(1.0)  # endless and stateless: one feeds every cell's chain
# typeshed's overloads of setitem do not cover a memoryview of doubles
_setitem = cast(Callable[[Doubles, int, Number], None], operator.setitem)


def _adds(mv: Doubles, i: int, amounts: Iterator[Number]) -> Iterator[None]:
    """Each item drawn adds the next of ``amounts`` to ``mv[i]``, in one C call."""
    views, at = repeat(mv), repeat(i)  # each drawn twice per item: endless, stateless
    values = map(operator.add, map(operator.getitem, views, at), amounts)
    return map(_setitem, views, at, values)


def add_at(mv: Doubles, i: int, amount: Number) -> None:
    """``mv[i] += amount`` in one C call."""
    next(_adds(mv, i, iter((amount,))))


class FileCounterCell(FileCell):
    """A float counter in the file: ``inc``, ``inc_by``, ``get``, ``count_exceptions``."""

    __slots__ = ("_i", "_exemplar", "_placed", "_tick")
    #: ``counter.with_counter_exemplar`` looks for an exemplar on ``_value`` first.
    _value = None
    _increment = staticmethod(float_increment)
    _int = False

    def __init__(self, file: Optional[ProcessFile], keys: Sequence[bytes]) -> None:
        self._exemplar: Optional[RawExemplar] = None
        self._start(file, keys)

    def _bind(self) -> None:
        self._i = self._at[0]
        # Updates in place without the lock once in the file (see the module docstring).
        self._placed = self._attached and GIL_ENABLED
        self._tick: Optional[Iterator[None]] = None

    def _forked(self) -> None:
        self._placed, self._tick = False, None

    def inc(self, amount: Number = 1, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Add ``amount`` (default 1); ``exemplar`` as for :meth:`inc_by`."""
        if amount is not _ONE or exemplar is not None:
            self.inc_by(amount, exemplar)
            return
        try:
            next(self._tick)  # type: ignore[arg-type]  # None: TypeError
        except TypeError:
            self._add_locked(1.0)

    if not GIL_ENABLED:  # no chain there: straight to the lock, without a TypeError

        def inc(self, amount: Number = 1, exemplar: Optional[Mapping[str, str]] = None) -> None:
            """Add ``amount`` (default 1); ``exemplar`` as for :meth:`inc_by`."""
            if amount is not _ONE or exemplar is not None:
                self.inc_by(amount, exemplar)
                return
            self._add_locked(1.0)

    def inc_by(self, amount: Number, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Add ``amount`` (finite, >= 0; an int for int counters), else InvalidValueError.

        ``exemplar`` (``{label: value}``) is kept in this process as the latest one.
        """
        cls = amount.__class__
        if cls is float and not self._int:
            if not 0.0 <= amount < INF:
                amount = self._increment(amount)
        elif cls is not int or not 0 <= amount < EXACT_INT:
            amount = self._increment(amount)
        if exemplar is not None:
            self._exemplar = make_exemplar(exemplar, amount)
        if self._placed:
            add_at(self._mv, self._i, amount)
        else:
            self._add_locked(amount)

    def _add_locked(self, amount: Number) -> None:
        """An update not yet in place: a private buffer's, a forked child's first (its
        stand-in lock re-places the cell), or the first ``inc()`` (it makes the chain)."""
        lock = self._lock
        if lock.acquire(False):
            try:
                self._apply_locked([amount])
                if self._placed and self._tick is None:
                    self._tick = _adds(self._mv, self._i, _ONES)
            finally:
                lock.release()
            if self._pending:
                self._drain()
        else:  # busy (or being re-placed): its holder applies this on releasing
            self._update(amount)

    def _apply_locked(self, items: list[object]) -> None:
        mv, i = self._mv, self._i
        for amount in items:
            add_at(mv, i, amount)  # type: ignore[arg-type]  # amounts only

    def count_exceptions(self, exception: ExceptionTypes = Exception) -> ExceptionCounter:
        """Context manager and decorator: +1 per ``exception`` raised through it (re-raised)."""
        return ExceptionCounter(self.inc, exception)

    def get(self) -> Number:
        """The current value (this process's)."""
        values, pending = self._snapshot_values()
        total = functools.reduce(operator.add, pending, values[0])
        return int(total) if self._int else total

    _read_locked = get

    @staticmethod
    def _read_many(cells: list["FileCounterCell"]) -> list[Number]:
        return [cell.get() for cell in cells]


class FileIntCounterCell(FileCounterCell):
    """An integer counter in the file (exact up to 2**53)."""

    __slots__ = ()
    _increment = staticmethod(int_increment)
    _int = True
