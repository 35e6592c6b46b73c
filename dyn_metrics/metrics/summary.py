"""Summaries: the objectives, the cell, ``Summary`` and ``SummaryVec`` (client_golang's semantics).

Each objective ``q: eps`` is answered within rank error ``eps * n`` over the
observations of the last ``max_age`` seconds: a sliding window of
``age_buckets`` targeted quantile streams (``quantiles.py``), the head one
reset and the window advanced every ``max_age / age_buckets`` seconds of the
summary's clock. ``_sum`` and ``_count`` cover all time. NaN observations
count in ``_count`` and make ``_sum`` NaN but stay out of the quantiles; a
quantile is NaN while the window holds no observation.

A :class:`SummaryCell` keeps, as a histogram cell does, a private list
``[folded, pending observations...]``: ``observe(v)`` is a type check, one
clock check (so that observations are attributed to the right age window) and
one C-level ``list.append``. Folding replaces the list's first n items with
the new ``folded`` ``(window, count, sum)`` in one slice assignment, under the
cell's stripe, when a read folds, when :data:`FOLD_AT` observations are
pending, or when the head's expiry has passed (only if the stripe is free: an
update never waits). A window is never changed in place (folding builds a new
one), so at every moment the list holds the whole state, and a read that
cannot take the stripe (its own thread holds it) computes the same snapshot
out of one atomic copy. The clock is read before any lock is taken. Without
objectives a cell keeps no window and reads no clock.

Memory per child, bounded whatever the number of observations: at most
:data:`FOLD_AT` pending observations, at most ``quantiles.MERGE_AT`` sorted
values waiting (8 bytes each) to be merged into the streams, and
``age_buckets`` streams of a few dozen to a few hundred tuples each.
"""

import functools
import math
import operator
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Optional, cast

from ..errors import InvalidLabelsError, InvalidValueError
from ..exposition import text as expfmt
from ..model import SUMMARY, Labels, Number, Sample
from .cells import EXACT_INT, as_real, drop, drop_all, stripe, take, take_all
from .desc import Desc, LabelsArg
from .family import MetricFamily, Write, expose_only_child
from .quantiles import AgeWindow, targets_of
from .summary_options import check_age_buckets, check_max_age, check_objectives, check_window
from .timer import ObservedCell, Timer
from .vec import MetricVec, check_max_children

#: Pending observations folded at once (sorting a batch is the fold's main cost).
FOLD_AT = 1024
DEFAULT_MAX_AGE = 600.0
DEFAULT_AGE_BUCKETS = 5

#: ``(quantile values in ascending quantile order, sum, count)`` of one child.
SummarySnapshot = tuple[tuple[float, ...], float, int]
#: ``(window or None, count, sum)`` folded so far.
_Folded = tuple[Optional[AgeWindow], int, float]
Clock = Callable[[], float]


