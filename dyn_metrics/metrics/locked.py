"""The counter cells of free-threaded interpreters: every update takes the cell's own lock.

With the GIL, a counter's ``inc()`` is one atomic C call (``counter_cell.py``); a
free-threaded build (``sys._is_gil_enabled()`` false) gives ``itertools.count``
no such guarantee, so :func:`~dyn_metrics.metrics.counter.counter_cell_class`
picks these cells there. Each has its own lock, so threads updating different
children never contend, and a read is one attribute load (atomic). An update
nested in a signal handler while its own thread updates the same cell cannot
happen on these builds: signal handlers run between bytecodes of the main
thread, never inside the ``with`` block below, which calls no Python code.
"""

import threading
from collections.abc import Mapping
from typing import Optional

from ..model import Number
from .cells import float_increment, int_increment, read_one_by_one
from .exemplars import RawExemplar, make_exemplar
from .instrument import ExceptionCounter, ExceptionTypes


class LockedCounterCell:
    """The float counter for free-threaded interpreters."""

    __slots__ = ("_value", "_lock", "_exemplar")
    _value: Number
    _exemplar: Optional[RawExemplar]
    _zero: Number = 0.0
    _increment = staticmethod(float_increment)

    def __init__(self, lock: threading.Lock) -> None:
        self._value = self._zero
        self._lock = threading.Lock()
        self._exemplar = None

    def inc(self, amount: Number = 1, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Add ``amount`` (default 1); ``exemplar`` as for :meth:`inc_by`."""
        self.inc_by(amount, exemplar)

    def inc_by(self, amount: Number, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Add ``amount`` (finite and >= 0; an int >= 0 for int counters).

        ``exemplar`` (``{label: value}``) becomes the latest exemplar, with
        the amount as its value.
        """
        number = self._increment(amount)
        ex = None if exemplar is None else make_exemplar(exemplar, number)
        with self._lock:
            self._value += number
            if ex is not None:
                self._exemplar = ex

    def count_exceptions(self, exception: ExceptionTypes = Exception) -> ExceptionCounter:
        """Context manager and decorator: +1 per ``exception`` raised through it (re-raised)."""
        return ExceptionCounter(self.inc, exception)

    def get(self) -> Number:
        """The current value (a single attribute read: atomic)."""
        return self._value

    _read_locked = get
    _read_many = staticmethod(read_one_by_one)


class LockedIntCounterCell(LockedCounterCell):
    """The free-threaded integer counter."""

    __slots__ = ()
    _zero = 0
    _increment = staticmethod(int_increment)
