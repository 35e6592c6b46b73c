"""More multiprocess cells: the int counter and gauge, and those with several entries each.

Built on :class:`~.values.FileCell` (its docstring explains the hot path and
what stays in this process). A histogram child's entries are one per bucket,
not cumulative, then ``_sum`` (the count is the buckets' total); a summary's
are ``_sum`` and ``_count``; a state set's one per state (1 or 0); an info
child's one for its current labels (value 1).
"""

import functools
import itertools
import operator
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Optional, cast

from ..errors import InvalidValueError
from ..metrics.cells import EXACT_INT, as_int, as_real
from ..metrics.exemplars import RawExemplar, make_exemplar
from ..metrics.histogram_cell import HistogramSnapshot
from ..metrics.info import InfoKeys
from ..metrics.stateset import StateNames
from ..metrics.summary import SummaryCell, SummarySnapshot
from ..metrics.timer import ObservedCell
from ..model import Labels, Number
from .values import FileCell, FileGaugeCell, make_adder
from .writer import ProcessFile


class FileIntGaugeCell(FileGaugeCell):
    """An integer gauge in the file (exact up to 2**53)."""

    __slots__ = ()
    _kind = int

    @staticmethod
    def _number(value: object) -> int:
        return as_int(value, "int gauge value")

    @staticmethod
    def _function_result(value: object) -> int:
        return as_int(value, "int gauge function result")

    @staticmethod
    def _seconds(seconds: float) -> int:
        return int(seconds)

    add = inc = make_adder(1)

    def dec(self, amount: Number = 1) -> None:
        """Subtract ``amount`` (default 1)."""
        try:
            self.add(-amount)
        except (TypeError, InvalidValueError):
            self.add(-self._number(amount))


