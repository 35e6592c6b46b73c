"""The file one process writes: ``dm_<pid>.dmdb``, memory-mapped, appended to, never remapped.

:class:`ProcessFile` creates the file in the multiprocess directory (a file
of the same name left by a dead earlier process with this pid is renamed to
a retired name first, so its values are kept and compaction folds them; both
under the directory's exclusive lock, so a scrape sees the old file or the
retired one, never neither),
writes the header, and appends *groups* of entries (``layout.py``): the
entries of one child, written whole past ``used`` and only then published
by one aligned 4-byte store of the new ``used``. A process killed at any
moment leaves a file whose first ``used`` bytes are complete entries.

Growth. The file is mapped in fixed-size *segments* (:data:`SEGMENT_SIZE`,
a multiple of ``mmap.ALLOCATIONGRANULARITY``; larger for a group that needs
more): a full segment gets a ``PAD`` entry over its rest, the file is
extended (``posix_fallocate``: the blocks are allocated before they are
mapped, so a full filesystem is an error here, never a SIGBUS in an update)
and the next segment is mapped at its own offset.
Nothing is ever remapped, so the memoryviews the cells hold stay valid for
the life of the process, and a group never straddles two segments.

Allocation is thread-safe under one lock. It must also never wait for its
own thread (a child created in a signal handler or a GC callback while this
thread is allocating): :meth:`ProcessFile.allocate` only tries the lock and
returns None when it is busy; the caller then keeps its values in a private
buffer and queues itself with :meth:`ProcessFile.defer`; whoever holds the
lock attaches queued cells before and just after releasing it. A queued
cell whose own lock is busy at that moment (this thread was interrupted in
one of its updates) gets this file as a marker in its pending updates, and
the holder of the cell's lock retries the attach when it applies them, so a
queued cell is attached as soon as neither lock is held.

Entries are keyed by their key bytes: a key allocated again (a vec child
removed and made anew) gets its existing entry back, so a file never holds
one key twice.
"""

import errno
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Protocol

from . import layout

_log = logging.getLogger(__name__)

#: Bytes mapped at a time (16 pages of 4 KiB): small, since readers read whole files.
SEGMENT_SIZE = 16 * mmap.ALLOCATIONGRANULARITY
_USED = struct.Struct("<I")
_USED_AT = layout.HEADER_SIZE - _USED.size  # the header's last field
_PAD_KEY = layout.encode_key(layout.Key("", layout.PAD, "", "", "", ()))
#: posix_fallocate errors meaning "not supported here" (then the file is extended sparse).
_NO_FALLOCATE = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
#: The smallest PAD entry; a segment's rest is always 0 or at least this.
MIN_PAD = layout.entry_size(_PAD_KEY)

if TYPE_CHECKING:
    Doubles = memoryview[float]
else:  # memoryview takes no type arguments at run time before 3.12ish
    Doubles = memoryview

#: ``(key bytes, value, timestamp)`` of one entry to allocate.
Entry = tuple[bytes, float, float]


class Deferred(Protocol):
    """A cell waiting for its entries (see :meth:`ProcessFile.defer`)."""

    def _attach(self, file: "ProcessFile") -> bool:
        """Allocate and move to the file's entries; False to stay queued (busy)."""


def pad_entry(size: int) -> bytes:
    """A PAD entry of exactly ``size`` bytes (a multiple of 8, at least :data:`MIN_PAD`)."""
    # A longer sample name makes a longer key (each space is one byte of JSON),
    # of exactly size - 20 bytes: 4 + that is a multiple of 8, so no padding.
    spaces = " " * (size - 20 - len(_PAD_KEY))
    key = layout.encode_key(layout.Key("", layout.PAD, "", "", spaces, ()))
    data = layout.encode_entry(key, 0.0)
    assert len(data) == size, (len(data), size)
    return data


