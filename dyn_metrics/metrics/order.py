"""A family's children in exposition order, kept in step by replaying the changes it logs.

An :class:`Order` is a snapshot: parallel ``keys`` and ``cells`` lists sorted
as rust-prometheus sorts children, and optionally (counters and gauges) the
text of their lines as *block templates*. A published order is never changed:
:func:`replay` copies it and applies the logged changes to the copy, so a
reader still holding the previous one keeps a consistent view.

Replaying a change is one ``bisect`` and one list insertion or deletion, not a
sort: adding a child to a 100k-series family costs a scrape well under a
millisecond, where sorting and escaping every label again cost hundreds.

Block templates. The text lines of a family are cut into blocks of about
:data:`BLOCK` lines, each one ``%``-format string of the lines' labels and a
``%s`` for each value (a ``%`` of a label value is doubled), e.g.
``'{a="x"} %s\\n{a="y"} %s\\n'``; a scrape fills them all at once and puts
the metric name in front of each line. A line costs its labels' characters
(about 20 bytes) instead of a cached string object per child (about 70). A
change re-cuts only its block: split on newlines, insert or drop one line,
join. Label values cannot hold a raw newline (text escapes it as ``\\n``), so
the lines of a block are exactly its newline-separated parts.
"""

import bisect
import operator
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, Optional, TypeVar, cast

#: Lines per block template, and past twice this many a block is split.
BLOCK = 128

_C = TypeVar("_C")
Key = tuple[str, ...]
#: Sort key of a key (label values in label-name order), None when the key itself sorts.
SortKey = Optional[Callable[[Key], Any]]
#: The ``%``-template line of one key (with its trailing newline).
LineOf = Callable[[Key], str]


class Blocks:
    """The text of a family's lines as block templates (see the module docstring).

    ``bounds[j - 1]`` is the sort key of the first key of block ``j`` when it
    was cut (a separator: block ``j`` holds the keys from it up to
    ``bounds[j]``); ``templates[j]`` and ``counts[j]`` are its text and lines.
    """

    __slots__ = ("bounds", "templates", "counts")

    def __init__(self, bounds: list[Any], templates: list[str], counts: list[int]) -> None:
        self.bounds = bounds
        self.templates = templates
        self.counts = counts

    def copy(self) -> "Blocks":
        return Blocks(list(self.bounds), list(self.templates), list(self.counts))


class Order(Generic[_C]):
    """Children sorted for exposition, as of family version ``version`` (read-only once made)."""

    __slots__ = ("version", "keys", "cells", "blocks")

    def __init__(
        self, version: int, keys: list[Key], cells: list[_C], blocks: Optional[Blocks] = None
    ) -> None:
        self.version = version
        self.keys = keys
        self.cells = cells
        self.blocks = blocks


def build(
    version: int, children: dict[Key, _C], sort_key: SortKey, line_of: Optional[LineOf]
) -> Order[_C]:
    """The order of ``children`` (a private copy of a family's child map), sorted afresh."""
    items = list(children.items())
    if sort_key is None:
        items.sort(key=_first)
    else:
        items.sort(key=lambda item: sort_key(item[0]))
    # list(map(...)) allocates exactly (a comprehension over-allocates as it grows).
    keys = list(map(_first, items))
    order = Order(version, keys, list(map(_second, items)))
    if line_of is not None:
        order.blocks = cut(keys, sort_key, line_of)
    return order


_first = operator.itemgetter(0)
_second = operator.itemgetter(1)


def cut(keys: list[Key], sort_key: SortKey, line_of: LineOf) -> Blocks:
    """Block templates of ``keys`` (sorted), :data:`BLOCK` lines each."""
    sk = _identity if sort_key is None else sort_key
    starts = range(0, len(keys), BLOCK)
    templates = ["".join(map(line_of, keys[s : s + BLOCK])) for s in starts]
    counts = [min(BLOCK, len(keys) - s) for s in starts]
    return Blocks([sk(keys[s]) for s in starts[1:]], templates, counts)


def _identity(key: Key) -> Key:
    return key


def worth_replaying(changes: int, size: int) -> bool:
    """Whether replaying ``changes`` logged keys beats sorting ``size`` children afresh.

    Each replayed change moves about ``size + changes`` list items (a C-level
    memmove) and re-cuts one block; past this bound one sort is cheaper.
    """
    return changes <= 64 or changes * (size + changes) <= 20_000_000


