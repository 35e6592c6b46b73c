"""Function gauges: what ``set_function`` stores, and the calls a scrape makes.

A function gauge's cell list holds a :class:`Function` where a value would be
(``gauge.py`` explains the cell). A family read finds it and, once the read
has released the stripes, calls the function (:func:`call_functions`): a user
function may be slow, update metrics or scrape a registry itself. A call that
fails (it raises, returns what is not a real number, or is nested in itself)
leaves its sample out of that scrape: the read gives None for it, in a
:class:`PartialValues` list; :func:`function_errors_total` counts the
failures, and each (function, error type) is logged once per process.
"""

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from ..errors import InvalidValueError, LazyLogger
from ..model import Number
from .cells import count_of

_log = LazyLogger(__name__)


class Converting(Protocol):
    """A gauge cell: it turns what its function returned into its kind of number."""

    def _function_result(self, value: object) -> Number: ...


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


class Function:
    """What a function gauge's list holds in place of a value (see the module docstring).

    Adding anything to it gives it back, so folding absorbs the deltas
    appended while the function is set. ``saved`` is the cell's list from
    before ``set_function``: ``set_function(None)`` puts it back.
    """

    __slots__ = ("fn", "saved")

    def __init__(self, fn: GaugeFunction, saved: list[Number]) -> None:
        self.fn = fn
        self.saved = saved

    def __add__(self, other: object) -> "Function":
        return self

    def __repr__(self) -> str:
        return f"<gauge function {name_of(self.fn)}>"


def name_of(fn: GaugeFunction) -> str:
    """A function's qualified name, never its repr (a bound ``cell.get`` would recurse)."""
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


class _Running(threading.local):
    """The gauge functions this thread is calling (to refuse a call nested in itself)."""

    def __init__(self) -> None:
        self.calls: list[Function] = []


_RUNNING = _Running()


def call_function(head: Function, convert: Callable[[object], Number]) -> Number:
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


def call_functions(cells: Sequence[Converting], values: list[Number]) -> list[Number]:
    """``values`` with each function's result in its place, None where it failed.

    Called once the read has released the stripes: only a read nested in
    another on the same thread (a signal handler during a scrape) runs the
    functions while the outer read holds them, and then nothing the functions
    call waits for a stripe (``cells.take``). A failure counts in
    :func:`function_errors_total` and logs one line the first time.
    """
    if Function not in set(map(type, values)):
        return values
    out = PartialValues(values)
    omitted = False
    for i, head in enumerate(out):
        if head.__class__ is Function:
            try:
                out[i] = call_function(head, cells[i]._function_result)
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
