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

A function gauge (``set_function(fn)``) stores a one-item list ``[_Function]``
in the same way: ``set`` replaces it (removing the function) at no extra cost,
and deltas appended meanwhile fold into the :class:`_Function` and vanish, so
``inc``/``dec``/``add``/``sub`` change nothing while a function gives the value
(prometheus_client makes them no-ops too). The reads find the ``_Function``
where a value would be and call ``fn`` after releasing the stripes: a user
function may be slow, update metrics or scrape a registry itself. At a scrape
a failing ``fn`` (it raises, or returns what is not a real number, or not an
integer for an int gauge) logs one line and leaves its sample out: the cells'
``_read_many`` gives None for it, in a :class:`PartialValues` list (a list
subclass, so family reads test the class and never scan values that are all
there). :func:`function_errors_total` counts those failures.
"""

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar, Optional, cast

from ..errors import InvalidValueError
from ..model import GAUGE, Number
from .cells import (
    FOLD_AT,
    as_int,
    as_real,
    count_of,
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
from .instrument import InProgress
from .timer import Timer
from .vec import MetricVec

_log = logging.getLogger(__name__)

#: What ``set_function`` takes: called with no arguments, it gives the value.
GaugeFunction = Callable[[], object]

# Ticked once per failed function call at a scrape; read by its repr (changes nothing).
_function_errors = itertools.count()


def function_errors_total() -> int:
    """How many gauge function calls have failed at scrapes in this process so far.

    One per sample left out: the function raised, returned what is not a real
    number (an integer, for int gauges), or was called again from within itself
    (it scraped its own gauge). Read by the ``dyn_metrics_callback_errors_total``
    self metric (``kind="function"``).
    """
    return count_of(_function_errors)


class _Function:
    """What a function gauge's list holds in place of a value (see the module docstring).

    Adding anything to it gives it back, so folding absorbs the deltas
    appended while the function is set. ``saved`` is the cell's list from
    before ``set_function``: ``set_function(None)`` puts it back.
    """

    __slots__ = ("fn", "saved")

    def __init__(self, fn: GaugeFunction, saved: list[Number]) -> None:
        self.fn = fn
        self.saved = saved

    def __add__(self, other: object) -> "_Function":
        return self

    def __repr__(self) -> str:
        return f"<gauge function {_name_of(self.fn)}>"


def _name_of(fn: GaugeFunction) -> str:
    """A function's qualified name, never its repr (a bound ``cell.get`` would recurse)."""
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


class _Running(threading.local):
    """The gauge functions this thread is calling (to refuse a call nested in itself)."""

    def __init__(self) -> None:
        self.calls: list[_Function] = []


_RUNNING = _Running()

# True once any gauge of the process has had a function: until then a family
# read never looks for functions among its values.
_functions_used = False


def _call(head: _Function, convert: Callable[[object], Number]) -> Number:
    """The value ``head.fn()`` gives, through ``convert``; raises what either raises.

    A call nested in the same function on the same thread (``fn`` scraped a
    registry holding its own gauge) raises :class:`InvalidValueError` instead
    of recursing.
    """
    calls = _RUNNING.calls
    if head in calls:
        raise InvalidValueError(f"gauge function {head.fn!r} was called from within itself")
    calls.append(head)
    try:
        result = head.fn()
    finally:
        calls.pop()  # nested calls (signal handlers too) end first
    return convert(result)


class PartialValues(list):  # type: ignore[type-arg]  # list[Optional[Number]]
    """A family read's values where some are None: samples left out of this scrape."""

    __slots__ = ()


#: ``(id(function), exception type)`` already logged (dict.setdefault: atomic, no lock).
_logged: dict[tuple[int, str], object] = {}


def _call_functions(cells: list["GaugeCell"], values: list[Number]) -> list[Number]:
    """``values`` with each function's result in its place, None where it failed.

    Called once the read has released the stripes: only a read nested in
    another on the same thread (a signal handler during a scrape) runs the
    functions while the outer read holds them, and then nothing the functions
    call waits for a stripe (``cells.take``). A failure counts in
    :func:`function_errors_total` and logs one line the first time.
    """
    if _Function not in set(map(type, values)):
        return values
    out = PartialValues(values)
    omitted = False
    for i, head in enumerate(out):
        if head.__class__ is _Function:
            try:
                out[i] = _call(head, cells[i]._function_result)
            except Exception as exc:  # anything a user function raises
                next(_function_errors)
                # Logged once per (function, exception type), as callbacks are:
                # a scrape every few seconds must not flood the log.
                token = object()
                if _logged.setdefault((id(head.fn), type(exc).__name__), token) is token:
                    _log.error(
                        "gauge function %r failed, sample left out (logged once per function "
                        "and error type; counted in dyn_metrics_callback_errors_total): %r",
                        head.fn,
                        exc,
                    )
                out[i] = None
                omitted = True
    return out if omitted else list(out)


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
            if head.__class__ is _Function:
                self._value = head.saved
            return
        saved = head.saved if head.__class__ is _Function else current
        _functions_used = True
        # The list holds a _Function where reads expect a number; every read
        # looks for it before the value leaves the cell.
        self._value = cast("list[Number]", [_Function(fn, saved)])

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
        if head.__class__ is _Function:
            return _call(head, self._function_result)
        return value

    _read_locked = get

    @staticmethod
    def _read_many(cells: list["GaugeCell"]) -> list[Number]:
        """The values of many cells at once (what a family read uses).

        Gauge functions are called once the stripes are released; a failed
        one reads as None, in a :class:`PartialValues` list.
        """
        if not take_all():
            values = [peek_sum(cell._value) for cell in cells]
        else:
            try:
                values = [fold_sum(cell._value) for cell in cells]
            finally:
                drop_all()
        if _functions_used:
            return _call_functions(cells, values)
        return values

    def __repr__(self) -> str:
        head: object = self._value[0]
        if head.__class__ is _Function:
            # Never calls the function, nor takes its repr.
            return f"<{type(self).__name__} function={_name_of(head.fn)}>"
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


class GaugeVec(MetricVec[GaugeCell, Number], ScalarFamily[GaugeCell]):
    """Float gauges by label values (``GaugeVec``)."""

    _type = GAUGE
    _cell_class = GaugeCell


class IntGaugeVec(MetricVec[GaugeCell, Number], ScalarFamily[GaugeCell]):
    """Integer gauges by label values (``IntGaugeVec``)."""

    _type = GAUGE
    _cell_class = IntGaugeCell
