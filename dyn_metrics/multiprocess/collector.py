"""``MultiProcessCollector``: the aggregate of every process's files in a multiprocess directory.

One collector serves both kinds of files a directory may hold:

* dyn_metrics' own (:mod:`.layout`): the live processes' ``dm_<pid>.dmdb``,
  the dead ones' retired ``dm_<pid>_<stamp>.retired.dmdb``, and the aggregate
  ``dm_aggregate.dmdb`` compaction folds retired files into. The process files
  the aggregate lists as folded are not read again (a compactor stopped
  between writing the aggregate and deleting them leaves them behind). These
  are read under a shared ``fcntl.flock`` on ``dm.lock``, so a compaction
  (exclusive) is never seen half done (but see :func:`locked`: the wait is
  bounded).
* prometheus_client's ``*.db`` files, through :class:`PrometheusFilesReader`.

The aggregation is :mod:`.aggregate`'s (prometheus_client's rules; retired
processes add no ``live`` gauge values). A family both kinds of files have
is served once, merged, when type and help agree; otherwise dyn_metrics'
family is served and the conflict logged once.

A file that cannot be read for any reason (not a regular file, truncated,
corrupt, another layout version, an unknown type, a key that is not ours, a
``dm_*.dmdb`` name that is not one of ours: any exception while reading or
adding it) is skipped with one ERROR log line per file name and kind of
problem; a file gone between listing and reading is skipped silently, and so
is a live file still being created (its header not yet written). Files are
opened without blocking and only regular files are read. So no file makes a
scrape fail or hang; an unreadable directory gives an empty scrape (logged).

Re-entrancy: a scrape never waits for its own thread. A ``collect()`` that
finds another scrape of the same collector in progress (another thread, or a
signal handler interrupting one) reads the directory afresh without the
collector's caches instead of waiting.
"""

import contextlib
import logging
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, NamedTuple, Optional, Union

from ..errors import ConfigError
from ..model import Family
from . import layout, plans
from .aggregate import FOLD, SKIP, SUMMED_TYPES, Entry, Scrape, SeriesTable
from .plans import Plan
from .prometheus_files import PrometheusFilesReader

try:
    import fcntl
except ImportError:  # not on Linux: no locking (the package still imports)
    fcntl = None  # type: ignore[assignment]

__all__ = ["MultiProcessCollector", "ProcessFileReader", "locked", "resolve_directory"]

_log = logging.getLogger(__name__)

#: The source name conflicts are logged under.
SOURCE = "dyn_metrics"
#: The types a process file may hold; the summed ones are :data:`SUMMED_TYPES`.
GAUGE_LIKE = frozenset(("gauge", "info", "stateset", "unknown", "untyped"))
_ZERO_MAGIC = b"\x00" * len(layout.MAGIC)

PathLike = Union[str, "os.PathLike[str]"]


def resolve_directory(path: Optional[PathLike]) -> str:
    """``path``, or else the directory found first of (in this order):

    the directory :func:`dyn_metrics.multiprocess.enable` set in this process,
    ``DYN_METRICS_MULTIPROC_DIR``, ``PROMETHEUS_MULTIPROC_DIR``.
    :class:`ConfigError` when there is none.
    """
    if path is not None:
        return os.fspath(path)
    found = _enabled_directory()
    for variable in ("DYN_METRICS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROC_DIR"):
        found = found or os.environ.get(variable) or None
    if not found:
        raise ConfigError(
            "no multiprocess directory: pass path, call dyn_metrics.multiprocess.enable(path), "
            "or set DYN_METRICS_MULTIPROC_DIR or PROMETHEUS_MULTIPROC_DIR"
        )
    return found


def _enabled_directory() -> Optional[str]:
    """The directory multiprocess mode was enabled with in this process, if any."""
    # Looked up, not imported: mode (the writer side) imports this module's lock,
    # and a process that never imported it has not enabled anything.
    mode = sys.modules.get(__name__.rpartition(".")[0] + ".mode")
    enabled: Optional[str] = None if mode is None else mode.enabled_path()
    return enabled


