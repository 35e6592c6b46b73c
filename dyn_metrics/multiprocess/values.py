"""The cells of multiprocess mode: each child's values live in this process's file.

Every cell has the public methods of the in-process cell of its type, so the
metric classes and their vecs work unchanged, and in-process reads (this
process's own registry) read the values back from the file.

Hot path. A cell's values are doubles in a memory-mapped segment, reached by
a memoryview cast to doubles (``writer.py``): an update is a plain store,
no system call. Each cell has its own lock, only ever *tried*
(``acquire(False)``): when it is busy (another thread is updating, or this
thread was interrupted mid-update by a signal handler or a GC callback that
updates the same cell) the update is appended to the cell's pending list
(``list.append``: one atomic C call), and the holder applies pending updates
just after releasing (as does the appender itself if the lock has come free
meanwhile). So no update is dropped, nothing waits, and nothing ever waits
for its own thread. Pending updates are taken off the list with one slice
deletion before being applied; a read that finds the lock busy adds the
pending list of an atomic copy to the stored values (it may miss an update
being applied at that instant; it never waits). A counter placed in its file
needs no lock at all: each of its updates is one C-level call
(``counter_values.py``).

Placement. A new child's cell starts in a private buffer and moves to the
file once it has become its family's child (``mode.FileBackend.adopt``): a
cell that lost the race to become the child (two threads creating it at
once) never touches the file. The move needs the file's lock and the
cell's; when either is busy the cell stays queued (``writer.py``) and the
holder of the busy lock moves it on releasing, so it reaches the file as
soon as neither is held. A child removed and made again gets its entries
back: counters, histograms and summaries go on from the values there (as
prometheus_client's do); gauges, state sets and info start over, their
values written over the entries.

What stays in this process only: exemplars; a gauge function (the file keeps
the value the gauge had; ``set_function`` gauges are read at scrape time in
the process that set them); a summary's quantiles (only ``_sum`` and
``_count`` are in the file). Int metrics store doubles in the file: exact
up to 2**53. Info and state sets are written with their own types and mode
``liveall`` (one series per live process);
an ``info()`` with new labels adds an entry for them (value 1) and sets the
previous one to 0.

After ``os.fork()`` (``mode.py``) every cell gets a stand-in lock; the first
use of the cell in the child re-places it in the child's own file (created
then) with a fresh lock: counters, gauges, histograms and summaries
(quantiles too) start at 0 there (prometheus_client's behaviour: the
parent's values stay in the parent's file), info and state sets keep their
state. Updates the parent had pending at the fork are the parent's.
"""

import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, NoReturn, Optional

from ..errors import InvalidValueError
from ..metrics.cells import as_real
from ..metrics.gauge_functions import Function, GaugeFunction, call_function, call_functions
from ..metrics.instrument import InProgress
from ..metrics.timer import Timer
from ..model import Number
from .writer import Doubles, ProcessFile

_ONE = 1
_now = time.time