class SummaryDesc(Desc):
    """A summary's :class:`Desc`: every Desc check, ``quantile`` refused as a label name."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        help: str,
        const_labels: LabelsArg = None,
        label_names: Iterable[str] = (),
        unit: str = "",
    ) -> None:
        super().__init__(name, help, SUMMARY, const_labels, label_names, unit=unit)
        if "quantile" in self.label_names or any(k == "quantile" for k, _ in self.const_labels):
            raise InvalidLabelsError(
                f"label name 'quantile' is not allowed in summaries (metric {name!r})"
            )


class _Config:
    """What every child of one summary shares: the objectives, the window shape, the clock."""

    __slots__ = ("quantiles", "targets", "max_age", "age_buckets", "clock")

    def __init__(
        self, objectives: dict[float, float], max_age: float, age_buckets: int, clock: Clock
    ) -> None:
        self.quantiles = tuple(sorted(objectives))
        self.targets = targets_of(objectives)
        self.max_age = max_age
        self.age_buckets = age_buckets
        self.clock = clock


def _observation(value: object) -> float:
    return as_real(value, "summary observation")


def _fold(items: list[object], now: Optional[float]) -> _Folded:
    """``items`` = ``[folded, observations...]`` folded, the window rotated to ``now``."""
    window, count, total = cast(_Folded, items[0])
    pending = cast(list[float], items[1:])
    if pending:
        count += len(pending)
        # Left to right, as client_golang's `sum += v`.
        total = functools.reduce(operator.add, pending, total)
        if window is not None:
            # NaN stays out of the streams (and would confuse the sort).
            numbers = [v for v in pending if v == v] if total != total else pending
            numbers.sort()
            window = window.add(numbers)
    if window is not None and now is not None:
        window = window.rotated(now)
    return window, count, total


class SummaryCell(ObservedCell):
    """A summary child: pending observations and the folded window, sum and count."""

    __slots__ = ("_items", "_config", "_clock", "_expiry")

    def __init__(self, lock: threading.Lock, config: Optional[_Config] = None) -> None:
        config = config or _Config({}, DEFAULT_MAX_AGE, DEFAULT_AGE_BUCKETS, time.monotonic)
        self._config = config
        self._clock = config.clock
        window = None
        self._expiry = math.inf
        if config.quantiles:
            window = AgeWindow.new(
                config.targets, config.age_buckets, config.max_age, config.clock()
            )
            self._expiry = window.expiry
        folded: _Folded = (window, 0, 0.0)
        self._items: list[object] = [folded]

    def observe(self, value: Number) -> None:
        """Record one observation (any real number; NaN and infinities too).

        Lock-free on the common path. Anything that is not a real number
        raises :class:`InvalidValueError` and records nothing.
        """
        cls = value.__class__
        if cls is not float and (cls is not int or not -EXACT_INT < value < EXACT_INT):
            value = _observation(value)
        now = self._clock()
        if now >= self._expiry:
            # Fold what came before the boundary into the window it belongs to.
            self._fold_free(now)
        items = self._items
        items.append(value)
        if len(items) > FOLD_AT:
            self._fold_free(now)

    def _fold_free(self, now: Optional[float]) -> None:
        lock = stripe(self)
        if take(lock, wait=False):
            try:
                self._fold_locked(now)
            finally:
                drop(lock)

    def _now(self) -> Optional[float]:
        """The clock, read before any lock is taken (it may be the user's code)."""
        return self._clock() if self._config.quantiles else None

    def _fold_locked(self, now: Optional[float], merge: bool = False) -> _Folded:
        """Fold the pending observations, rotated to ``now``; the cell's stripe is held."""
        items = self._items
        n = len(items)
        # Observers only append, so the first n items are exactly the ones
        # read here, whatever was appended meanwhile.
        window, count, total = _fold(items[:n], now)
        if merge and window is not None:
            window = window.merged()
        folded = (window, count, total)
        items[0:n] = [folded]
        if window is not None:
            self._expiry = window.expiry
        return folded

    def _snapshot(self, folding: bool, now: Optional[float]) -> SummarySnapshot:
        if folding:
            window, count, total = self._fold_locked(now, merge=True)
        else:
            window, count, total = _fold(list(self._items), now)
        if window is None:
            return (), total, count
        window = window.merged()
        head = window.streams[window.head]
        return tuple(head.query(q) for q in self._config.quantiles), total, count

    def _read(self) -> SummarySnapshot:
        """``(quantile values, sum, count)``, folding if it can."""
        now = self._now()
        lock = stripe(self)
        if not take(lock):
            return self._snapshot(False, now)
        try:
            return self._snapshot(True, now)
        finally:
            drop(lock)

    _read_locked = _read

    @staticmethod
    def _read_many(cells: list["SummaryCell"]) -> list[SummarySnapshot]:
        """The snapshots of many cells at once (what a family read uses)."""
        nows = [cell._now() for cell in cells]
        if not take_all(cells):
            return [cell._snapshot(False, now) for cell, now in zip(cells, nows)]
        try:
            return [cell._snapshot(True, now) for cell, now in zip(cells, nows)]
        finally:
            drop_all()


class PlainSummaryCell(SummaryCell):
    """A summary child without objectives: only ``_sum`` and ``_count``, no clock read."""

    __slots__ = ()

    def observe(self, value: Number) -> None:
        """Record one observation (any real number; NaN and infinities too)."""
        cls = value.__class__
        if cls is not float and (cls is not int or not -EXACT_INT < value < EXACT_INT):
            value = _observation(value)
        items = self._items
        items.append(value)
        if len(items) > FOLD_AT:
            self._fold_free(None)


class SummaryFamily(MetricFamily[SummaryCell, SummarySnapshot]):
    """Family core of summaries: per-child quantiles, sum and count."""

    desc: SummaryDesc
    _cell_class = SummaryCell

    def __init__(
        self,
        desc: SummaryDesc,
        objectives: object,
        max_age: object,
        age_buckets: object,
        clock: Clock,
    ) -> None:
        checked = check_objectives(objectives)
        seconds = check_max_age(max_age)
        buckets = check_age_buckets(age_buckets)
        check_window(seconds, buckets)
        if not callable(clock):
            raise InvalidValueError(f"clock must be a callable returning seconds, got {clock!r}")
        # Explicit base: SummaryVec puts MetricVec next in the MRO.
        MetricFamily.__init__(self, desc)
        self._config = _Config(checked, seconds, buckets, clock)
        self._plain = not checked
        self._quantile_text = tuple(expfmt.format_value(q) for q in self._config.quantiles)

    @property
    def objectives(self) -> dict[float, float]:
        """The objectives ``{quantile: epsilon}`` (a copy)."""
        return {q: eps for q, eps, _, _ in self._config.targets}

    def _new_cell(self) -> SummaryCell:
        if self._plain:
            return PlainSummaryCell(self._lock, self._config)
        return SummaryCell(self._lock, self._config)

    def _samples(self, pairs: Labels, value: SummarySnapshot) -> tuple[Sample, ...]:
        values, total, count = value
        name = self.desc.name
        samples = [
            Sample(name, pairs + (("quantile", q),), v) for q, v in zip(self._quantile_text, values)
        ]
        samples.append(Sample(name + "_sum", pairs, total))
        samples.append(Sample(name + "_count", pairs, count))
        return tuple(samples)

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        snapshot = self._snapshot()
        if not snapshot:
            return
        name = self.desc.name
        fmt = expfmt.format_value
        out = [self._header]
        for key, (values, total, count), _, _ in snapshot:
            labels = expfmt.format_labels(self._label_pairs(key))
            inner = labels[1:-1] + "," if labels else ""
            out.extend(
                f'{name}{{{inner}quantile="{q}"}} {fmt(v)}\n'
                for q, v in zip(self._quantile_text, values)
            )
            out.append(f"{name}_sum{labels} {fmt(total)}\n{name}_count{labels} {count}\n")
        write("".join(out))


class Summary(SummaryFamily):
    """A summary: ``observe(v)``, ``time()``, ``start_timer()``,
    ``get_sample_count()``, ``get_sample_sum()``.

    ``objectives`` ``{quantile: epsilon}`` (None or ``{}``: only ``_sum`` and
    ``_count``); quantiles over the last ``max_age`` seconds in
    ``age_buckets`` steps of ``clock`` (``time.monotonic``). Bad objectives,
    ``max_age`` or ``age_buckets`` raise :class:`InvalidValueError`; a
    ``quantile`` label, :class:`InvalidLabelsError`. The methods below
    document the API; each instance shadows them with its one child's bound
    methods (``family.expose_only_child``).
    """

    _methods = ("observe", "time", "start_timer", "get_sample_count", "get_sample_sum")

    def __init__(
        self,
        name: str,
        help: str,
        const_labels: LabelsArg = None,
        objectives: Optional[Mapping[float, float]] = None,
        max_age: float = DEFAULT_MAX_AGE,
        age_buckets: int = DEFAULT_AGE_BUCKETS,
        *,
        unit: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        desc = SummaryDesc(name, help, const_labels, unit=unit)
        super().__init__(desc, objectives, max_age, age_buckets, clock)
        expose_only_child(self, self._methods)

    def observe(self, value: float) -> None:
        """Record one observation."""

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


class SummaryVec(SummaryFamily, MetricVec[SummaryCell, SummarySnapshot]):
    """Summaries by label values; the other arguments as for :class:`Summary`.

    ``max_children`` limits the distinct label sets (see ``vec.py``).
    """

    _type = SUMMARY

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: LabelsArg = None,
        objectives: Optional[Mapping[float, float]] = None,
        max_age: float = DEFAULT_MAX_AGE,
        age_buckets: int = DEFAULT_AGE_BUCKETS,
        *,
        max_children: Optional[int] = None,
        unit: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        limit = check_max_children(max_children)
        desc = SummaryDesc(name, help, const_labels, label_names, unit=unit)
        SummaryFamily.__init__(self, desc, objectives, max_age, age_buckets, clock)
        self._set_limit(limit)
