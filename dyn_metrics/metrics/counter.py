"""Counters: ``Counter`` / ``IntCounter`` and their Vecs.

The cells behind each child, and why their updates need no lock, are in
``counter_cell.py``; on a free-threaded interpreter nothing guarantees that
``count.__next__`` is atomic, so :func:`counter_cell_class` picks the cells
of ``locked.py`` there.

Counters never go down: negative, NaN or infinite increments raise
:class:`InvalidValueError` and change nothing.
"""

from typing import Optional, Union, cast

from ..model import COUNTER, Exemplar, Number, Sample
from .cells import GIL_ENABLED
from .counter_cell import (
    CounterCell,
    CounterVecCell,
    ExemplarArg,
    IntCounterCell,
    IntCounterVecCell,
)
from .exemplars import RawExemplar, as_exemplar
from .family import CellClass, ScalarFamily, ScalarMetric
from .instrument import ExceptionCounter, ExceptionTypes
from .locked import LockedCounterCell, LockedIntCounterCell
from .shortcuts import CounterVecShortcuts

#: What a counter child is on this interpreter (see :func:`counter_cell_class`).
CounterChild = Union[CounterCell, LockedCounterCell]


def counter_cell_class(integer: bool, vec: bool = False) -> CellClass[CounterChild, Number]:
    """The counter cell class for this interpreter (see the module docstring).

    ``vec``: for the children of a vec, which hide their iterator methods.
    """
    if GIL_ENABLED:
        cls: type[CounterChild]
        if vec:
            cls = IntCounterVecCell if integer else CounterVecCell
        else:
            cls = IntCounterCell if integer else CounterCell
    else:
        cls = LockedIntCounterCell if integer else LockedCounterCell
    # All counter cells of a process are of the class chosen here, so each
    # class's _read_many only ever sees its own cells; the type system cannot
    # express a choice made once at import, hence the cast.
    return cast("CellClass[CounterChild, Number]", cls)


def counter_exemplar(cell: CounterChild) -> Optional[Exemplar]:
    """The latest exemplar of a counter cell, or None."""
    found: Optional[RawExemplar] = getattr(cell._value, "exemplar", None)  # a _Pending list's
    if found is None:
        found = getattr(cell, "_exemplar", None)
    return None if found is None else as_exemplar(found)


def with_counter_exemplar(samples: tuple[Sample, ...], cell: CounterChild) -> tuple[Sample, ...]:
    """A counter child's samples, its value sample carrying the cell's latest exemplar."""
    ex = counter_exemplar(cell)
    if ex is None:
        return samples
    return (samples[0]._replace(exemplar=ex),) + samples[1:]


class Counter(ScalarMetric[CounterChild]):
    """A float counter: ``inc(amount=1)``, ``inc_by(v)`` (finite, >= 0), ``get()``.

    Negative, NaN or infinite increments raise :class:`InvalidValueError`.
    Both take an optional ``exemplar``. Mirrors rust-prometheus' ``Counter``
    (``inc(amount)`` is prometheus_client's).
    """

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False)
    _methods = ("inc", "inc_by", "get", "count_exceptions")
    _with_exemplars = staticmethod(with_counter_exemplar)

    def inc(self, amount: float = 1, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (default 1); ``exemplar`` as for :meth:`inc_by`."""

    def inc_by(self, amount: float, exemplar: ExemplarArg = None) -> None:
        """Add ``amount`` (finite, >= 0).

        ``exemplar``: ``{label: value}`` kept as the latest exemplar, with
        ``amount`` as its value (OpenMetrics only; at most 128 characters).
        """

    def count_exceptions(self, exception: ExceptionTypes = Exception) -> ExceptionCounter:
        """Context manager and decorator counting ``exception`` raised through it."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)

    def get(self) -> Number:
        """The current value."""
        raise NotImplementedError  # shadowed by the child's method (see ScalarMetric)


class IntCounter(Counter):
    """An integer counter; ``inc_by`` takes non-negative ints (values are unbounded)."""

    _cell_class = counter_cell_class(integer=True)


class CounterVec(CounterVecShortcuts[CounterChild], ScalarFamily[CounterChild]):
    """Float counters by label values (rust-prometheus ``CounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False, vec=True)
    _with_exemplars = staticmethod(with_counter_exemplar)


class IntCounterVec(CounterVecShortcuts[CounterChild], ScalarFamily[CounterChild]):
    """Integer counters by label values (``IntCounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=True, vec=True)
    _with_exemplars = staticmethod(with_counter_exemplar)
