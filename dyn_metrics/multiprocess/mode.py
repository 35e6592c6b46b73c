"""Turning multiprocess mode on: :func:`enable`, :func:`enable_from_environment`, forks.

``enable(path)`` checks the directory, creates this process's file in it
(``writer.py``) and installs the cell backend (``metrics/backends.py``): every
metric created from then on keeps its values in the file (``values.py``),
where any process can read them. Metrics created before ``enable`` stay in
process memory for good, so call it before creating any: at startup, or by
setting ``DYN_METRICS_MULTIPROC_DIR`` before ``import dyn_metrics``.

Forks. A child made by ``os.fork()`` (``multiprocessing``'s fork start
method, gunicorn's workers) must not write into its parent's file: an
``os.register_at_fork`` hook gives every live cell a stand-in lock, and the
first use of a cell in the child creates the child's own process file (the
first time) and re-places the cell in it (see ``values.py`` for what starts
at 0). The fork costs one small object per live series; a child that never
touches a metric (fork + exec) creates no file; updates cost nothing more,
where checking the pid on each update would cost every update. A child that
did write leaves its file when it exits, as every process does: mark it dead
(``mark_process_dead``) so compaction folds it. If the child's file cannot be
created, its cells go on in private memory (one ERROR line per process): its
values are then not aggregated.

:func:`disable` (for tests) uninstalls the backend: metrics created afterwards
stay in process memory; those created before keep writing their file (and
move to their own file in a forked child). :func:`enable` with the same
directory again goes on with this process's file, never retiring it.
"""

import errno
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Optional, Union, cast

from ..errors import ConfigError
from ..metrics import backends
from ..metrics.counter import Counter, CounterVec, IntCounter, IntCounterVec
from ..metrics.gauge import Gauge, GaugeVec, IntGauge, IntGaugeVec
from ..metrics.histogram import HistogramFamily
from ..metrics.info import InfoFamily
from ..metrics.stateset import StateSetFamily
from ..metrics.summary import SummaryFamily
from ..model import COUNTER, GAUGE, HISTOGRAM, INFO, STATESET, SUMMARY, Labels
from . import layout
from .counter_values import FileCounterCell, FileIntCounterCell
from .grouped_values import (
    FileHistogramCell,
    FileInfoCell,
    FileIntGaugeCell,
    FileStateSetCell,
    FileSummaryCell,
)
from .values import FileCell, FileGaugeCell
from .writer import ProcessFile

_log = logging.getLogger(__name__)

#: The environment variable :func:`enable_from_environment` reads.
ENVIRONMENT_VARIABLE = "DYN_METRICS_MULTIPROC_DIR"
_LIVEALL = "liveall"


def _key(
    family: str, type_word: str, help: str, unit: str, sample: str, labels: Labels, mode: str = ""
) -> bytes:
    return layout.encode_key(layout.Key(family, type_word, help, unit, sample, labels, mode))


