"""The cell of a native histogram: a :class:`HistogramCell` that folds into native buckets too.

``observe`` is the classic cell's single ``list.append``; folding and
reading differ, as ``native_histogram.py`` describes. A native fold costs
about one bisection per bucket between the batch's extremes (some 60 for a
latency distribution at schema 3) besides the classic fold's sort, so a
native cell lets
:data:`NATIVE_FOLD_AT` observations pend instead of 256: four times fewer
folds keep ``observe`` near the classic one's cost, at the price of up to
1024 pending floats per busy child between folds (8 KiB of references and
the floats themselves, 24 bytes each).
"""

import itertools
import threading
from collections.abc import Mapping
from typing import Optional, cast

from ..model import Number
from .cells import EXACT_INT, drop, stripe, take
from .exemplars import make_exemplar
from .histogram_cell import HistogramCell, HistogramSnapshot, as_observation
from .native_histogram import NativeFolded, NativeOptions, empty, fold, record

#: Pending observations that make ``observe`` fold (when the stripe is free).
NATIVE_FOLD_AT = 1024


class NativeHistogramCell(HistogramCell):
    """A native histogram child: classic buckets (maybe only ``+Inf``) and exponential ones."""

    __slots__ = ("_native",)

    def __init__(self, lock: threading.Lock, bounds: tuple[float, ...], native: NativeOptions):
        super().__init__(lock, bounds)
        self._native = native
        self._items = [empty(bounds, native)]

    def observe(self, value: Number, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Record one observation, as :meth:`HistogramCell.observe` does."""
        # HistogramCell.observe with its own fold threshold: a constant, as
        # there, since an attribute read would slow every classic observe.
        cls = value.__class__
        if cls is not float and (cls is not int or not -EXACT_INT < value < EXACT_INT):
            value = as_observation(value)
        if exemplar is not None:
            self._keep_exemplar(make_exemplar(exemplar, value), value)
        items = self._items
        items.append(value)
        if len(items) > NATIVE_FOLD_AT:
            lock = stripe(self)
            if take(lock, wait=False):
                try:
                    self._fold_locked()
                finally:
                    drop(lock)

    def _fold(self, items: list[object]) -> object:
        return fold(self._bounds, self._native, items)

    def _reading(self, folded: object) -> HistogramSnapshot:
        state = cast(NativeFolded, folded)
        cumulative = list(itertools.accumulate(state.classic))
        return cumulative, state.total, cumulative[-1], record(state, self._native)
