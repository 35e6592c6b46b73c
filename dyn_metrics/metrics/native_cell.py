"""The cell of a native histogram: a :class:`HistogramCell` that folds into native buckets too.

``observe`` is the classic cell's (one ``list.append``); only folding and
reading differ, as ``native_histogram.py`` describes.
"""

import itertools
import threading
from typing import cast

from .histogram_cell import HistogramCell, HistogramSnapshot
from .native_histogram import NativeFolded, NativeOptions, empty, fold, record


class NativeHistogramCell(HistogramCell):
    """A native histogram child: classic buckets (maybe only ``+Inf``) and exponential ones."""

    __slots__ = ("_native",)

    def __init__(self, lock: threading.Lock, bounds: tuple[float, ...], native: NativeOptions):
        super().__init__(lock, bounds)
        self._native = native
        self._items = [empty(bounds, native)]

    def _fold(self, items: list[object]) -> object:
        return fold(self._bounds, self._native, items)

    def _reading(self, folded: object) -> HistogramSnapshot:
        state = cast(NativeFolded, folded)
        cumulative = list(itertools.accumulate(state.classic))
        return cumulative, state.total, cumulative[-1], record(state, self._native)