class FileHistogramCell(FileCell, ObservedCell):
    """A classic histogram child in the file: ``observe``, ``time``, ``start_timer``, reads."""

    __slots__ = ("_bounds", "_buckets", "_si", "_exemplars")

    def __init__(
        self, file: Optional[ProcessFile], keys: Sequence[bytes], bounds: tuple[float, ...]
    ) -> None:
        self._bounds = bounds
        self._exemplars: Optional[list[Optional[RawExemplar]]] = None
        self._start(file, keys)

    def _bind(self) -> None:
        self._buckets = tuple(self._at[:-1])
        self._si = self._at[-1]

    def observe(self, value: Number, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Record one observation (any real number; NaN counts in ``+Inf`` only)."""
        cls = value.__class__
        if cls is not float and (cls is not int or not -EXACT_INT < value < EXACT_INT):
            value = as_real(value, "histogram observation")
        bounds = self._bounds
        bucket = bisect_left(bounds, value) if value == value else len(bounds)
        if exemplar is not None:
            exemplars = self._exemplars
            if exemplars is None:
                exemplars = self._exemplars = [None] * (len(bounds) + 1)
            exemplars[bucket] = make_exemplar(exemplar, value)
        lock = self._lock
        if lock.acquire(False):
            try:
                mv = self._mv
                mv[self._buckets[bucket]] += 1.0
                mv[self._si] += value
            finally:
                lock.release()
            if self._pending:
                self._drain()
        else:
            self._update(value)

    def _apply_locked(self, items: list[object]) -> None:
        mv, bounds, buckets = self._mv, self._bounds, self._buckets
        total = mv[self._si]
        for value in items:
            v: float = value  # type: ignore[assignment]
            mv[buckets[bisect_left(bounds, v) if v == v else len(bounds)]] += 1.0
            total += v
        mv[self._si] = total

    def _read(self) -> HistogramSnapshot:
        values, pending = self._snapshot_values()
        counts, total = values[:-1], values[-1]
        bounds = self._bounds
        for item in pending:
            v: float = item  # type: ignore[assignment]
            counts[bisect_left(bounds, v) if v == v else len(bounds)] += 1.0
            total += v
        cumulative = list(itertools.accumulate(int(c) for c in counts))
        return cumulative, total, cumulative[-1], None

    _read_locked = _read

    @staticmethod
    def _read_many(cells: list["FileHistogramCell"]) -> list[HistogramSnapshot]:
        return [cell._read() for cell in cells]


class FileSummaryCell(FileCell, ObservedCell):
    """A summary child: ``_sum`` and ``_count`` in the file, quantiles in ``inner``."""

    __slots__ = ("_inner", "_si", "_ci")

    def __init__(
        self, file: Optional[ProcessFile], keys: Sequence[bytes], inner: Optional[SummaryCell]
    ) -> None:
        self._inner = inner
        self._start(file, keys)

    def _bind(self) -> None:
        self._si, self._ci = self._at

    def _reset(self, file: ProcessFile) -> None:
        inner = self._inner
        if inner is not None:  # the quantiles start over with _sum and _count
            self._inner = type(inner)(threading.Lock(), inner._config)
        super()._reset(file)

    def observe(self, value: Number) -> None:
        """Record one observation (any real number)."""
        cls = value.__class__
        if cls is not float and (cls is not int or not -EXACT_INT < value < EXACT_INT):
            value = as_real(value, "summary observation")
        lock = self._lock
        if lock.acquire(False):
            try:
                mv = self._mv
                mv[self._si] += value
                mv[self._ci] += 1.0
            finally:
                lock.release()
            if self._pending:
                self._drain()
        else:
            self._update(value)
        inner = self._inner  # after: a forked child's first update starts a new one
        if inner is not None:
            inner.observe(value)

    def _apply_locked(self, items: list[object]) -> None:
        mv = self._mv
        mv[self._si] = functools.reduce(operator.add, items, mv[self._si])
        mv[self._ci] += len(items)

    def _read(self) -> SummarySnapshot:
        values, pending = self._snapshot_values()
        total = functools.reduce(operator.add, pending, values[0])
        count = int(values[1]) + len(pending)
        inner = self._inner
        quantiles = inner._read()[0] if inner is not None else ()
        return quantiles, total, count

    _read_locked = _read

    @staticmethod
    def _read_many(cells: list["FileSummaryCell"]) -> list[SummarySnapshot]:
        return [cell._read() for cell in cells]


class FileStateSetCell(FileCell):
    """A state set child: one entry per declared state, 1 or 0; the mask in process too."""

    __slots__ = ("_states", "_mask")
    _additive: ClassVar[bool] = False

    def __init__(
        self, file: Optional[ProcessFile], keys: Sequence[bytes], states: StateNames
    ) -> None:
        self._states = states
        self._mask = 1  # the first declared state, as prometheus_client's Enum
        self._start(file, keys)

    def _values(self) -> list[float]:
        mask = self._mask
        return [float(mask >> i & 1) for i in range(len(self._keys))]

    def _change(self, item: tuple[int, int]) -> None:
        lock = self._lock
        if lock.acquire(False):
            try:
                self._apply_locked([item])
            finally:
                lock.release()
            if self._pending:
                self._drain()
        else:
            self._update(item)

    def _apply_locked(self, items: list[object]) -> None:
        mask = self._mask
        for item in items:
            keep, bits = cast("tuple[int, int]", item)  # (bits kept, bits set)
            mask = mask & keep | bits
        self._mask = mask
        self._store(self._values())

    def state(self, state: str) -> None:
        """Make ``state`` the only true state; InvalidValueError if undeclared."""
        self._change((0, self._states.bit(state)))

    def set(self, state: str, value: bool) -> None:
        """Turn one declared ``state`` on or off, leaving the others."""
        bit = self._states.bit(state)
        flag: object = value
        if flag.__class__ is not bool:
            raise_not_bool(self._states, state, flag)
        self._change((-1, bit) if value else (~bit, 0))

    def _read(self) -> int:
        lock = self._lock
        if lock.acquire(False):
            try:
                self._take_pending()
            finally:
                lock.release()
        return self._mask

    _read_locked = _read

    def get(self) -> tuple[str, ...]:
        """The true states, in declared order."""
        return self._states.true_states(self._read())

    @staticmethod
    def _read_many(cells: list["FileStateSetCell"]) -> list[int]:
        return [cell._read() for cell in cells]


def raise_not_bool(states: StateNames, state: str, value: object) -> None:
    """The error of ``StateSet.set`` for a value that is not a bool."""
    raise InvalidValueError(
        f"state {state!r} of {states.metric!r} must be set to True or False, got {value!r}"
    )


class FileInfoCell(FileCell):
    """An info child: one entry for its labels; ``info()`` with new labels adds another.

    The label pairs change in this process at once (one attribute store); the
    file follows under the cell's lock and the file's, as soon as both are free.
    """

    __slots__ = ("_pairs", "_info_keys", "_key_of", "_written", "_file")
    _additive: ClassVar[bool] = False

    def __init__(
        self, file: Optional[ProcessFile], keys: InfoKeys, key_of: Callable[[Labels], bytes]
    ) -> None:
        self._info_keys = keys
        self._key_of = key_of
        self._pairs: Labels = ()
        self._written: Labels = ()
        self._file = file
        self._start(file, [key_of(())])

    def _values(self) -> list[float]:
        return [1.0]

    def _adopt(self, file: ProcessFile) -> None:
        self._file = file
        super()._adopt(file)

    def _reset(self, file: ProcessFile) -> None:
        self._file = file
        self._keys = (self._key_of(self._pairs),)
        self._written = self._pairs
        super()._reset(file)

    def info(self, info: Mapping[str, str]) -> None:
        """Replace the info labels (``{name: value}``); a refused mapping changes nothing."""
        self._pairs = self._info_keys.check(info)
        self._sync()

    def _sync(self) -> None:
        """Write the current labels' entry (1) and zero the previous one, now or soon.

        Queued as a pending update: whoever holds the cell's lock applies it;
        if the file is busy the cell is queued on it (``writer.py``) and
        written when it comes free.
        """
        if self._written != self._pairs:
            self._update(None)

    def _apply_locked(self, items: list[object]) -> None:
        file = self._file
        if self._written == self._pairs or not self._attached or file is None:
            return  # up to date, or the attach writes it
        flock = file._lock
        if not flock.acquire(False):
            file.defer(self)
            return
        try:
            self._write_pairs(file)
        finally:
            flock.release()

    def _move(self, file: ProcessFile) -> None:
        super()._move(file)
        if self._written != self._pairs:
            self._write_pairs(file)

    def _write_pairs(self, file: ProcessFile) -> None:
        """Move to the current labels' entry; both locks are held."""
        pairs = self._pairs
        key = self._key_of(pairs)
        mv, at = file._allocate_locked([(key, 1.0, 0.0)])
        self._mv[self._at[0]] = 0.0
        self._mv, self._at = mv, at
        mv[at[0]] = 1.0
        self._keys, self._written = (key,), pairs

    def get(self) -> dict[str, str]:
        """The info labels last set, as a new dict."""
        return dict(self._pairs)

    @staticmethod
    def _read_many(cells: list["FileInfoCell"]) -> list[Labels]:
        for cell in cells:
            if cell._written != cell._pairs:
                cell._sync()
        return [cell._pairs for cell in cells]
