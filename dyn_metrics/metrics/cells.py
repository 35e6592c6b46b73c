"""What every value cell shares: the stripe locks, folding, and the number helpers.

A *cell* is the number behind one child of a metric. Each metric type's cells
live with the type (``counter.py``, ``gauge.py``, ``histogram.py``) and keep
their common paths free of locks, each in its own way, explained there. The
rare paths (reads, folding buffered updates) take a lock, and for counters and
gauges that is one of the 64 *stripes* here, shared by all cells and picked by
the cell's identity: a lock per cell would add 40% to a child's memory for
paths that rarely contend.

Why the stripes cannot deadlock: a thread holds at most one stripe (or all of
them, taken in one fixed order by :data:`ALL_STRIPES`), and nothing that holds
a stripe waits for any other lock.

:data:`GIL_ENABLED` tells whether the interpreter runs with a GIL; the counter
cells depend on it (see ``counter.py``).
"""

import functools
import math
import operator
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Optional, Protocol, TypeVar

from ..errors import InvalidValueError
from ..model import Number

#: False on a free-threaded interpreter (``sys._is_gil_enabled()`` is false there).
GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()

STRIPES: tuple[threading.Lock, ...] = tuple(threading.Lock() for _ in range(64))

INF = math.inf
#: Ints below 2**53 add to a float sum exactly, so the hot paths skip converting them.
EXACT_INT = 2**53
#: Buffered updates folded at once; bounds the memory a hot, never-scraped
#: cell holds (a few KiB) and keeps each fold short.
FOLD_AT = 256

_V_co = TypeVar("_V_co", covariant=True)


def stripe(cell: object) -> threading.Lock:
    """The shared lock of a counter or gauge cell (objects are 16-byte aligned).

    Every caller is off the hot path (a read, a cell's first ``inc_by``, one
    fold per 256 updates), so they all go through this helper.
    """
    return STRIPES[(id(cell) >> 4) & 63]


class _AllStripes:
    """Holds every stripe, taken in one fixed order (so two holders cannot deadlock).

    A family read takes them once for all its cells instead of one lock per
    cell: four times faster per series. Nothing that holds a stripe waits
    for another lock, so this cannot deadlock with ``inc_by`` or ``get``.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        taken = 0
        try:
            for lock in STRIPES:
                lock.acquire()
                taken += 1
        except BaseException:
            # An interrupt half way must not leave stripes held for good.
            for lock in reversed(STRIPES[:taken]):
                lock.release()
            raise

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        for lock in reversed(STRIPES):
            lock.release()


ALL_STRIPES = _AllStripes()


class Readable(Protocol[_V_co]):
    """A cell that can be read while its family lock (or stripe) is held."""

    def _read_locked(self) -> _V_co: ...


def read_one_by_one(cells: Iterable[Readable[_V_co]]) -> list[_V_co]:
    """The values of ``cells``: each cell class's ``read_many``, unless it has a faster one."""
    return [cell._read_locked() for cell in cells]


def fold_sum(pending: list[Number]) -> Number:
    """Fold ``[sum, amounts...]`` into ``[sum]`` and return the sum; the cell's stripe is held.

    The amounts are added left to right, as Rust's sequence of ``+=`` does,
    so a float sum rounds exactly as Dynamo's.
    """
    n = len(pending)
    total = pending[0]
    if n > 1:
        # Appenders only add at the end, so the first n items are exactly
        # the ones summed here, whatever was appended meanwhile.
        total = functools.reduce(operator.add, pending[1:n], total)
        pending[0:n] = [total]
    return total


def as_int(value: object, what: str) -> int:
    """``value`` as an exact int; floats are refused rather than truncated.

    Anything else that is not an integer raises :class:`InvalidValueError`
    naming ``what``.
    """
    if value.__class__ is int:
        return value
    if isinstance(value, float) or not hasattr(value, "__index__"):
        raise InvalidValueError(f"{what} must be an integer, got {value!r}")
    index: int = value.__index__()
    return index
