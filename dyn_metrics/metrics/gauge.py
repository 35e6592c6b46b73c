"""Gauges: the cells, ``Gauge`` / ``IntGauge`` and their Vecs.

No gauge update takes a lock. A :class:`GaugeCell` holds a list ``[value,
pending deltas...]``: ``add``/``inc``/``dec``/``sub`` append a delta (one
atomic C-level ``list.append``) and ``set`` stores a new one-item list (one
atomic attribute store). No update is lost: a delta appended to a list that
``set`` has just replaced belongs to an ``add`` that overlapped that ``set``,
so it counts as having come first. Reads, and every 256 deltas, fold the list
left to right, as Rust adds, under the cell's stripe (``cells.stripe``); an
update folds only if the stripe is free, and a read that cannot take it (its
own thread holds it: a read nested in a signal handler during a scrape) sums
an atomic copy of the list instead (``cells.peek_sum``).
List operations are atomic on free-threaded builds too (the list locks
itself there), so gauges need no fallback.
"""

import threading
from typing import ClassVar, Optional

from ..model import GAUGE, Number
from .cells import (
    FOLD_AT,
    as_int,
    as_real,
    drop,
    drop_all,
    fold_free,
    fold_sum,
    peek_sum,
    stripe,
    take,
    take_all,
)
from .family import ScalarFamily, ScalarMetric
from .vec import MetricVec


class GaugeCell:
    """A float gauge whose updates are single atomic C calls (see the module docstring)."""

    __slots__ = ("_value",)
    _kind: ClassVar[type] = float  # the type set() and add() take without converting
    _one: ClassVar[Number] = 1.0

    def __init__(self, lock: Optional[threading.Lock] = None) -> None:
        self._value: list[Number] = [0.0]

    @staticmethod
    def _number(value: object) -> Number:
        # Only off the fast path (a value that is not an exact float).
        return as_real(value, "gauge value")

    def set(self, value: Number) -> None:
        """Set the value."""
        if value.__class__ is not self._kind:
            value = self._number(value)
        self._value = [value]

    def add(self, amount: Number) -> None:
        """Add ``amount`` (may be negative)."""
        if amount.__class__ is not self._kind:
            amount = self._number(amount)
        pending = self._value
        pending.append(amount)
        if len(pending) > FOLD_AT:
            fold_free(self, pending)

    def sub(self, amount: Number) -> None:
        """Subtract ``amount``."""
        self.add(-self._number(amount))

    def inc(self) -> None:
        """Add 1."""
        self.add(self._one)

    def dec(self) -> None:
        """Subtract 1."""
        self.add(-self._one)

    # Dynamo's older Python binding spells add/sub this way.
    inc_by = add
    dec_by = sub

    def get(self) -> Number:
        """The current value."""
        lock = stripe(self)
        if not take(lock):
            return peek_sum(self._value)
        try:
            return fold_sum(self._value)
        finally:
            drop(lock)

    _read_locked = get

    @staticmethod
    def _read_many(cells: list["GaugeCell"]) -> list[Number]:
        """The values of many cells at once (what a family read uses)."""
        if not take_all():
            return [peek_sum(cell._value) for cell in cells]
        try:
            return [fold_sum(cell._value) for cell in cells]
        finally:
            drop_all()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self.get()!r}>"


class IntGaugeCell(GaugeCell):
    """An integer gauge (unbounded Python int; Dynamo's is an i64)."""

    __slots__ = ()
    _kind = int
    _one = 1

    def __init__(self, lock: Optional[threading.Lock] = None) -> None:
        self._value = [0]

    @staticmethod
    def _number(value: object) -> int:
        return as_int(value, "int gauge value")


class Gauge(ScalarMetric[GaugeCell]):
    """A float gauge: ``set``, ``inc``, ``dec``, ``add``, ``sub``, ``get``."""

    _type = GAUGE
    _cell_class = GaugeCell
    _methods = ("set", "inc", "dec", "add", "sub", "inc_by", "dec_by", "get")

    def set(self, value: float) -> None:
        """Set the value."""

    def inc(self) -> None:
        """Add 1."""

    def dec(self) -> None:
        """Subtract 1."""

    def add(self, amount: float) -> None:
        """Add ``amount``."""

    def sub(self, amount: float) -> None:
        """Subtract ``amount``."""

    # Dynamo's older Python binding spells add/sub this way.
    inc_by = add
    dec_by = sub

    def get(self) -> Number:
        """The current value."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)


class IntGauge(Gauge):
    """An integer gauge (values are unbounded Python ints)."""

    _cell_class = IntGaugeCell


class GaugeVec(MetricVec[GaugeCell, Number], ScalarFamily[GaugeCell]):
    """Float gauges by label values (``GaugeVec``)."""

    _type = GAUGE
    _cell_class = GaugeCell


class IntGaugeVec(MetricVec[GaugeCell, Number], ScalarFamily[GaugeCell]):
    """Integer gauges by label values (``IntGaugeVec``)."""

    _type = GAUGE
    _cell_class = IntGaugeCell