class FileBackend:
    """The cell backend of multiprocess mode: every new child's cell lives in ``file``.

    Kept for the life of the process once made (also past :func:`disable`):
    its cells still write ``file``, and the fork hook still moves them.
    """

    def __init__(self, path: str, file: ProcessFile) -> None:
        self.path = path
        self.file = file
        self.cells: weakref.WeakSet[FileCell] = weakref.WeakSet()

    def cell_class(self, family: object) -> Optional[type]:
        """The cell class for ``family``; ConfigError for a native histogram; None: in process."""
        if isinstance(family, (IntCounter, IntCounterVec)):
            return FileIntCounterCell
        if isinstance(family, (Counter, CounterVec)):
            return FileCounterCell
        if isinstance(family, (IntGauge, IntGaugeVec)):
            return FileIntGaugeCell
        if isinstance(family, (Gauge, GaugeVec)):
            return FileGaugeCell
        if isinstance(family, HistogramFamily):
            if family.desc.native is not None:
                raise ConfigError(
                    f"native histogram {family.desc.name!r} cannot be used in multiprocess mode "
                    f"(directory {self.path!r}): create it with native=False"
                )
            return FileHistogramCell
        if isinstance(family, SummaryFamily):
            return FileSummaryCell
        if isinstance(family, InfoFamily):
            return FileInfoCell
        if isinstance(family, StateSetFamily):
            return FileStateSetCell
        return None

    def new_cell(self, family: object, key: tuple[str, ...]) -> object:
        """A cell for child ``key`` of ``family``, in private memory until :meth:`adopt`."""
        return _make_cell(family, key)

    def adopt(self, cell: object) -> None:
        """``cell`` became its family's child: its entries go to the file.

        A cell that lost the race to become the child (two threads creating it
        at once) is never adopted, so it never writes over the child's entries.
        """
        file_cell = cast(FileCell, cell)
        self.cells.add(file_cell)
        file_cell._adopt(self.file)

    def forked(self) -> None:
        """In a forked child: a file of its own, created when a cell is first used.

        Each live cell gets a stand-in lock whose first taker re-places it
        (``values.py``): a child that never touches a metric (fork + exec)
        creates no file and pays one small object per series.
        """
        self.file = ProcessFile(self.path, lazy=True)
        forked(list(self.cells), self.file)


class _Refork:
    """The lock of a cell inherited through ``fork``: its first taker re-places the cell.

    ``claims`` (one dict per fork, shared by its stand-ins) records which
    cell is being re-placed: ``dict.setdefault`` is atomic, so one taker
    re-places and the others queue their updates meanwhile.
    """

    __slots__ = ("_cell", "_file", "_claims")

    def __init__(self, cell: FileCell, file: ProcessFile, claims: dict[int, object]) -> None:
        self._cell = cell
        self._file = file
        self._claims = claims

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Re-place the cell (first call) and try its new lock; False while another does."""
        cell = self._cell
        current: object = cell._lock
        if current is self:
            token = object()
            if self._claims.setdefault(id(self), token) is not token:
                return False  # being re-placed: the caller queues its update
            cell._reset(self._file)
        return cell._lock.acquire(False)

    def release(self) -> None:
        """Release the cell's new lock."""
        self._cell._lock.release()


def forked(cells: list[FileCell], file: ProcessFile) -> None:
    """In a forked child: each cell is re-placed in ``file`` by the first taker of its lock.

    The updates the parent had pending are the parent's. The hot path is
    unchanged: the first ``acquire`` of the stand-in lock does the move.
    """
    claims: dict[int, object] = {}
    for cell in cells:
        if cell._pending:
            cell._pending.clear()
        cell._lock = _Refork(cell, file, claims)  # type: ignore[assignment]  # acts as a Lock
        cell._forked()


def _make_cell(family: object, key: tuple[str, ...]) -> FileCell:
    file = None  # private until adopted
    desc = family.desc  # type: ignore[attr-defined]  # a MetricFamily
    pairs: Labels = family._label_pairs(key)  # type: ignore[attr-defined]
    name, help, unit = desc.name, desc.help, desc.unit
    if desc.type == COUNTER:
        cls = FileIntCounterCell if isinstance(family, (IntCounter, IntCounterVec)) else None
        keys = [_key(name, COUNTER, help, unit, name, pairs)]
        return (cls or FileCounterCell)(file, keys)
    if isinstance(family, HistogramFamily):
        keys = [
            _key(name, HISTOGRAM, help, unit, name + "_bucket", pairs + (("le", le),))
            for le in family._le
        ]
        keys.append(_key(name, HISTOGRAM, help, unit, name + "_sum", pairs))
        return FileHistogramCell(file, keys, family.desc.buckets)
    if isinstance(family, SummaryFamily):
        inner = None if family._plain else family._new_cell()
        keys = [_key(name, SUMMARY, help, unit, name + s, pairs) for s in ("_sum", "_count")]
        return FileSummaryCell(file, keys, inner)
    if isinstance(family, InfoFamily):

        def key_of(info: Labels) -> bytes:
            labels = tuple(sorted(pairs + info)) if info else pairs
            return _key(name, INFO, help, unit, name, labels, _LIVEALL)

        return FileInfoCell(file, family._keys, key_of)
    if isinstance(family, StateSetFamily):
        keys = [
            _key(name, STATESET, help, unit, name, labels, _LIVEALL)
            for labels in family._state_pairs(pairs)
        ]
        return FileStateSetCell(file, keys, family._states)
    mode: str = family._multiprocess_mode  # type: ignore[attr-defined]  # a gauge
    keys = [_key(name, GAUGE, help, unit, name, pairs, mode)]
    gauge = FileIntGaugeCell if isinstance(family, (IntGauge, IntGaugeVec)) else FileGaugeCell
    return gauge(file, keys, stamp=mode.endswith("mostrecent"))


