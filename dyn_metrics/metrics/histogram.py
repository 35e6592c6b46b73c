"""Histograms: bucket bounds, the cell, ``Histogram`` and ``HistogramVec``.

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
has count == the ``+Inf`` bucket.

Bucket bounds follow rust-prometheus: strictly increasing, ``+Inf`` implied,
:data:`DEFAULT_BUCKETS` when none are given; an observation counts in every
bucket whose bound is >= the value, NaN in ``+Inf`` only.
"""

import functools
import itertools
import math
import operator
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from typing import Optional, cast

from ..errors import InvalidBucketsError
from ..exposition import text as expfmt
from ..model import HISTOGRAM, Labels, Number, Sample
from .cells import EXACT_INT, FOLD_AT, as_real, drop, drop_all, stripe, take, take_all
from .desc import Desc, LabelsArg
from .exemplars import RawExemplar, as_exemplar, make_exemplar
from .family import MetricFamily, Write, expose_only_child
from .timer import Timer
from .vec import MetricVec, check_max_children

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: ``(cumulative bucket counts incl. +Inf, sum, count)`` of one child.
HistogramSnapshot = tuple[list[int], float, int]


def linear_buckets(start: float, width: float, count: int) -> list[float]:
    """``count`` buckets: ``start``, ``start + width``, ... (rust-prometheus' rule)."""
    if count < 1:
        raise InvalidBucketsError(f"linear_buckets needs a positive count, got {count!r}")
    if width <= 0:
        raise InvalidBucketsError(f"linear_buckets needs a positive width, got {width!r}")
    return [start + i * width for i in range(count)]


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """``count`` buckets: ``start``, ``start * factor``, ... (rust-prometheus' rule)."""
    if count < 1:
        raise InvalidBucketsError(f"exponential_buckets needs a positive count, got {count!r}")
    if start <= 0:
        raise InvalidBucketsError(f"exponential_buckets needs a positive start, got {start!r}")
    if factor <= 1:
        raise InvalidBucketsError(
            f"exponential_buckets needs a factor greater than 1, got {factor!r}"
        )
    return [start * factor**i for i in range(count)]


def check_buckets(buckets: Optional[Iterable[float]]) -> tuple[float, ...]:
    """Validated bucket bounds as a tuple of floats (rust-prometheus' rules).

    As ``check_and_adjust_buckets`` does: ``None`` or empty means
    :data:`DEFAULT_BUCKETS`; the bounds must increase strictly; then a
    trailing ``+Inf`` is dropped because the ``+Inf`` bucket is always there,
    so ``[math.inf]`` leaves only that bucket. A bound that is not a number,
    is NaN or overflows a float raises :class:`InvalidBucketsError`.
    """
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, (str, bytes)):
        raise InvalidBucketsError(f"buckets must be a sequence of numbers, got {buckets!r}")
    try:
        bounds = [float(b) for b in buckets]
    except OverflowError:
        raise InvalidBucketsError(f"bucket bounds must fit in a float, got {buckets!r}") from None
    except (TypeError, ValueError):
        raise InvalidBucketsError(f"buckets must be numbers, got {buckets!r}") from None
    if not bounds:
        return DEFAULT_BUCKETS
    for b in bounds:
        if math.isnan(b):
            raise InvalidBucketsError(f"bucket bounds must not be NaN, got {buckets!r}")
    for lower, upper in zip(bounds, bounds[1:]):
        if lower >= upper:
            raise InvalidBucketsError(
                "histogram buckets must be in increasing order: "
                f"{expfmt.format_value(lower)} >= {expfmt.format_value(upper)}"
            )
    if bounds[-1] == math.inf:
        bounds.pop()
    return tuple(bounds)


class HistogramDesc(Desc):
    """A histogram's :class:`Desc`: every Desc check, then the bucket bounds'.

    ``buckets`` holds the validated bounds (:func:`check_buckets`); ``le`` is
    refused as a label name. Raises :class:`InvalidBucketsError` besides the
    errors of :class:`Desc`.
    """

    __slots__ = ()
    buckets: tuple[float, ...]

    def __init__(
        self,
        name: str,
        help: str,
        const_labels: LabelsArg = None,
        label_names: Iterable[str] = (),
        buckets: Optional[Iterable[float]] = None,
        unit: str = "",
    ) -> None:
        super().__init__(name, help, HISTOGRAM, const_labels, label_names, buckets, unit)

    def _check_buckets(self, buckets: Optional[Iterable[float]]) -> tuple[float, ...]:
        return check_buckets(buckets)


def _observation(value: object) -> float:
    """``value`` as a float, or :class:`InvalidValueError` if it is not a real number."""
    return as_real(value, "histogram observation")


#: ``(counts per bucket incl. the last, above every bound; sum)`` folded so far.
_Folded = tuple[tuple[int, ...], float]


def _fold(bounds: tuple[float, ...], items: list[object]) -> _Folded:
    """``items`` = ``[folded, observations...]`` folded into one ``_Folded``."""
    folded = cast(_Folded, items[0])
    pending = cast(list[float], items[1:])
    if not pending:
        return folded
    counts, total = folded
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
    return tuple(new), total