def replay(
    order: Order[_C],
    version: int,
    changed: list[Key],
    children: dict[Key, _C],
    sort_key: SortKey,
    line_of: Optional[LineOf],
) -> Order[_C]:
    """A new order: ``order`` with every key of ``changed`` made to agree with ``children``.

    Each key is reconciled with the live map (present: its cell is placed or
    replaced; absent: it is dropped), so a key logged twice, or logged and
    then changed again, ends right whatever the order of the log.
    """
    keys = list(order.keys)
    cells = list(order.cells)
    blocks = order.blocks.copy() if order.blocks is not None else None
    sk = _identity if sort_key is None else sort_key
    for key in dict.fromkeys(changed):
        cell = children.get(key)
        i = _position(keys, sk(key), sort_key)
        here = i < len(keys) and keys[i] == key
        if cell is None:
            if here:
                if blocks is not None:
                    _drop_line(blocks, keys, i, sk(key), sort_key)
                del keys[i]
                del cells[i]
        elif here:
            cells[i] = cell  # removed and made again: a new cell, the same line
        else:
            keys.insert(i, key)
            cells.insert(i, cell)
            if blocks is not None and line_of is not None:
                _add_line(blocks, keys, i, sk(key), sort_key, line_of)
    # Copies without the room list.insert left for growth: a steady family
    # keeps exactly 16 bytes of order per child.
    return Order(version, keys[:], cells[:], blocks)


def _position(keys: list[Key], target: Hashable, sort_key: SortKey) -> int:
    """The first index whose key sorts at or after ``target`` (a sort key)."""
    if sort_key is None:
        return bisect.bisect_left(keys, cast(Key, target))
    lo, hi = 0, len(keys)
    while lo < hi:  # bisect's key= needs Python 3.10
        mid = (lo + hi) // 2
        if sort_key(keys[mid]) < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _block_of(blocks: Blocks, keys: list[Key], target: Any, sort_key: SortKey) -> tuple[int, int]:
    """``(block index, index in keys of its first line)`` for a key sorting as ``target``."""
    j = bisect.bisect_right(blocks.bounds, target)
    start = 0 if j == 0 else _position(keys, blocks.bounds[j - 1], sort_key)
    return j, start


def _add_line(
    blocks: Blocks, keys: list[Key], i: int, target: Any, sort_key: SortKey, line_of: LineOf
) -> None:
    """Put the line of ``keys[i]`` (just inserted) into its block."""
    if not blocks.templates:
        blocks.templates.append(line_of(keys[i]))
        blocks.counts.append(1)
        return
    j, start = _block_of(blocks, keys, target, sort_key)
    lines = blocks.templates[j].split("\n")  # the last part is "" (the final newline)
    lines.insert(i - start, line_of(keys[i])[:-1])
    blocks.counts[j] += 1
    if blocks.counts[j] <= 2 * BLOCK:
        blocks.templates[j] = "\n".join(lines)
        return
    # Too long: split in two halves, the second starting at its first key.
    half = blocks.counts[j] // 2
    blocks.templates[j : j + 1] = ["\n".join(lines[:half]) + "\n", "\n".join(lines[half:])]
    blocks.counts[j : j + 1] = [half, blocks.counts[j] - half]
    first = keys[start + half]
    blocks.bounds.insert(j, first if sort_key is None else sort_key(first))


def _drop_line(blocks: Blocks, keys: list[Key], i: int, target: Any, sort_key: SortKey) -> None:
    """Take the line of ``keys[i]`` (about to be deleted) out of its block."""
    j, start = _block_of(blocks, keys, target, sort_key)
    blocks.counts[j] -= 1
    if blocks.counts[j]:
        lines = blocks.templates[j].split("\n")
        del lines[i - start]
        blocks.templates[j] = "\n".join(lines)
        return
    # Empty: drop it; its range joins the block before (or after, for the first).
    del blocks.templates[j]
    del blocks.counts[j]
    if blocks.bounds:
        del blocks.bounds[max(j - 1, 0)]


def fill(header: str, blocks: Blocks, name: str, values: Iterable[object], n: int) -> str:
    """``header`` + the ``n`` lines of ``blocks``, filled with ``values``.

    The templates hold each line's labels and value placeholder; the metric
    name goes in front of every line by one ``replace`` of the newlines. All
    of it is one C-level call (``next`` over nested ``map`` objects): the
    join, the argument tuple drawing ``values`` lazily, the ``%``, the
    ``replace`` and the concatenation. A thread competing with busy threads
    for the GIL is switched out only between calls, so a scrape made of few
    long calls is switched out (and waits a switch interval or more) rarely.
    """
    body = map(operator.mod, map("".join, (blocks.templates,)), map(tuple, (values,)))
    named = map(str.replace, body, ("\n",), ("\n" + name,), (n - 1,))
    text: str = next(map(operator.add, (header + name,), named))
    return text
