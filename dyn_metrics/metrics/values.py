"""Value cells: the numbers behind every metric child.

Every cell is built with its family's lock (``lock`` argument), which
guards the rare paths of histograms (folding buffered observations). The
common paths avoid a lock round trip (about 170 ns in CPython, more than the
whole budget of an increment):

* :class:`CounterCell` *is* an :class:`itertools.count`: ``inc()`` is one call
  of the C-level ``count.__next__``, which runs entirely while holding the GIL
  and so never loses an update. A read also calls ``next`` (the only way to
  observe a count without copying it), so each cell remembers how many reads
  it has taken (``_reads``) and subtracts them. ``inc_by(v)`` appends ``v``
  to a list (one atomic C call too) that reads fold into the sum. Reads and
  folds take one of 64 locks shared by all counter cells (picked by the
  cell's identity): a lock of its own would add 40% to a child's memory for
  paths that rarely contend.
* :class:`HistogramCell` *is* a list of pending observations: ``observe(v)``
  is one C-level ``list.append``, atomic under the GIL and on free-threaded
  builds alike (list operations lock the list there). Pending values are
  folded into the bucket counts, sum and count under the family lock, when a
  scrape reads the cell or when 256 are pending, so buckets, sum and count
  always change together and every snapshot has count == the ``+Inf`` bucket.

On a free-threaded interpreter (``sys._is_gil_enabled()`` is false) nothing
guarantees that ``count.__next__`` is atomic, so :func:`counter_cell_class`
returns :class:`LockedCounterCell`, which takes its own lock on every update.

Gauges take their own lock for every update: ``set`` must not be lost
between the read and the write of a concurrent ``add``.
"""

import functools
import itertools
import math
import operator
import sys
import threading
from bisect import bisect_right
from time import perf_counter as _perf_counter

from ..errors import InvalidValueError

GIL_ENABLED = getattr(sys, "_is_gil_enabled", lambda: True)()

_STRIPES = tuple(threading.Lock() for _ in range(64))


def _stripe(cell):
    """The shared lock of a counter cell (objects are 16-byte aligned)."""
    return _STRIPES[(id(cell) >> 4) & 63]


class _AllStripes:
    """Holds every stripe, taken in one fixed order (so two holders cannot deadlock).

    A family read takes them once for all its cells instead of one lock per
    cell: four times faster per series. Nothing that holds a stripe waits
    for another lock, so this cannot deadlock with ``inc_by`` or ``get``.
    """

    __slots__ = ()

    def __enter__(self):
        taken = 0
        try:
            for lock in _STRIPES:
                lock.acquire()
                taken += 1
        except BaseException:
            # An interrupt half way must not leave stripes held for good.
            for lock in reversed(_STRIPES[:taken]):
                lock.release()
            raise

    def __exit__(self, *exc):
        for lock in reversed(_STRIPES):
            lock.release()


_ALL_STRIPES = _AllStripes()


def _read_one_by_one(cells):
    """The values of ``cells``: each cell class's ``read_many``, unless it has a faster one."""
    return [cell._read_locked() for cell in cells]


_INF = math.inf
# Ints below 2**53 add to a float sum exactly, so they skip the conversion.
_EXACT_INT = 2**53
# Pending histogram observations folded at once; bounds the memory a hot,
# never-scraped histogram holds (a few KiB) and keeps each fold short.
_FOLD_AT = 256


def _float_increment(amount):
    """``amount`` as an int or float if it is a finite number >= 0.

    Anything else raises :class:`InvalidValueError`. Other number types
    (Decimal, Fraction, numpy scalars) become floats, so sums stay floats.
    """
    try:
        if 0.0 <= amount < _INF:
            amount = amount if amount.__class__ is float else float(amount)
            if amount < _INF:  # an int beyond a float's range rounds to inf
                return amount
    except (TypeError, ValueError, OverflowError):
        pass
    raise InvalidValueError(f"counter increment must be a finite number >= 0, got {amount!r}")


