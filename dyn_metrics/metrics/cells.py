"""What every value cell shares: the stripe locks, re-entrancy-safe locking, folding, numbers.

A *cell* is the number behind one child of a metric. Each metric type's cells
live with the type (``counter_cell.py``, ``gauge.py``, ``histogram_cell.py``) and keep
their common paths free of locks, each in its own way, explained there. The
rare paths (reads, folding buffered updates) take a lock, one of the 64
*stripes* here, shared by all cells and picked by the cell's identity: a lock
per cell would add 40% to a child's memory for paths that rarely contend.

Re-entrancy. The metrics API may run inside a signal handler, a
``gc.callbacks`` hook, a weakref finalizer or ``__del__``, at any moment,
including while the same thread holds a stripe (in the middle of a scrape).
Waiting for that stripe would wait for ourselves, forever. So every lock here
is taken through :func:`take` (or :func:`take_all`), which records, per thread,
the locks the thread holds or is about to hold (recorded *before* acquiring,
dropped *after* releasing, so the record covers every moment of holding):

* a lock this thread does not hold is waited for (its holder is another
  thread, which will release it);
* a lock this thread holds already is only tried, and when it is busy the
  caller takes its lock-free way: an update leaves its buffered items for the
  holder or the next read, a read computes the value from an atomic copy of
  the cell's state without changing anything.

Cell states are built so that such a copy is always consistent: buffered
updates live in a list ``[folded, pending...]`` that folding rewrites with one
slice assignment (one C-level call), so at every moment the list's items add
up to the value.

Why the stripes cannot deadlock between threads: a thread holds at most one
stripe (or all of them, taken in one fixed order by :func:`take_all`), and
nothing that holds a stripe waits for any other lock.

:data:`GIL_ENABLED` tells whether the interpreter runs with a GIL; the counter
cells depend on it (see ``counter_cell.py``).
"""

import functools
import itertools
import math
import operator
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import NoReturn, Optional, Protocol, TypeVar

from ..errors import InvalidValueError
from ..model import Number

#: False on a free-threaded interpreter (``sys._is_gil_enabled()`` is false there).
GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()

STRIPES: tuple[threading.Lock, ...] = tuple(threading.Lock() for _ in range(64))
_STRIPE_SET = frozenset(STRIPES)

INF = math.inf
#: Ints below 2**53 add to a float sum exactly, so the hot paths skip converting them.
EXACT_INT = 2**53
#: Buffered updates folded at once; bounds the memory a hot, never-scraped
#: cell holds (a few KiB) and keeps each fold short.
FOLD_AT = 256

_V_co = TypeVar("_V_co", covariant=True)


def stripe(cell: object) -> threading.Lock:
    """The shared lock of a cell (objects are 16-byte aligned).

    Every caller is off the hot path (a read, a counter's first ``inc_by``,
    one fold per 256 updates), so they all go through this helper.
    """
    return STRIPES[(id(cell) >> 4) & 63]


class _Held(threading.local):
    """The locks this thread holds or is about to hold, innermost last."""

    def __init__(self) -> None:
        self.locks: list[threading.Lock] = []
        # The stripes each take_all() of this thread took, innermost last.
        self.groups: list[tuple[threading.Lock, ...]] = []


_HELD = _Held()


def take(lock: threading.Lock, wait: bool = True) -> bool:
    """Acquire ``lock``; True if taken. Call :func:`drop` after a True.

    Waits (when ``wait``) only while this thread holds no lock taken here;
    holding any, it only tries. So a call nested in a signal handler, a GC
    callback or a finalizer never waits for its own thread, and no thread
    waits while holding a lock, which rules out a wait cycle between threads
    (a handler's read of stripe Y while its thread holds X, against a scrape
    holding Y and waiting for X).
    """
    held = _HELD.locks
    if held:
        wait = False
    # Recorded before acquiring: a nested call that runs while this one
    # waits or has just acquired must see the lock as held.
    held.append(lock)
    try:
        if lock.acquire(wait):
            return True
    except BaseException:
        held.pop()
        raise
    held.pop()
    return False


def drop(lock: threading.Lock) -> None:
    """Release a lock taken by :func:`take` (released first, then unrecorded)."""
    lock.release()
    _HELD.locks.pop()


#: Below this many cells a family read takes only its cells' stripes, not all 64:
#: a label-less metric's scrape then costs one lock, not 64.
FEW_CELLS = 16


def _stripes_of(cells: Sequence[object]) -> tuple[threading.Lock, ...]:
    return tuple(STRIPES[i] for i in sorted({(id(cell) >> 4) & 63 for cell in cells}))