#: The longest :func:`locked` waits for the lock before going on without it (seconds).
LOCK_TIMEOUT = 2.0
#: Threads of this process holding the exclusive lock (a compaction, a retirement).
_exclusive_holders: set[int] = set()


@contextlib.contextmanager
def locked(directory: str, exclusive: bool) -> Iterator[bool]:
    """Hold ``fcntl.flock`` on the directory's :data:`layout.LOCK` (shared or exclusive).

    Yields whether the lock is held. The lock is tried without blocking and
    retried with short waits for at most :data:`LOCK_TIMEOUT` seconds; past
    that the body runs without it (logged once): a reader may then see a
    compaction half done (a dead process's values missing from one scrape,
    never counted twice). Nested in this thread's own exclusive hold (a
    signal handler scraping during a compaction), a shared request runs
    without the lock at once (the exclusive one covers it) and an exclusive
    one yields False at once (the caller must not compact then).

    Where the lock file cannot be opened (a read-only directory without one)
    or there is no ``fcntl``, this holds nothing and yields False.
    """
    me = threading.get_ident()
    if me in _exclusive_holders:
        yield False
        return
    path = os.path.join(directory, layout.LOCK)
    fd = -1
    if fcntl is not None:
        flags = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
        except OSError:
            try:
                fd = os.open(path, os.O_RDONLY | flags)
            except OSError:
                fd = -1
    try:
        held = fd >= 0 and _flock(fd, path, exclusive)
        if held and exclusive:
            _exclusive_holders.add(me)
        try:
            yield held
        finally:
            if held and exclusive:
                _exclusive_holders.discard(me)
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock


_lock_logged: dict[str, object] = {}


def _flock(fd: int, path: str, exclusive: bool) -> bool:
    """Take the flock within :data:`LOCK_TIMEOUT`; False (logged once per path) if not."""
    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + LOCK_TIMEOUT
    wait = 0.0005
    while True:
        try:
            fcntl.flock(fd, operation)
            return True
        except BlockingIOError:
            pass
        except OSError as exc:
            _warn_lock(path, f"cannot be locked: {exc}")
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            _warn_lock(path, f"still locked after {LOCK_TIMEOUT} s: going on without it")
            return False
        time.sleep(min(wait, left))  # polling: flock has no timed wait
        wait = min(wait * 2, 0.05)


def _warn_lock(path: str, problem: str) -> None:
    token = object()
    if _lock_logged.setdefault(path, token) is token:
        _log.warning("multiprocess lock %r %s (logged once)", path, problem)


def _entry(key_bytes: bytes, series: SeriesTable) -> Entry:
    """The entry of a key; LayoutError for a key that is not one of ours.

    Padding and an aggregate's folded-file records have no series (slot -1).
    """
    key = layout.decode_key(key_bytes)
    if key.type == layout.PAD:
        return Entry("", key.type, "", "", "", SKIP, -1, -1, None)
    if key.type == layout.FOLDED:
        return Entry(key.sample, key.type, "", "", "", FOLD, -1, -1, None)
    if key.type not in SUMMED_TYPES and key.type not in GAUGE_LIKE:
        raise layout.LayoutError(f"unknown type {key.type!r} in key {key_bytes[:80]!r}")
    try:
        entry = series.entry(
            key.family, key.type, key.help, key.unit, key.mode, key.sample, key.labels
        )
    except ValueError as exc:
        raise layout.LayoutError(str(exc)) from None
    return entry


#: What :meth:`ProcessFileReader.read` gives: the entries' plan, values, timestamps,
#: folded file names.
Read = tuple[Plan, Sequence[float], Sequence[float], list[str]]


class _Shape(NamedTuple):
    """A file's entries as last read, and one ``struct`` that reads all its keys and values."""

    used: int
    unpack: Callable[[bytes], tuple[Any, ...]]
    keys: tuple[bytes, ...]
    plan: Plan  # of its entries
    real: Optional[list[int]]  # positions of the entries that are not padding/folded records
    folded: list[str]