def _int_increment(amount):
    """``amount`` if it is an integer >= 0, else :class:`InvalidValueError`."""
    amount = _as_int(amount, "int counter increment")
    if amount < 0:
        raise InvalidValueError(f"int counter increment must be an integer >= 0, got {amount!r}")
    return amount


def _as_int(value, what):
    """``value`` as an exact int; floats are refused rather than truncated."""
    if value.__class__ is int:
        return value
    if isinstance(value, float) or not hasattr(value, "__index__"):
        raise InvalidValueError(f"{what} must be an integer, got {value!r}")
    return value.__index__()


class CounterCell(itertools.count):
    """A float counter whose updates are single atomic C calls (GIL builds).

    ``inc()`` is ``count.__next__``. ``_value`` holds the sum of ``inc_by``
    amounts: a number until the first ``inc_by``, then a list ``[sum,
    pending...]`` to which ``inc_by`` appends (``list.append`` is atomic), so
    neither path takes a lock. Pending amounts are folded into ``list[0]``,
    left to right as Rust adds them, under the cell's stripe: at every read
    and whenever 256 are pending.
    """

    __slots__ = ("_value", "_reads")
    _increment = staticmethod(_float_increment)

    def __new__(cls, lock):
        # itertools.count.__new__ takes the start; the counter starts at 0.
        return super().__new__(cls)

    def __init__(self, lock):
        self._value = 0.0
        self._reads = 0

    def inc(self):
        """Add 1. Lock-free and thread-safe."""
        if self._value.__class__ is list:
            # Amounts are buffered: add 1 in turn with them, so the float sum
            # rounds exactly as Rust's sequence of additions does.
            self.inc_by(1.0)
        else:
            next(self)

    def inc_by(self, amount):
        """Add ``amount`` (finite and >= 0); :class:`InvalidValueError` otherwise.

        Lock-free and thread-safe (an int counter takes ints >= 0).
        """
        cls = amount.__class__
        if cls is float:
            if not 0.0 <= amount < _INF:
                amount = self._increment(amount)  # raises
        elif cls is not int or not 0 <= amount < _EXACT_INT:
            amount = self._increment(amount)  # raises, or converts
        pending = self._value
        if pending.__class__ is not list:
            pending = self._pending_list()
        pending.append(amount)
        if len(pending) > _FOLD_AT:
            with _STRIPES[(id(self) >> 4) & 63]:
                _fold_sum(pending)

    def _pending_list(self):
        with _STRIPES[(id(self) >> 4) & 63]:
            # Re-checked under the stripe: two first calls make one list.
            if self._value.__class__ is not list:
                # The increments counted so far go first in the sum, in the
                # order Rust would have added them; the count then only
                # tracks reads (see inc()).
                ticks = next(self)
                self._value = [self._value + (ticks - self._reads)]
                self._reads = ticks + 1
            return self._value

    def get(self):
        """The current value."""
        return self._read_locked()

    def _read_locked(self):
        """The value (a family read calls it with the family lock held)."""
        with _STRIPES[(id(self) >> 4) & 63]:
            ticks = next(self) - self._reads
            self._reads += 1
            return ticks + _sum_of(self._value)

    @staticmethod
    def read_many(cells):
        """The values of many cells at once (what a family read uses)."""
        with _ALL_STRIPES:
            values = [next(cell) - cell._reads + _sum_of(cell._value) for cell in cells]
            for cell in cells:
                cell._reads += 1
        return values

    def __repr__(self):
        return f"<{type(self).__name__} value={self.get()!r}>"

    def __reduce__(self):
        raise TypeError(f"cannot pickle {type(self).__name__}")


def _sum_of(value):
    """A counter cell's ``inc_by`` total; its stripe is held."""
    return value if value.__class__ is not list else _fold_sum(value)


def _fold_sum(pending):
    """Fold ``[sum, amounts...]`` into ``[sum]`` and return the sum; stripe held."""
    n = len(pending)
    total = pending[0]
    if n > 1:
        # Appenders only add at the end, so the first n items are exactly
        # the ones summed here, whatever was appended meanwhile.
        total = functools.reduce(operator.add, pending[1:n], total)
        pending[0:n] = [total]
    return total