class HistogramCell:
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
            value = _observation(value)
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

    def _fold_locked(self) -> _Folded:
        """Fold the pending observations; the cell's stripe is held."""
        items = self._items
        n = len(items)
        # Observers only append, so the first n items are exactly the ones
        # read here, whatever was appended meanwhile.
        folded = _fold(self._bounds, items[:n])
        items[0:n] = [folded]
        return folded

    def _snapshot(self, folding: bool) -> HistogramSnapshot:
        folded = self._fold_locked() if folding else _fold(self._bounds, list(self._items))
        cumulative = list(itertools.accumulate(folded[0]))
        return cumulative, folded[1], cumulative[-1]

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

    def get_sample_count(self) -> int:
        """Number of observations so far."""
        return self._read()[2]

    def get_sample_sum(self) -> float:
        """Sum of observations so far."""
        return self._read()[1]

    def time(self) -> Timer:
        """Observe the seconds spent in a ``with`` block or decorated function."""
        return Timer(self.observe)

    def start_timer(self) -> Timer:
        """Start a timer; its ``observe_duration()`` records the elapsed seconds."""
        return Timer(self.observe).start()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} count={self.get_sample_count()}>"


class HistogramFamily(MetricFamily[HistogramCell, HistogramSnapshot]):
    """Family core of histograms: per-child buckets, sum and count."""

    desc: HistogramDesc
    _cell_class = HistogramCell

    def __init__(self, desc: HistogramDesc) -> None:
        # Explicit base: HistogramVec puts MetricVec next in the MRO.
        MetricFamily.__init__(self, desc)
        self._le = tuple(expfmt.format_value(b) for b in desc.buckets) + ("+Inf",)

    def _new_cell(self) -> HistogramCell:
        return HistogramCell(self._lock, self.desc.buckets)

    def _samples(self, pairs: Labels, value: HistogramSnapshot) -> tuple[Sample, ...]:
        cumulative, total, count = value
        name = self.desc.name
        samples = [
            Sample(name + "_bucket", pairs + (("le", le),), c)
            for le, c in zip(self._le, cumulative)
        ]
        samples.append(Sample(name + "_sum", pairs, total))
        samples.append(Sample(name + "_count", pairs, count))
        return tuple(samples)

    def _with_exemplars(
        self, samples: tuple[Sample, ...], cell: HistogramCell
    ) -> tuple[Sample, ...]:
        exemplars = cell._exemplars
        if exemplars is None:
            return samples
        # The bucket samples come first, one per bucket, in bucket order.
        kept = list(samples)
        for i, ex in enumerate(list(exemplars)):
            if ex is not None:
                kept[i] = kept[i]._replace(exemplar=as_exemplar(ex))
        return tuple(kept)

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        snapshot = self._snapshot()
        if not snapshot:
            return
        name = self.desc.name
        fmt = expfmt.format_value
        out = [self._header]
        bucket_open = name + "_bucket{"
        for key, (cumulative, total, count), _, _ in snapshot:
            labels = expfmt.format_labels(self._label_pairs(key))
            inner = labels[1:-1] + "," if labels else ""
            out.extend(
                f'{bucket_open}{inner}le="{le}"}} {c}\n' for le, c in zip(self._le, cumulative)
            )
            out.append(f"{name}_sum{labels} {fmt(total)}\n{name}_count{labels} {count}\n")
        write("".join(out))


class Histogram(HistogramFamily):
    """A histogram: ``observe(v)``, ``time()``, ``start_timer()``,
    ``get_sample_count()``, ``get_sample_sum()``.

    ``buckets`` defaults to :data:`DEFAULT_BUCKETS`; bounds must increase
    strictly. Observations count in every bucket whose bound is >= the value.
    The methods below document the API; each instance shadows them with its
    one child's bound methods (``family.expose_only_child``).
    """

    _methods = ("observe", "time", "start_timer", "get_sample_count", "get_sample_sum")

    def __init__(
        self,
        name: str,
        help: str,
        const_labels: LabelsArg = None,
        buckets: Optional[Iterable[float]] = None,
        *,
        unit: str = "",
    ) -> None:
        super().__init__(HistogramDesc(name, help, const_labels, buckets=buckets, unit=unit))
        expose_only_child(self, self._methods)

    def observe(self, value: float, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Record one observation; ``exemplar`` as for ``HistogramCell.observe``."""

    def time(self) -> Timer:
        """Context manager / decorator observing elapsed seconds."""
        raise NotImplementedError  # shadowed by the child's method

    def start_timer(self) -> Timer:
        """A started timer; call ``observe_duration()`` on it."""
        raise NotImplementedError  # shadowed by the child's method

    def get_sample_count(self) -> int:
        """Number of observations."""
        raise NotImplementedError  # shadowed by the child's method

    def get_sample_sum(self) -> float:
        """Sum of observations."""
        raise NotImplementedError  # shadowed by the child's method


class HistogramVec(HistogramFamily, MetricVec[HistogramCell, HistogramSnapshot]):
    """Histograms by label values (``HistogramVec``); ``buckets`` as for Histogram.

    ``max_children`` limits the distinct label sets (see ``vec.py``).
    """

    _type = HISTOGRAM

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: LabelsArg = None,
        buckets: Optional[Iterable[float]] = None,
        *,
        max_children: Optional[int] = None,
        unit: str = "",
    ) -> None:
        limit = check_max_children(max_children)
        HistogramFamily.__init__(
            self, HistogramDesc(name, help, const_labels, label_names, buckets=buckets, unit=unit)
        )
        self._set_limit(limit)