class FileCell:
    """What every multiprocess cell shares: where its values are, the lock, pending updates.

    ``_mv[_at[j]]`` is the value of entry ``j`` (``_keys[j]``), ``_mv[_at[j] + 1]``
    its timestamp. Until a deferred cell is attached (``writer.py``) ``_mv`` is
    a private buffer of the same shape.
    """

    __slots__ = ("_mv", "_at", "_lock", "_pending", "_keys", "_attached", "__weakref__")
    #: True: values add up (an attach adds a private buffer's values to the entries).
    _additive: ClassVar[bool] = True
    _mv: Doubles
    _at: list[int]

    def _start(self, file: Optional[ProcessFile], keys: Sequence[bytes]) -> None:
        """Set up; ``file`` None: in a private buffer until :meth:`_adopt`."""
        self._keys = tuple(keys)
        self._lock: threading.Lock = threading.Lock()
        self._pending: list[object] = []
        if file is None:
            self._go_private(self._values())
        else:
            self._place(file)

    def _go_private(self, values: list[float]) -> None:
        self._mv = memoryview(bytearray(16 * len(values))).cast("d")
        self._at = list(range(0, 2 * len(values), 2))
        self._attached = False
        self._store(values)
        self._bind()

    def _adopt(self, file: ProcessFile) -> None:
        """Move to ``file`` (now, or when it comes free): this cell is its family's child."""
        file.defer(self)

    def _values(self) -> list[float]:
        return [0.0] * len(self._keys)  # additive cells start at 0

    def _place(self, file: ProcessFile) -> None:
        """Allocate the entries (or queue the cell with a private buffer if the file is busy)."""
        values = self._values()
        found = file.allocate([(k, v, 0.0) for k, v in zip(self._keys, values)])
        if found is None:
            self._go_private(values)
            file.defer(self)
            return
        self._mv, self._at = found
        self._attached = True
        if not self._additive:  # an entry given back keeps no stale state
            self._store(values)
        self._bind()

    def _store(self, values: Sequence[float]) -> None:
        mv = self._mv
        for j, value in zip(self._at, values):
            mv[j] = value

    def _bind(self) -> None:
        """Copy what the hot path needs out of ``_at`` (each cell type its own)."""

    def _attach(self, file: ProcessFile) -> bool:
        """Move to the file (its lock held); False if the cell's lock is busy, whose
        holder then finds ``file`` in the pending updates and retries."""
        lock = self._lock
        if not lock.acquire(False):
            self._pending.append(file)
            return False
        try:
            self._move(file)
        finally:
            lock.release()
        self._drain()
        return True

    def _move(self, file: ProcessFile) -> None:
        """Move from the private buffer to the file; both locks are held."""
        if self._attached:
            return
        private = self._mv
        kept = [(private[j], private[j + 1]) for j in self._at]  # (value, stamp)
        mv, places = file._allocate_locked([(k, 0.0, 0.0) for k in self._keys])
        for j, (value, stamp) in zip(places, kept):
            mv[j] = mv[j] + value if self._additive else value
            mv[j + 1] = stamp
        self._mv, self._at, self._attached = mv, places, True
        self._bind()

    def _retry_attach(self, file: ProcessFile) -> None:
        """Attach now if ``file`` is free (the cell's lock is held), else leave it to its holder."""
        file.wake()  # before trying: a holder that failed on this cell's lock then retries
        flock = file._lock
        if flock.acquire(False):
            try:
                if file._take_deferred(self):
                    self._move(file)
            finally:
                flock.release()

    def _forked(self) -> None:
        """In a forked child, before the cell's first use there (see ``mode.forked``)."""

    def _reset(self, file: ProcessFile) -> None:
        """Start over in ``file`` (a forked child's) under a fresh lock, held meanwhile."""
        lock = threading.Lock()
        lock.acquire()
        self._lock = lock
        try:
            self._place(file)
        finally:
            lock.release()

    def _apply_locked(self, items: list[object]) -> None:
        raise NotImplementedError

    def _take_pending(self) -> None:
        """Apply the pending updates, the lock held (appenders only add at the end);
        a :class:`ProcessFile` among them is an attach to retry (:meth:`_attach`)."""
        pending = self._pending
        n = len(pending)
        if n:
            items = pending[:n]
            del pending[:n]
            files = [item for item in items if item.__class__ is ProcessFile]
            if files:
                items = [item for item in items if item.__class__ is not ProcessFile]
                self._retry_attach(files[-1])
            if items:
                self._apply_locked(items)

    def _drain(self) -> None:
        """Apply pending updates while the lock can be had without waiting."""
        pending, lock = self._pending, self._lock
        while pending and lock.acquire(False):
            try:
                self._take_pending()
            finally:
                lock.release()

    def _update(self, item: object) -> None:
        """The slow way of an update: queue it, then apply what is queued if the lock is free."""
        self._pending.append(item)
        self._drain()

    def _snapshot_values(self) -> tuple[list[float], list[object]]:
        """``(stored values, pending items)``: applied under the lock when it is free."""
        lock = self._lock
        if lock.acquire(False):
            try:
                self._take_pending()
                mv = self._mv
                return [mv[j] for j in self._at], []
            finally:
                lock.release()
        mv = self._mv
        pending = [item for item in self._pending if item.__class__ is not ProcessFile]
        return [mv[j] for j in self._at], pending

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"cannot pickle {type(self).__name__}")


