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

A function gauge (``set_function(fn)``) stores a one-item list ``[Function]``
in the same way: ``set`` replaces it (removing the function) at no extra cost,
and deltas appended meanwhile fold into the :class:`Function` and vanish, so
``inc``/``dec``/``add``/``sub`` change nothing while a function gives the value
(prometheus_client makes them no-ops too). The reads find the ``Function``
where a value would be and call ``fn`` after releasing the stripes: a user
function may be slow, update metrics or scrape a registry itself. At a scrape
a failing ``fn`` (it raises, or returns what is not a real number, or not an
integer for an int gauge) logs one line and leaves its sample out: the cells'
``_read_many`` gives None for it, in a :class:`PartialValues` list (a list
subclass, so family reads test the class and never scan values that are all
there). ``gauge_functions.py`` holds that machinery.

``multiprocess_mode`` (every gauge class) says how multiprocess mode
aggregates the gauge over processes, as prometheus_client's modes do; it is
checked here, and kept unused when multiprocess mode is off.
"""

import threading
import time
from collections.abc import Iterable
from typing import ClassVar, Optional, cast

from ..errors import InvalidValueError
from ..model import GAUGE, Number
from .cells import (
    FEW_CELLS,
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
from .desc import LabelsArg
from .family import ScalarFamily, ScalarMetric
from .gauge_functions import (
    Function,
    GaugeFunction,
    call_function,
    call_functions,
    name_of,
)
from .instrument import InProgress
from .shortcuts import GaugeVecShortcuts
from .timer import Timer

#: The gauge modes of multiprocess mode (prometheus_client's ``multiprocess_mode``).
MULTIPROCESS_MODES = (
    "all",
    "liveall",
    "sum",
    "livesum",
    "max",
    "livemax",
    "min",
    "livemin",
    "mostrecent",
    "livemostrecent",
)


def check_multiprocess_mode(mode: object) -> str:
    """``mode`` if it is one of :data:`MULTIPROCESS_MODES`, else :class:`InvalidValueError`."""
    if mode.__class__ is str and mode in MULTIPROCESS_MODES:
        return mode
    raise InvalidValueError(
        f"multiprocess_mode must be one of {', '.join(MULTIPROCESS_MODES)}, got {mode!r}"
    )


# True once any gauge of the process has had a function: until then a family
# read never looks for functions among its values.
_functions_used = False


class GaugeCell:
    """A float gauge whose updates are single atomic C calls (see the module docstring)."""

    __slots__ = ("_value",)
    _kind: ClassVar[type] = float  # the type set() and add() take without converting

    def __init__(self, lock: Optional[threading.Lock] = None) -> None:
        self._value: list[Number] = [0.0]

    @staticmethod
    def _number(value: object) -> Number:
        # Only off the fast path (a value that is not an exact float).
        return as_real(value, "gauge value")

    @staticmethod
    def _function_result(value: object) -> Number:
        return as_real(value, "gauge function result")

    @staticmethod
    def _seconds(seconds: float) -> Number:
        """What ``set_to_current_time`` and ``time()`` store (int gauges: whole seconds)."""
        return seconds

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

    def inc(self, amount: Number = 1.0) -> None:
        """Add ``amount`` (default 1), as prometheus_client's ``inc``."""
        self.add(amount)

    def dec(self, amount: Number = 1.0) -> None:
        """Subtract ``amount`` (default 1), as prometheus_client's ``dec``."""
        try:
            self.add(-amount)
        except (TypeError, InvalidValueError):
            # Not a number, or refused (nothing changed): again, so that the
            # error names the value given, not its negation.
            self.add(-self._number(amount))

    # Dynamo's older Python binding spells add/sub this way.
    inc_by = add
    dec_by = sub

    def set_function(self, fn: Optional[GaugeFunction]) -> None:
        """Take the value from ``fn()`` at every read, or stop with ``fn=None``.

        While a function is set, ``inc``/``dec``/``add``/``sub`` (and
        ``track_inprogress``) change nothing; ``set(v)``, ``set_to_current_time()``
        and ``time()`` replace the function with their value; ``set_function(None)``
        brings back the value the gauge had when the function was set (the
        first one, if functions replaced one another).
        ``fn`` is called at each scrape with no lock held, and may be called from
        several threads at once. A scrape leaves the sample out when ``fn``
        raises or returns what is not a real number (an integer, for an int
        gauge: ``operator.index``), logging one line; :meth:`get` raises instead.
        Not callable -> :class:`InvalidValueError`, and nothing changes.
        """
        global _functions_used
        if fn is not None and not callable(fn):
            raise InvalidValueError(f"gauge function must be callable or None, got {fn!r}")
        current = self._value
        head: object = current[0]
        if fn is None:
            if head.__class__ is Function:
                self._value = head.saved
            return
        saved = head.saved if head.__class__ is Function else current
        _functions_used = True
        # The list holds a Function where reads expect a number; every read
        # looks for it before the value leaves the cell.
        self._value = cast("list[Number]", [Function(fn, saved)])

    def set_to_current_time(self) -> None:
        """Set the value to the current Unix time in seconds (int gauges: whole seconds)."""
        self.set(self._seconds(time.time()))

    def track_inprogress(self) -> InProgress:
        """Context manager and decorator: +1 on entry, -1 on exit (raising too)."""
        return InProgress(self.inc, self.dec)

    def time(self) -> Timer:
        """Context manager and decorator: set the value to the seconds the block or call took.

        Int gauges store whole seconds (rounded down), as ``set_to_current_time``.
        """
        seconds = self._seconds
        set_value = self.set
        return Timer(lambda elapsed: set_value(seconds(elapsed)))

    def get(self) -> Number:
        """The current value; with a function set, what the function gives.

        A failing function raises here: its own exception, or
        :class:`InvalidValueError` for a result that is not a number.
        """
        lock = stripe(self)
        if not take(lock):
            value = peek_sum(self._value)
        else:
            try:
                value = fold_sum(self._value)
            finally:
                drop(lock)
        head: object = value
        if head.__class__ is Function:
            return call_function(head, self._function_result)
        return value

    _read_locked = get

    @staticmethod
    def _read_many(cells: list["GaugeCell"]) -> list[Number]:
        """The values of many cells at once (what a family read uses).

        Gauge functions are called once the stripes are released; a failed
        one reads as None, in a :class:`PartialValues` list.
        """
        # A few cells are read from atomic copies, without a lock: their lists
        # are short (updates fold every 256), and a lock would cost more.
        if len(cells) == 1:  # a label-less gauge: the common case, kept short
            items = cells[0]._value
            value: object = items[0] if len(items) == 1 else peek_sum(items)
            if value.__class__ is Function:
                return call_functions(cells, [cast(Number, value)])
            return [cast(Number, value)]
        if len(cells) < FEW_CELLS or not take_all(cells):
            # A list of one item is its value (a list held here only grows at its end).
            lists = [cell._value for cell in cells]
            values = [v[0] if len(v) == 1 else peek_sum(v) for v in lists]
        else:
            try:
                values = [fold_sum(cell._value) for cell in cells]
            finally:
                drop_all()
        if _functions_used:
            return call_functions(cells, values)
        return values

    def __repr__(self) -> str:
        head: object = self._value[0]
        if head.__class__ is Function:
            # Never calls the function, nor takes its repr.
            return f"<{type(self).__name__} function={name_of(head.fn)}>"
        return f"<{type(self).__name__} value={self.get()!r}>"