def take_all(cells: Optional[Sequence[object]] = None) -> bool:
    """Acquire the stripes of ``cells`` (every stripe for many cells or None), in one
    fixed order; True if taken (then :func:`drop_all`).

    A family read takes them once for all its cells instead of one lock per
    cell: four times faster per series. Stripes are always taken in
    increasing index order, all of them or a subset, so two threads never
    wait for each other in a cycle. Waits unless this thread holds a stripe
    already; then it only tries, all or nothing.
    """
    if cells is not None and len(cells) == 1:  # a label-less metric: one stripe, as take()
        lock = stripe(cells[0])
        if not take(lock):
            return False
        _HELD.groups.append((lock,))
        return True
    locks = STRIPES if cells is None or len(cells) >= FEW_CELLS else _stripes_of(cells)
    held = _HELD.locks
    wait = not (held and not _STRIPE_SET.isdisjoint(held))
    held.extend(locks)
    taken = 0
    try:
        for lock in locks:
            if not lock.acquire(wait):
                break
            taken += 1
    except BaseException:
        # An interrupt half way must not leave stripes held for good.
        _release_first(locks, taken)
        raise
    if taken == len(locks):
        _HELD.groups.append(locks)
        return True
    _release_first(locks, taken)
    return False


def _release_first(locks: tuple[threading.Lock, ...], taken: int) -> None:
    for lock in reversed(locks[:taken]):
        lock.release()
    if locks:
        del _HELD.locks[-len(locks) :]


def drop_all() -> None:
    """Release the stripes the last :func:`take_all` of this thread took."""
    locks = _HELD.groups.pop()
    _release_first(locks, len(locks))


def hidden(name: str) -> property:
    """A class attribute that hides an inherited ``name`` (``hasattr`` is False)."""

    def hide(self: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    return property(hide)


_count_repr = itertools.count.__repr__


def count_of(count: "itertools.count[int]") -> int:
    """The value of an ``itertools.count`` (or subclass), from its repr: changes nothing."""
    return parse_count(_count_repr(count))


def parse_count(text: str) -> int:
    """N from an ``itertools.count``'s repr: ``"count(N)"``, or the subclass's name."""
    return int(text[text.index("(") + 1 : -1])


class Readable(Protocol[_V_co]):
    """A cell that can read itself (a family read of cells without a faster ``_read_many``)."""

    def _read_locked(self) -> _V_co: ...


def read_one_by_one(cells: Iterable[Readable[_V_co]]) -> list[_V_co]:
    """The values of ``cells``: each cell class's ``_read_many``, unless it has a faster one."""
    return [cell._read_locked() for cell in cells]


#: ``add_in_order(items, start)``: ``start`` plus the items, added left to right.
#: Before 3.12, ``sum`` does exactly that in a C double (five times faster than
#: ``reduce``); from 3.12 it compensates the rounding of floats, so ``reduce``.
add_in_order: Callable[[list[Number], Number], Number] = (
    sum if sys.version_info < (3, 12) else functools.partial(functools.reduce, operator.add)
)


def peek_sum(pending: list[Number]) -> Number:
    """What :func:`fold_sum` would return, without changing ``pending`` (no lock needed).

    ``list(pending)`` is one atomic copy, whose items always add up to the value.
    """
    items = list(pending)
    return add_in_order(items[1:], items[0])


def fold_free(cell: object, pending: list[Number]) -> None:
    """Fold ``pending`` if the cell's stripe is free; an update path never waits.

    When the stripe is busy its holder, or the next read, folds instead.
    """
    lock = stripe(cell)
    if take(lock, wait=False):
        try:
            fold_sum(pending)
        finally:
            drop(lock)


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
        total = add_in_order(pending[1:n], total)
        pending[0:n] = [total]
    return total


def float_increment(amount: float) -> float:
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


def int_increment(amount: object) -> int:
    """``amount`` if it is an integer >= 0, else :class:`InvalidValueError`."""
    number = as_int(amount, "int counter increment")
    if number < 0:
        raise InvalidValueError(f"int counter increment must be an integer >= 0, got {number!r}")
    return number


def as_real(value: object, what: str) -> float:
    """``value`` as a float if it is a real number, else :class:`InvalidValueError`.

    Real numbers are ``int``, ``float``, ``bool``, ``numbers.Real`` and any
    object whose ``__float__`` returns a float (``Decimal``, numpy scalars and
    one-element arrays). Complex numbers, strings, ``None`` and arrays of more
    than one element are refused, and so is an int too large for a float. The
    result is always an exact ``float``, so no stored value can fail a scrape.
    """
    if not isinstance(value, (str, bytes, bytearray)):  # float("1") would parse text
        try:
            number = float(value)  # type: ignore[arg-type]  # any type: refused below if not
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            return number if number.__class__ is float else float.__float__(number)
    raise InvalidValueError(f"{what} must be a real number, got {value!r}")


def as_int(value: object, what: str) -> int:
    """``value`` as an exact int (``operator.index``); floats are refused, not truncated.

    Anything that is not an integer, or whose ``__index__`` returns something
    other than an int, raises :class:`InvalidValueError` naming ``what``.
    """
    if value.__class__ is int:
        return value
    try:
        index = operator.index(value)  # type: ignore[arg-type]  # any type: refused below
    except TypeError:
        raise InvalidValueError(f"{what} must be an integer, got {value!r}") from None
    # An int subclass (allowed, deprecated, by operator.index) is stored as a plain int.
    return index if index.__class__ is int else int.__index__(index)
