"""Reading counter cells: ticked family reads, and reads that change nothing.

How a read stays exact without a per-cell read counter is told in
``counter_cell.py``'s docstring; these are its functions. Each family read
ticks its cells with their stripes held, and stores their new counts of reads
in the same C-level call; a read that must not tick (a single ``get()``, or
one whose own thread already holds a stripe) parses the counts' ``repr``.
"""

import functools
import itertools
import operator
from collections.abc import Iterator
from itertools import chain, islice, repeat
from typing import Any, Callable, Optional, TypeVar, Union, cast

from ..model import Number
from .cells import drop_all, fold_sum, parse_count, peek_sum, take_all
from .exemplars import RawExemplar

#: A ``counter_cell.CounterCell`` (an ``itertools.count`` with a ``_value`` slot and a
#: ``_number`` class attribute); not imported: that module imports this one.
CounterCell = Any

_T = TypeVar("_T")
_count_next = itertools.count.__next__
_count_repr = itertools.count.__repr__


class Pending(list):  # type: ignore[type-arg]  # list[Number], with slots
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
DEFERRED: list[tuple[CounterCell, Number]] = []

#: What ``_value`` holds: the reads that ticked the count, or the list.
State = Union[int, Pending]


def deferred_of(cell: CounterCell) -> list[tuple[CounterCell, Number]]:
    return [entry for entry in list(DEFERRED) if entry[0] is cell] if DEFERRED else []


def deferred_sum(cell: CounterCell, start: Number) -> Number:
    """``start`` plus the amounts deferred for ``cell``, in order."""
    amounts = [amount for c, amount in list(DEFERRED) if c is cell] if DEFERRED else []
    return functools.reduce(operator.add, amounts, start)


def read_locked(cell: CounterCell) -> Number:
    """One cell's value without ticking; its stripe is held, so no read moves ``_value``."""
    state, text = cell._value, _count_repr(cell)
    count = parse_count(text)
    if isinstance(state, Pending):
        return (count - state.base) + fold_sum(state)
    return deferred_sum(cell, cell._number(count - state))


def peek_many(cells: list[CounterCell]) -> list[Number]:
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
        count = parse_count(text)
        if state.__class__ is Pending:
            out.append((count - base) + peek_sum(state))
        else:
            out.append(deferred_sum(cell, cell._number(count - state)))
    return out


def read_raw(cells: list[CounterCell]) -> list[Number]:
    """The values of ``cells`` (floats for float counters), ticking each once.

    Takes the cells' stripes; a read whose own thread holds one already
    (nested in a signal handler or GC callback) peeks instead.
    """
    if not cells:
        return []
    if not take_all(cells):
        return peek_many(cells)
    try:
        values = draw_with(draw_ticks(cells), list)
        if values is None:
            return read_mixed(cells, list(map(getattr, cells, repeat("_value"))))
    finally:
        drop_all()
    # The increments are exact ints; a float counter reads them as floats
    # (past 2**53 rounded, as Rust's f64 holds them).
    return list(map(float, values)) if cells[0]._number is float else cast(list[Number], values)


def draw_ticks(cells: list[CounterCell]) -> Optional[tuple[list[int], Iterator[int], list[int]]]:
    """``(ticks, increments, reads before)`` of ``cells``, all drawn lazily; None if deferred.

    Nothing is read yet: drawing the first item of ``increments`` lists every
    cell's count of reads, ticks every cell and stores its new count of reads,
    all in that one C call (``list.extend``, ``set.update``, ``dict.update``:
    no bytecode runs, and from the first tick to the last store nothing is
    allocated that the garbage collector counts but the argument tuples of
    ``count.__next__``, a slot wrapper, which come from the free list), filling
    the two lists; the increments are then ``ticks - reads`` item by item. The
    caller holds the cells' stripes until it has drawn them all, so a scrape
    draws them inside the very C call that formats them: one switch point for
    the whole read.

    A cell with a list (unhashable) makes that first draw raise TypeError
    before anything is ticked, ``ticks`` still empty: the caller reads through
    :func:`read_mixed` then. None, having read nothing, when amounts are deferred.
    """
    if DEFERRED:
        return None
    reads: list[int] = []
    distinct: set[int] = set()
    # Every cell read as often shares one int: each distinct count of reads maps to one
    # successor, made once (commonly one count for all cells).
    succ: dict[int, int] = {}
    ticks: list[int] = []
    later = _later(distinct)
    steps = (
        map(reads.extend, (map(getattr, cells, repeat("_value")),)),
        map(distinct.update, (reads,)),
        map(succ.update, (zip(later, map(operator.add, _later(distinct), repeat(1))),)),
        map(
            ticks.extend,
            (
                chain(
                    map(_count_next, cells),
                    map(setattr, cells, repeat("_value"), map(succ.__getitem__, reads)),
                ),
            ),
        ),
    )
    # A None from each step (the last once it has ticked all), then the ticks.
    drawn = islice(chain(*steps, ticks), len(steps), len(steps) + len(cells))
    return ticks, map(operator.sub, drawn, iter(reads)), reads


def draw_with(
    drawn: Optional[tuple[list[int], Iterator[int], list[int]]], use: Callable[[Iterator[int]], _T]
) -> Optional[_T]:
    """``use(increments)`` of a :func:`draw_ticks` result; None, nothing ticked, when the
    result is None or a cell has a list."""
    if drawn is None:
        return None
    ticks, increments, _reads = drawn
    try:
        return use(increments)
    except TypeError:
        if ticks:  # raised once ticking had begun: not a cell's list
            raise
        return None


def _later(items: set[int]) -> Iterator[int]:
    """The items of ``items`` as they are when first drawn from (a set's own iterator
    would refuse a set that grew after it was made)."""
    return chain.from_iterable(map(list, (items,)))


def read_mixed(cells: list[CounterCell], states: list[State]) -> list[Number]:
    """:func:`_read_raw` when some cells have lists or deferred amounts; stripes held."""
    plain: list[CounterCell] = []
    plain_new: list[int] = []
    lists: list[Pending] = []
    list_new: list[int] = []
    shared: dict[int, int] = {}
    for cell, state in zip(cells, states):
        if isinstance(state, Pending):
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
        if isinstance(state, Pending):  # its base has just moved on by this read's tick
            out.append((tick - (state.base - 1)) + fold_sum(state))
        else:
            out.append(deferred_sum(cell, cell._number(tick - state)))
    return out