def make_adder(one: Number) -> "Callable[..., None]":
    """A gauge's ``add``/``inc`` (one body: ``inc()`` needs no second call), default ``one``."""

    def add(self: "FileGaugeCell", amount: Number = one) -> None:
        """Add ``amount`` (default 1; may be negative); nothing while a function gives the value."""
        if amount.__class__ is not self._kind:
            amount = self._number(amount)
        if self._fn is not None:
            return
        lock = self._lock
        if lock.acquire(False):
            try:
                mv, i = self._mv, self._i
                mv[i] += amount
                if self._stamp:
                    mv[i + 1] = _now()
            finally:
                lock.release()
            if self._pending:
                self._drain()
        else:
            self._update(amount)

    return add


class FileGaugeCell(FileCell):
    """A float gauge in the file; ``set_function`` stays in this process."""

    __slots__ = ("_i", "_fn", "_stamp")
    _additive = False
    _kind: ClassVar[type] = float

    def __init__(
        self, file: Optional[ProcessFile], keys: Sequence[bytes], stamp: bool = False
    ) -> None:
        self._fn: Optional[Function] = None
        self._stamp = stamp  # the mostrecent modes keep the time of the last update
        self._start(file, keys)

    def _bind(self) -> None:
        self._i = self._at[0]

    @staticmethod
    def _number(value: object) -> Number:
        return as_real(value, "gauge value")

    @staticmethod
    def _function_result(value: object) -> Number:
        return as_real(value, "gauge function result")

    @staticmethod
    def _seconds(seconds: float) -> Number:
        return seconds

    def set(self, value: Number) -> None:
        """Set the value (removes a function set by ``set_function``)."""
        if value.__class__ is not self._kind:
            value = self._number(value)
        if self._fn is not None:
            self._fn = None
        lock = self._lock
        if lock.acquire(False):
            try:
                mv, i = self._mv, self._i
                mv[i] = value
                if self._stamp:
                    mv[i + 1] = _now()
            finally:
                lock.release()
            if self._pending:
                self._drain()
        else:
            self._update((value,))  # a tuple: a set, not a delta

    add = inc = make_adder(1.0)

    def _apply_locked(self, items: list[object]) -> None:
        mv, i = self._mv, self._i
        value = mv[i]
        for item in items:
            value = item[0] if item.__class__ is tuple else value + item  # type: ignore
        mv[i] = value
        if self._stamp:
            mv[i + 1] = _now()

    def sub(self, amount: Number) -> None:
        """Subtract ``amount``."""
        self.add(-self._number(amount))

    def dec(self, amount: Number = 1.0) -> None:
        """Subtract ``amount`` (default 1)."""
        try:
            self.add(-amount)
        except (TypeError, InvalidValueError):
            self.add(-self._number(amount))  # raises naming the value given

    inc_by = add
    dec_by = sub

    def set_function(self, fn: Optional[GaugeFunction]) -> None:
        """Take the value from ``fn()`` at this process's reads (not written to the file)."""
        if fn is not None and not callable(fn):
            raise InvalidValueError(f"gauge function must be callable or None, got {fn!r}")
        self._fn = None if fn is None else Function(fn, [])

    def set_to_current_time(self) -> None:
        """Set the value to the current Unix time in seconds (int gauges: whole seconds)."""
        self.set(self._seconds(time.time()))

    def track_inprogress(self) -> InProgress:
        """Context manager and decorator: +1 on entry, -1 on exit (raising too)."""
        return InProgress(self.inc, self.dec)

    def time(self) -> Timer:
        """Context manager and decorator: set the value to the seconds the block took."""
        seconds, set_value = self._seconds, self.set
        return Timer(lambda elapsed: set_value(seconds(elapsed)))

    def _stored(self) -> Number:
        values, pending = self._snapshot_values()
        value = values[0]
        for item in pending:
            value = item[0] if item.__class__ is tuple else value + item  # type: ignore
        return int(value) if self._kind is int else value

    def get(self) -> Number:
        """The current value; with a function set, what the function gives."""
        fn = self._fn
        if fn is not None:
            return call_function(fn, self._function_result)
        return self._stored()

    _read_locked = get

    @staticmethod
    def _read_many(cells: list["FileGaugeCell"]) -> list[Number]:
        values: list[Number] = []
        functions = False
        for cell in cells:
            fn = cell._fn
            if fn is None:
                values.append(cell._stored())
            else:
                values.append(fn)  # type: ignore[arg-type]  # called below, no lock held
                functions = True
        return call_functions(cells, values) if functions else values