_state_lock = threading.Lock()
#: The backend installed now, or None.
_backend: Optional[FileBackend] = None
#: Every backend this process made, by directory: kept past disable() (see FileBackend).
_backends: dict[str, FileBackend] = {}


def _checked_directory(path: object) -> str:
    """The real path of a writable directory ``path``, else ConfigError naming the problem."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"multiprocess directory must be a path, got {path!r}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise ConfigError(f"multiprocess directory must be a non-empty path, got {path!r}")
    if not os.path.exists(text):
        raise ConfigError(f"multiprocess directory {text!r} does not exist")
    if not os.path.isdir(text):
        raise ConfigError(f"multiprocess directory {text!r} is not a directory")
    if not os.access(text, os.W_OK | os.X_OK):
        raise ConfigError(f"multiprocess directory {text!r} is not writable")
    return os.path.realpath(text)


def enable(path: Union[str, "os.PathLike[str]"]) -> None:
    """Write the metrics created from now on to this process's file in directory ``path``.

    ``path`` must exist, be a directory and be writable, else
    :class:`ConfigError` naming it and the problem. Enabling again with the
    same directory does nothing; with another one, ConfigError. Metrics
    created before this call stay in process memory.
    """
    global _backend
    real = _checked_directory(path)
    with _state_lock:
        if _backend is not None:
            if _backend.path == real:
                return
            raise ConfigError(
                f"multiprocess mode is already enabled with directory {_backend.path!r}, "
                f"not {os.fspath(path)!r}"
            )
        backend = _backends.get(real)
        if backend is None or backend.file.pid != os.getpid():
            try:
                file = ProcessFile(real)
            except OSError as exc:
                full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
                problem = "has no space for this process's file" if full else "is not writable"
                raise ConfigError(
                    f"multiprocess directory {os.fspath(path)!r} {problem}: {exc}"
                ) from None
            if backend is None:
                backend = _backends[real] = FileBackend(real, file)
            else:
                backend.file = file
        # else: this process's own file, still mapped by its cells, is written on
        _backend = backend
        backends.install(_backend)


def disable() -> None:
    """Stop multiprocess mode for metrics created from now on (for tests).

    Metrics created while it was on keep writing their file, and move to a
    file of their own in a forked child as before. Enabling the same
    directory again goes on with the same file.
    """
    global _backend
    with _state_lock:
        if _backend is not None:
            backends.install(None)
            _backend = None


def enabled_path() -> Optional[str]:
    """The directory multiprocess mode writes to (its real path), or None when off."""
    backend = _backend
    return None if backend is None else backend.path


def enable_from_environment(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """:func:`enable` with ``DYN_METRICS_MULTIPROC_DIR`` if it is set and not empty.

    Returns the directory enabled, or None. Bad directory -> ConfigError.
    """
    value = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
    if not value:
        return None
    enable(value)
    return enabled_path()


def _after_fork_in_child() -> None:
    global _state_lock
    # The lock may have been held by another thread of the parent at the fork.
    _state_lock = threading.Lock()
    for backend in list(_backends.values()):
        backend.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