class ProcessFile:
    """One process's file in ``directory`` (see the module docstring).

    Raises OSError when the file cannot be created or mapped. ``lazy``: the
    file is created by the first allocation instead (a forked child's, so a
    child that never writes a metric has no file); if that fails, or a later
    segment cannot be allocated on disk (a full filesystem), the file logs one
    ERROR and goes on in private memory: every update still succeeds, the
    series allocated from then on are not seen by readers.
    """

    def __init__(
        self,
        directory: str,
        pid: Optional[int] = None,
        segment_size: int = SEGMENT_SIZE,
        lazy: bool = False,
    ) -> None:
        if segment_size % mmap.ALLOCATIONGRANULARITY or segment_size < 2 * MIN_PAD:
            raise ValueError(f"segment size {segment_size!r} is not a multiple of the granularity")
        self.pid = os.getpid() if pid is None else pid
        self.directory = directory
        self.path = os.path.join(directory, layout.process_file_name(self.pid))
        self.segment_size = segment_size
        self._lock = threading.Lock()
        self._deferred: list[Deferred] = []
        self._wakeups = 0  # see attach_deferred
        # key bytes -> (segment index, double index of the value in that segment)
        self._entries: dict[bytes, tuple[int, int]] = {}
        # (offset, mmap, memoryview cast to doubles) of each mapped segment
        self._segments: list[tuple[int, mmap.mmap, Doubles]] = []
        self._fd = -1
        #: True once the file failed (no space, ...): segments are then private memory.
        self.private = False
        self._used = layout.HEADER_SIZE
        if not lazy:
            self._open()

    def _open(self) -> None:
        """Create the file and map its first segment; OSError if it cannot be."""
        from .collector import locked  # the reader's lock; imported late: it is the reader's

        # Under the directory lock: a scrape never lists the stale file, then
        # finds it gone and this one empty (pid reuse).
        with locked(self.directory, exclusive=True):
            self._retire_stale()
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o644)
            try:
                self._map(0, self.segment_size)
            except BaseException:
                os.close(self._fd)
                self._fd = -1
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
                raise
            self._start_header()  # before the lock goes: a scrape never sees no header

    def _start_header(self) -> None:
        first = self._segments[0][1]
        first[: layout.HEADER_SIZE] = layout.header(layout.HEADER_SIZE)
        self._used_view = memoryview(first)[_USED_AT : layout.HEADER_SIZE].cast("I")
        self._used = layout.HEADER_SIZE

    def _retire_stale(self) -> None:
        """Rename a file of this pid left by a dead earlier process (its values are kept)."""
        if os.path.lexists(self.path):
            name = layout.retired_file_name(self.pid, time.time_ns())
            stale = os.path.join(self.directory, name)
            os.replace(self.path, stale)
            _log.info("retired the stale multiprocess file %s as %s", self.path, stale)

    def _map(self, offset: int, size: int) -> None:
        """Map ``size`` more bytes at ``offset``, allocated on disk first (no SIGBUS later)."""
        if self.private:
            mapped = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        else:
            try:
                os.posix_fallocate(self._fd, offset, size)
            except OSError as exc:
                if exc.errno not in _NO_FALLOCATE:
                    raise
                os.ftruncate(self._fd, offset + size)  # the filesystem cannot allocate ahead
            except AttributeError:  # no posix_fallocate on this platform
                os.ftruncate(self._fd, offset + size)
            mapped = mmap.mmap(self._fd, size, mmap.MAP_SHARED, offset=offset)
        self._segments.append((offset, mapped, memoryview(mapped).cast("d")))

    def _fail(self, exc: OSError) -> None:
        """Go on in private memory after the file failed (logged once: values lost to readers)."""
        _log.error(
            "multiprocess mode: process %d cannot write its file %r (%s); "
            "its new series stay in its memory and are not aggregated",
            self.pid,
            self.path,
            exc,
        )
        self.private = True
        if self._fd >= 0:
            self.close()
            self._fd = -1

    @property
    def used(self) -> int:
        """Bytes of the file holding published entries, header included."""
        return self._used

    def allocate(self, entries: Sequence[Entry]) -> Optional[tuple[Doubles, list[int]]]:
        """``(doubles view, [value index per entry])`` for a group of entries, or None if busy.

        Existing keys get their entries back (their values untouched); new
        ones are appended with the values given, all in one segment, and
        published at once. None when the lock is held (by another thread, or
        by this one in an allocation this call interrupted): then
        :meth:`defer`.
        """
        lock = self._lock
        if not lock.acquire(False):
            return None
        try:
            self._attach_deferred()
            found = self._allocate_locked(entries)
        finally:
            lock.release()
        if self._deferred:
            self.attach_deferred()
        return found

    def defer(self, cell: Deferred) -> None:
        """Queue ``cell`` to be attached by the holder of the lock, or now if it is free."""
        self._deferred.append(cell)
        self.attach_deferred()

    def attach_deferred(self) -> None:
        """Attach the queued cells while the lock can be had without waiting.

        A queued cell whose own lock is busy is left to the holder of that
        lock (it finds this file in the cell's pending updates and retries);
        if that retry finds this lock busy in turn it calls :meth:`wake`
        first, and this loop goes round again after releasing.
        """
        lock = self._lock
        while self._deferred and lock.acquire(False):
            seen = self._wakeups
            try:
                progress = self._attach_deferred()
            finally:
                lock.release()
            if not progress and self._wakeups == seen:
                break  # each queued cell's lock holder retries (see above)

    def wake(self) -> None:
        """Note that a cell retried its attach: :meth:`attach_deferred` then loops again."""
        self._wakeups += 1

    def _take_deferred(self, cell: Deferred) -> bool:
        """Take ``cell`` off the queue if it is on it; the lock is held."""
        queued = self._deferred
        for i, other in enumerate(queued):
            if other is cell:
                del queued[i]
                return True
        return False

    def _attach_deferred(self) -> bool:
        """Attach queued cells; the lock is held. False if none could be (each was busy)."""
        queued = self._deferred
        n = len(queued)
        if not n:
            return True
        cells = queued[:n]
        del queued[:n]  # appenders only add at the end
        stay = [cell for cell in cells if not cell._attach(self)]
        queued.extend(stay)
        return len(stay) < n

    def _allocate_locked(self, entries: Sequence[Entry]) -> tuple[Doubles, list[int]]:
        if not self._segments:  # a lazy file: created by its first allocation
            try:
                self._open()
            except OSError as exc:
                self._fail(exc)
                self._map(0, self.segment_size)
                self._start_header()
        known = self._entries
        places = [known.get(key) for key, _, _ in entries]
        if all(p is not None for p in places):
            segment = places[0][0]  # type: ignore[index]  # all found
            if all(p[0] == segment for p in places):  # type: ignore[index]
                return self._segments[segment][2], [p[1] for p in places]  # type: ignore[index]
        data = b"".join(layout.encode_entry(key, value, ts) for key, value, ts in entries)
        offset, segment = self._reserve(len(data))
        start, mapped, view = self._segments[segment]
        at = offset - start
        mapped[at : at + len(data)] = data
        indexes = []
        for key, _, _ in entries:
            at += layout.entry_size(key)
            index = (at - layout.VALUE.size) // 8
            indexes.append(index)
            known[key] = (segment, index)
        self._publish(offset + len(data))
        return view, indexes

    def _reserve(self, size: int) -> tuple[int, int]:
        """``(file offset, segment index)`` of ``size`` free bytes in one segment."""
        start, mapped, _ = self._segments[-1]
        end = start + len(mapped)
        rest = end - self._used - size
        if rest == 0 or rest >= MIN_PAD:
            return self._used, len(self._segments) - 1
        if end > self._used:  # a rest of 0 or >= MIN_PAD, always (see the condition above)
            pad = pad_entry(end - self._used)
            at = self._used - start
            mapped[at : at + len(pad)] = pad
            self._publish(end)
        grain = mmap.ALLOCATIONGRANULARITY
        needed = size + MIN_PAD
        more = max(self.segment_size, (needed + grain - 1) // grain * grain)
        try:
            self._map(end, more)
        except OSError as exc:
            self._fail(exc)
            self._map(end, more)
        return end, len(self._segments) - 1

    def _publish(self, used: int) -> None:
        """Make the entries up to ``used`` visible: one aligned 4-byte store."""
        self._used = used
        if not self.private:  # past a failure the file's readers stop at what it holds
            self._used_view[0] = used

    def close(self) -> None:
        """Close the file descriptor; the mappings stay for cells that still write to them."""
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<ProcessFile {self.path!r} used={self._used} segments={len(self._segments)}>"
