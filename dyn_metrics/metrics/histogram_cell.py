"""The histogram cell: pending observations and folded bucket counts in one private list.

A :class:`HistogramCell` keeps a private list ``[folded, pending
observations...]``: ``observe(v)`` is one C-level ``list.append``, atomic
under the GIL and on free-threaded builds alike (list operations lock the
list there), so no fallback is needed. ``folded`` is ``(bucket counts, sum)``.
Folding replaces the list's first n items with the new ``folded`` in one
slice assignment, under the cell's stripe, when a read folds or when 256
observations are pending (only if the stripe is free: an update never
waits). At every moment the list holds the whole state, so a read that
cannot take the stripe (its own thread holds it: a read nested in a signal
handler) computes the same snapshot from one atomic copy, and every snapshot
has count == the ``+Inf`` bucket. A native histogram's cell
(``native_cell.py``) folds its own way through the same list.
"""

import functools
import itertools
import operator
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from typing import Optional, cast

from ..model import NativeHistogram, Number
from .cells import EXACT_INT, FOLD_AT, as_real, drop, drop_all, stripe, take, take_all
from .exemplars import RawExemplar, make_exemplar
from .timer import ObservedCell

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: ``(cumulative bucket counts incl. +Inf, sum, count, native buckets or None)`` of one child.
HistogramSnapshot = tuple[list[int], float, int, Optional[NativeHistogram]]


def as_observation(value: object) -> float:
    """``value`` as a float, or :class:`InvalidValueError` if it is not a real number."""
    return as_real(value, "histogram observation")


#: ``(counts per bucket incl. the last, above every bound; sum)`` folded so far.
_Folded = tuple[tuple[int, ...], float]


def fold_classic(
    bounds: tuple[float, ...], counts: tuple[int, ...], total: float, pending: list[float]
) -> tuple[tuple[int, ...], float, list[float]]:
    """``(counts, sum)`` with the ``pending`` observations added, and those sorted, NaN left out.

    ``counts`` are per bucket, the last above every bound; a native fold goes
    on to index the returned sorted values.
    """
    new = list(counts)
    # Left to right, so the sum rounds exactly as Rust's `sum += v`.
    total = functools.reduce(operator.add, pending, total)
    # NaN belongs in +Inf only (as in rust-prometheus) and would confuse
    # the sort; `total` is NaN whenever one was observed.
    numbers = [v for v in pending if v == v] if total != total else pending
    numbers.sort()
    # One bisection per bound over the sorted batch instead of one per
    # observation: bisect_right counts the values <= bound.
    below = 0
    for i, bound in enumerate(bounds):
        upto = bisect_right(numbers, bound)
        new[i] += upto - below
        below = upto
    new[-1] += len(pending) - below
    return tuple(new), total, numbers


def _fold(bounds: tuple[float, ...], items: list[object]) -> _Folded:
    """``items`` = ``[folded, observations...]`` folded into one ``_Folded``."""
    folded = cast(_Folded, items[0])
    pending = cast(list[float], items[1:])
    if not pending:
        return folded
    counts, total, _ = fold_classic(bounds, folded[0], folded[1], pending)
    return counts, total


class HistogramCell(ObservedCell):
    """A histogram child: pending observations and folded totals in one private list.

    Bucket ``i`` counts observations in ``(bounds[i-1], bounds[i]]``, the
    last one those above every bound (and NaN, as rust-prometheus does).
    ``_exemplars`` (made at the first exemplar) holds the latest exemplar of
    each bucket, replaced by one item store.
    """

    __slots__ = ("_items", "_bounds", "_exemplars")

    def __init__(self, lock: threading.Lock, bounds: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self._bounds = bounds
        folded: _Folded = ((0,) * (len(bounds) + 1), 0.0)
        self._items: list[object] = [folded]
        self._exemplars: Optional[list[Optional[RawExemplar]]] = None

    def observe(self, value: Number, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Record one observation (any real number; NaN and infinities too).

        Lock-free on the common path. Anything that is not a real number
        raises :class:`InvalidValueError` and records nothing. ``exemplar``
        (``{label: value}``, at most 128 characters in all) becomes the
        latest exemplar of the bucket ``value`` falls in; a bad one raises
        :class:`InvalidLabelsError` and records nothing.
        """
        cls = value.__class__
        if cls is not float and (cls is not int or not -EXACT_INT < value < EXACT_INT):
            value = as_observation(value)
        if exemplar is not None:
            self._keep_exemplar(make_exemplar(exemplar, value), value)
        items = self._items
        items.append(value)
        if len(items) > FOLD_AT:
            lock = stripe(self)
            if take(lock, wait=False):
                try:
                    self._fold_locked()
                finally:
                    drop(lock)

    def _keep_exemplar(self, exemplar: RawExemplar, value: float) -> None:
        exemplars = self._exemplars
        if exemplars is None:
            # Made once under the stripe, so two first exemplars make one list.
            lock = stripe(self)
            if not take(lock):
                return  # its own thread holds the stripe (a signal handler in a scrape)
            try:
                if self._exemplars is None:
                    self._exemplars = [None] * (len(self._bounds) + 1)
                exemplars = self._exemplars
            finally:
                drop(lock)
        # The first bucket whose bound is >= value; NaN goes to +Inf.
        bounds = self._bounds
        exemplars[bisect_left(bounds, value) if value == value else len(bounds)] = exemplar

    def _fold_locked(self) -> object:
        """Fold the pending observations; the cell's stripe is held."""
        items = self._items
        n = len(items)
        # Observers only append, so the first n items are exactly the ones
        # read here, whatever was appended meanwhile.
        folded = self._fold(items[:n])
        items[0:n] = [folded]
        return folded

    def _fold(self, items: list[object]) -> object:
        """``items`` (``[folded, observations...]``) folded; a native cell folds its own way."""
        return _fold(self._bounds, items)

    def _reading(self, folded: object) -> HistogramSnapshot:
        """The snapshot of a folded state."""
        counts, total = cast(_Folded, folded)
        cumulative = list(itertools.accumulate(counts))
        return cumulative, total, cumulative[-1], None

    def _snapshot(self, folding: bool) -> HistogramSnapshot:
        return self._reading(self._fold_locked() if folding else self._fold(list(self._items)))

    def _read(self) -> HistogramSnapshot:
        """``(cumulative bucket counts incl. +Inf, sum, count)``, folding if it can."""
        lock = stripe(self)
        if not take(lock):
            return self._snapshot(folding=False)
        try:
            return self._snapshot(folding=True)
        finally:
            drop(lock)

    # What a family read takes from every kind of cell.
    _read_locked = _read

    @staticmethod
    def _read_many(cells: list["HistogramCell"]) -> list[HistogramSnapshot]:
        """The snapshots of many cells at once (what a family read uses)."""
        if not take_all(cells):
            return [cell._snapshot(folding=False) for cell in cells]
        try:
            return [cell._snapshot(folding=True) for cell in cells]
        finally:
            drop_all()