class IntCounterCell(CounterCell):
    """An integer counter (unbounded Python int; Dynamo's is a u64)."""

    __slots__ = ()

    def __init__(self, lock):
        self._value = 0
        self._reads = 0

    _increment = staticmethod(_int_increment)

    def inc(self):
        """Add 1. Lock-free (integer sums are exact in any order)."""
        next(self)

    def inc_by(self, amount):
        """Add an integer >= 0; :class:`InvalidValueError` otherwise. Lock-free."""
        CounterCell.inc_by(self, _int_increment(amount))


class LockedCounterCell:
    """The counter for free-threaded interpreters: every update takes a lock."""

    __slots__ = ("_value", "_lock")
    _zero = 0.0
    _increment = staticmethod(_float_increment)

    def __init__(self, lock):
        # Its own lock, so threads updating different children never contend.
        self._value = self._zero
        self._lock = threading.Lock()

    def inc(self):
        """Add 1."""
        with self._lock:
            self._value += 1

    def inc_by(self, amount):
        """Add ``amount`` (finite and >= 0; an int >= 0 for int counters)."""
        amount = self._increment(amount)
        with self._lock:
            self._value += amount

    def get(self):
        """The current value (a single attribute read: atomic)."""
        return self._value

    _read_locked = get
    read_many = staticmethod(_read_one_by_one)


class LockedIntCounterCell(LockedCounterCell):
    """The free-threaded integer counter."""

    __slots__ = ()
    _zero = 0
    _increment = staticmethod(_int_increment)


def counter_cell_class(integer):
    """The counter cell class for this interpreter (see the module docstring)."""
    if GIL_ENABLED:
        return IntCounterCell if integer else CounterCell
    return LockedIntCounterCell if integer else LockedCounterCell


class GaugeCell:
    """A float gauge whose updates are single atomic C calls.

    ``_value`` is a list ``[value, pending deltas...]``: ``add``/``inc``/...
    append a delta (``list.append`` is atomic), ``set`` stores a new list
    (one atomic attribute store). No update takes a lock, and none is lost:
    a delta appended to a list that ``set`` has just replaced belongs to an
    ``add`` that overlapped that ``set``, so it counts as having come first.
    Reads and every 256 deltas fold the list left to right, as Rust adds,
    under the cell's stripe. List operations are atomic on free-threaded
    builds too, so gauges need no fallback.
    """

    __slots__ = ("_value",)
    _kind = float  # the type set() and add() take without converting
    _one = 1.0

    def __init__(self, lock=None):
        self._value = [0.0]

    @staticmethod
    def _number(value):
        # ``value + 0.0`` accepts every real number (int, Fraction, numpy
        # scalars) and refuses strings and None with a TypeError.
        try:
            return value + 0.0
        except (TypeError, OverflowError):
            raise InvalidValueError(f"gauge value must be a number, got {value!r}") from None

    def set(self, value):
        """Set the value."""
        if value.__class__ is not self._kind:
            value = self._number(value)
        self._value = [value]

    def add(self, amount):
        """Add ``amount`` (may be negative)."""
        if amount.__class__ is not self._kind:
            amount = self._number(amount)
        pending = self._value
        pending.append(amount)
        if len(pending) > _FOLD_AT:
            with _STRIPES[(id(self) >> 4) & 63]:
                _fold_sum(pending)

    def sub(self, amount):
        """Subtract ``amount``."""
        self.add(-self._number(amount))

    def inc(self):
        """Add 1."""
        self.add(self._one)

    def dec(self):
        """Subtract 1."""
        self.add(-self._one)

    # Dynamo's older Python binding spells add/sub this way.
    inc_by = add
    dec_by = sub

    def get(self):
        """The current value."""
        with _STRIPES[(id(self) >> 4) & 63]:
            return _fold_sum(self._value)

    _read_locked = get

    @staticmethod
    def read_many(cells):
        """The values of many cells at once (what a family read uses)."""
        with _ALL_STRIPES:
            return [_fold_sum(cell._value) for cell in cells]

    def __repr__(self):
        return f"<{type(self).__name__} value={self.get()!r}>"