class ProcessFileReader:
    """Reads dyn_metrics' files into :mod:`.aggregate` entries, caching what repeats.

    Keys are decoded once per distinct key bytes. A file read again with the
    same ``used`` is read with one ``struct`` call whose key bytes are
    compared with the last read's: equal keys (the common case, a process
    updating values in place) reuse its entries; anything else is parsed
    afresh. Not thread-safe: one scrape at a time.
    """

    def __init__(self, series: SeriesTable) -> None:
        self.series = series
        self._keys: dict[bytes, Entry] = series.cache()
        self._shapes: dict[str, _Shape] = series.cache()

    def forget_except(self, names: Collection[str]) -> None:
        """Drop the shapes of files not in ``names`` (gone from the directory)."""
        for name in [name for name in self._shapes if name not in names]:
            del self._shapes[name]  # in place: the series table empties this dict

    def read(self, name: str, data: bytes) -> Read:
        """A whole file's entries; :class:`layout.LayoutError` as :func:`layout.parse` raises."""
        size = len(data)
        if size < layout.HEADER_SIZE:
            raise layout.LayoutError(
                f"{size} bytes: shorter than the {layout.HEADER_SIZE}-byte header"
            )
        magic, digits, version, used = layout.HEADER.unpack_from(data)
        if magic != layout.MAGIC:
            raise layout.LayoutError(f"not a dyn_metrics multiprocess file (magic {magic!r})")
        if version != layout.VERSION or digits != b"%02d" % layout.VERSION:
            raise layout.LayoutError(f"layout version {version} is not {layout.VERSION}")
        if not layout.HEADER_SIZE <= used <= size:
            raise layout.LayoutError(f"used {used} outside the file's {size} bytes")
        shape = self._shapes.get(name)
        if shape is not None and shape.used == used:
            got = shape.unpack(data)
            if got[0::3] == shape.keys:
                values, stamps = got[1::3], got[2::3]
                if shape.real is not None:
                    values = tuple(values[i] for i in shape.real)
                    stamps = tuple(stamps[i] for i in shape.real)
                return shape.plan, values, stamps, shape.folded
        shape = self._parse(data, used)
        self._shapes[name] = shape
        got = shape.unpack(data)
        values, stamps = got[1::3], got[2::3]
        if shape.real is not None:
            values = tuple(values[i] for i in shape.real)
            stamps = tuple(stamps[i] for i in shape.real)
        return shape.plan, values, stamps, shape.folded

    def _parse(self, data: bytes, used: int) -> _Shape:
        cache, series = self._keys, self.series
        formats = [f"<{layout.HEADER_SIZE}x"]
        keys: list[bytes] = []
        entries: list[Entry] = []
        real: list[int] = []
        folded: list[str] = []
        unpack_length = layout.LENGTH.unpack_from
        pos = layout.HEADER_SIZE
        while pos < used:
            if pos + 4 > used:
                raise layout.LayoutError(f"entry at {pos} cut short")
            length = unpack_length(data, pos)[0]
            key_end = pos + 4 + length
            value_at = (key_end + 7) & ~7
            if value_at + 16 > used:
                raise layout.LayoutError(f"entry at {pos} runs past used {used}")
            key_bytes = data[pos + 4 : key_end]
            entry = cache.get(key_bytes)
            if entry is None:
                entry = cache[key_bytes] = _entry(key_bytes, series)
            if entry.slot >= 0:
                real.append(len(keys))
                entries.append(entry)
            elif entry.kind == FOLD:
                folded.append(entry.family)
            keys.append(key_bytes)
            formats.append(f"4x{length}s{value_at - key_end}x2d")
            pos = value_at + 16
        unpack = struct.Struct("".join(formats)).unpack_from
        every = len(real) == len(keys)
        return _Shape(used, unpack, tuple(keys), Plan(entries), None if every else real, folded)