class IntGaugeCell(GaugeCell):
    """An integer gauge (unbounded Python int; Dynamo's is an i64)."""

    __slots__ = ()
    _kind = int

    def __init__(self, lock: Optional[threading.Lock] = None) -> None:
        self._value = [0]

    @staticmethod
    def _number(value: object) -> int:
        return as_int(value, "int gauge value")

    # The defaults are ints: an int gauge's fast path takes exact ints.
    def inc(self, amount: Number = 1) -> None:
        """Add ``amount`` (default 1)."""
        self.add(amount)

    def dec(self, amount: Number = 1) -> None:
        """Subtract ``amount`` (default 1)."""
        try:
            self.add(-amount)
        except (TypeError, InvalidValueError):
            self.add(-self._number(amount))  # raises naming the value given (see above)

    @staticmethod
    def _function_result(value: object) -> int:
        return as_int(value, "int gauge function result")

    @staticmethod
    def _seconds(seconds: float) -> int:
        return int(seconds)


class Gauge(ScalarMetric[GaugeCell]):
    """A float gauge: ``set``, ``inc``, ``dec``, ``add``, ``sub``, ``get``, and the helpers
    ``set_function``, ``set_to_current_time``, ``track_inprogress``, ``time``."""

    _type = GAUGE
    _cell_class = GaugeCell
    _methods = (
        "set",
        "inc",
        "dec",
        "add",
        "sub",
        "inc_by",
        "dec_by",
        "get",
        "set_function",
        "set_to_current_time",
        "track_inprogress",
        "time",
    )
    #: How multiprocess mode aggregates this gauge over processes.
    _multiprocess_mode = "all"

    def __init__(
        self,
        name: str,
        help: str,
        const_labels: LabelsArg = None,
        *,
        unit: str = "",
        multiprocess_mode: str = "all",
    ) -> None:
        # Set first: the one child is made (and asks a cell backend) in the base init.
        self._multiprocess_mode = check_multiprocess_mode(multiprocess_mode)
        super().__init__(name, help, const_labels, unit=unit)

    def set(self, value: float) -> None:
        """Set the value."""

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (default 1)."""

    def dec(self, amount: float = 1) -> None:
        """Subtract ``amount`` (default 1)."""

    def add(self, amount: float) -> None:
        """Add ``amount``."""

    def sub(self, amount: float) -> None:
        """Subtract ``amount``."""

    # Dynamo's older Python binding spells add/sub this way.
    inc_by = add
    dec_by = sub

    def get(self) -> Number:
        """The current value (with a function set, what it gives)."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)

    def set_function(self, fn: Optional[GaugeFunction]) -> None:
        """Take the value from ``fn()`` at each scrape; ``None`` removes the function.

        See :meth:`GaugeCell.set_function` for what the other methods do meanwhile.
        """

    def set_to_current_time(self) -> None:
        """Set the value to the current Unix time (int gauges: whole seconds)."""

    def track_inprogress(self) -> InProgress:
        """Context manager and decorator: +1 on entry, -1 on exit."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)

    def time(self) -> Timer:
        """Context manager and decorator: set the value to the elapsed seconds."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)


class IntGauge(Gauge):
    """An integer gauge (values are unbounded Python ints)."""

    _cell_class = IntGaugeCell


class _GaugeVecBase(GaugeVecShortcuts[GaugeCell], ScalarFamily[GaugeCell]):
    """What both gauge vecs share: the ``multiprocess_mode`` keyword."""

    _type = GAUGE
    _multiprocess_mode = "all"

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: LabelsArg = None,
        *,
        buckets: Optional[Iterable[float]] = None,
        max_children: Optional[int] = None,
        unit: str = "",
        multiprocess_mode: str = "all",
    ) -> None:
        self._multiprocess_mode = check_multiprocess_mode(multiprocess_mode)
        super().__init__(
            name,
            help,
            label_names,
            const_labels,
            buckets=buckets,
            max_children=max_children,
            unit=unit,
        )


class GaugeVec(_GaugeVecBase):
    """Float gauges by label values (``GaugeVec``); ``multiprocess_mode`` as for Gauge."""

    _cell_class = GaugeCell


class IntGaugeVec(_GaugeVecBase):
    """Integer gauges by label values (``IntGaugeVec``); ``multiprocess_mode`` as for Gauge."""

    _cell_class = IntGaugeCell