class IntGaugeCell(GaugeCell):
    """An integer gauge (unbounded Python int; Dynamo's is an i64)."""

    __slots__ = ()
    _kind = int
    _one = 1

    def __init__(self, lock=None):
        self._value = [0]

    @staticmethod
    def _number(value):
        return _as_int(value, "int gauge value")


def _observation(value):
    """``value`` as a float, or :class:`InvalidValueError` if it is not a real number."""
    if not isinstance(value, (str, bytes)):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            pass
    raise InvalidValueError(f"histogram observation must be a real number, got {value!r}")


class HistogramCell(list):
    """A histogram child: a list of pending observations plus folded totals.

    ``_counts[i]`` counts observations in ``(bounds[i-1], bounds[i]]``, the
    last slot those above every bound (and NaN, as rust-prometheus does).
    """

    __slots__ = ("_counts", "_sum", "_bounds", "_lock")

    def __init__(self, lock, bounds):
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = lock

    def observe(self, value):
        """Record one observation (any real number; NaN and infinities too).

        Lock-free on the common path. Anything that is not a real number
        raises :class:`InvalidValueError` and records nothing.
        """
        cls = value.__class__
        if cls is not float and (cls is not int or not -_EXACT_INT < value < _EXACT_INT):
            value = _observation(value)
        self.append(value)
        if len(self) >= _FOLD_AT:
            with self._lock:
                self._fold_locked()

    def _fold_locked(self):
        n = len(self)
        if not n:
            return
        # Observers only append, so the first n items are exactly the ones
        # read here, whatever was appended meanwhile.
        pending = self[:n]
        del self[:n]
        # Left to right, so the sum rounds exactly as Rust's `sum += v`.
        total = functools.reduce(operator.add, pending, self._sum)
        # NaN belongs in +Inf only (as in rust-prometheus) and would confuse
        # the sort; `total` is NaN whenever one was observed.
        numbers = [v for v in pending if v == v] if total != total else pending
        numbers.sort()
        # One bisection per bound over the sorted batch instead of one per
        # observation: bisect_right counts the values <= bound.
        counts = self._counts
        below = 0
        for i, bound in enumerate(self._bounds):
            upto = bisect_right(numbers, bound)
            counts[i] += upto - below
            below = upto
        counts[-1] += n - below
        self._sum = total

    def snapshot_locked(self):
        """``(cumulative bucket counts incl. +Inf, sum, count)``; family lock held."""
        self._fold_locked()
        cumulative = list(itertools.accumulate(self._counts))
        return cumulative, self._sum, cumulative[-1]

    # What a family read takes from every kind of cell.
    _read_locked = snapshot_locked
    read_many = staticmethod(_read_one_by_one)

    def get_sample_count(self):
        """Number of observations so far."""
        with self._lock:
            return self.snapshot_locked()[2]

    def get_sample_sum(self):
        """Sum of observations so far."""
        with self._lock:
            self._fold_locked()
            return self._sum

    def time(self):
        """Observe the seconds spent in a ``with`` block or decorated function."""
        return _Timer(self.observe)

    def start_timer(self):
        """Start a timer; its ``observe_duration()`` records the elapsed seconds."""
        return _Timer(self.observe).start()

    def __repr__(self):
        return f"<{type(self).__name__} count={self.get_sample_count()}>"

    # A histogram is not a value to compare or hash like the list it extends.
    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    __hash__ = object.__hash__


class _Timer:
    """Context manager, decorator and manual timer feeding one observe function."""

    __slots__ = ("_observe", "_start")

    def __init__(self, observe):
        self._observe = observe
        self._start = None

    def start(self):
        self._start = _perf_counter()
        return self

    def observe_duration(self):
        """Record the seconds since ``start()``; returns them."""
        elapsed = max(_perf_counter() - self._start, 0.0)
        self._observe(elapsed)
        return elapsed

    stop_and_record = observe_duration

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.observe_duration()
        return False

    def __call__(self, func):
        observe = self._observe

        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            start = _perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                observe(max(_perf_counter() - start, 0.0))

        return wrapped