class MultiProcessCollector:
    """A custom collector of a multiprocess directory's aggregate (module docstring).

    ``path`` None: :func:`resolve_directory`'s order. Register it on a
    registry; each ``collect()`` reads the directory anew. Concurrent scrapes
    never wait for each other: one uses the collector's caches, the others
    read without them.
    """

    def __init__(self, path: Optional[PathLike] = None) -> None:
        self.path = resolve_directory(path)
        self._series = SeriesTable()
        self._reader = ProcessFileReader(self._series)
        self._prometheus = PrometheusFilesReader(self.path, series=self._series)
        self._logged: dict[str, object] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MultiProcessCollector({self.path!r})"

    def collect(self) -> list[Family]:
        """The aggregated families, sorted by name; bad files logged once and skipped."""
        if not self._lock.acquire(False):
            # Another scrape holds the caches (maybe this very thread, interrupted):
            # read afresh rather than wait.
            series = SeriesTable()
            prometheus = PrometheusFilesReader(self.path, series=series)
            prometheus._logged = self._prometheus._logged  # still logged once
            return self._collect(series, ProcessFileReader(series), prometheus)
        try:
            self._series.trim()
            return self._collect(self._series, self._reader, self._prometheus)
        finally:
            self._lock.release()

    def _collect(
        self, series: SeriesTable, reader: ProcessFileReader, prometheus: PrometheusFilesReader
    ) -> list[Family]:
        scrape = Scrape(series, self._logged)
        with locked(self.path, exclusive=False):
            self._add_own(scrape, reader)
        prometheus.add_to(scrape)
        return scrape.families()

    def _add_own(self, scrape: Scrape, reader: ProcessFileReader) -> None:
        try:
            names = os.listdir(self.path)
        except OSError as exc:
            self._bad(self.path, exc)
            return
        live: list[tuple[int, str]] = []
        retired: list[tuple[int, int, str]] = []
        for name in names:
            kind = layout.parse_file_name(name)
            if kind is None:
                if name.startswith("dm_") and name.endswith(layout.EXTENSION):
                    self._bad(os.path.join(self.path, name), "not a dyn_metrics file name")
            elif kind[0] == "live":
                live.append((kind[1], name))
            elif kind[0] == "retired":
                pid_stamp = layout.retired_stamp(name)
                if pid_stamp is not None:
                    retired.append((pid_stamp[0], pid_stamp[1], name))
        reader.forget_except(names)
        folded: set[str] = set()
        if layout.AGGREGATE in names:
            self._add(scrape, reader, layout.AGGREGATE, None, False, folded)
        # A reused pid's retirements in order, then the live files: the latest `all` value wins.
        for pid, _, name in sorted(retired):
            if name not in folded:
                self._add(scrape, reader, name, str(pid), False, None)
        for pid, name in sorted(live):
            if name not in folded:
                self._add(scrape, reader, name, str(pid), True, None)

    def _add(
        self,
        scrape: Scrape,
        reader: ProcessFileReader,
        name: str,
        pid: Optional[str],
        live: bool,
        folded: Optional[set[str]],
    ) -> None:
        """Read one file and add it to ``scrape``; any problem is logged and the file skipped."""
        path = os.path.join(self.path, name)
        try:
            data = layout.read_bytes(path)
        except FileNotFoundError:
            return  # retired or compacted since the listing
        except Exception as exc:  # a file never fails a scrape
            self._bad(path, exc)
            return
        if live and data[: len(layout.MAGIC)].ljust(len(layout.MAGIC), b"\x00") == _ZERO_MAGIC:
            return  # a process creating its file: no header yet
        try:
            plan, values, stamps, names_folded = reader.read(name, data)
            if folded is not None:
                folded.update(names_folded)
            plans.add(scrape, plan, values, stamps, pid, SOURCE, dead=not live)
        except Exception as exc:  # a file never fails a scrape
            self._bad(path, exc)

    def _bad(self, path: str, problem: object) -> None:
        kind = type(problem).__name__ if isinstance(problem, BaseException) else str(problem)
        token = object()
        if self._logged.setdefault(f"{path}\0{kind}", token) is token:
            _log.error("multiprocess file %r skipped (logged once): %s", path, problem)
