"""Turning multiprocess mode on: :func:`enable`, :func:`enable_from_environment`, forks.

``enable(path)`` checks the directory, creates this process's file in it
(``writer.py``) and installs the cell backend (``metrics/backends.py``): every
metric created from then on keeps its values in the file (``values.py``),
where any process can read them. Metrics created before ``enable`` stay in
process memory for good, so call it before creating any: at startup, or by
setting ``DYN_METRICS_MULTIPROC_DIR`` before ``import dyn_metrics``.

Forks. A child made by ``os.fork()`` (``multiprocessing``'s fork start
method, gunicorn's workers) must not write into its parent's file: an
``os.register_at_fork`` hook creates the child's own ``dm_<pid>.db`` at once
and places every live cell in it (see ``values.py`` for what starts at 0).
This costs the child one file and one entry per existing series at fork time
and nothing afterwards, where checking the pid on each update would cost
every update. If the child's file cannot be created, the cells go on in
private memory (logged once): the child's values are then not aggregated.

:func:`disable` (for tests) uninstalls the backend: metrics created afterwards
stay in process memory; those created before keep writing their file.
"""

import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Optional, Union

from ..errors import ConfigError
from ..metrics import backends
from ..metrics.counter import Counter, CounterVec, IntCounter, IntCounterVec
from ..metrics.gauge import Gauge, GaugeVec, IntGauge, IntGaugeVec
from ..metrics.histogram import HistogramFamily
from ..metrics.info import InfoFamily
from ..metrics.stateset import StateSetFamily
from ..metrics.summary import SummaryFamily
from ..model import COUNTER, GAUGE, HISTOGRAM, SUMMARY, Labels
from . import layout
from .grouped_values import FileHistogramCell, FileInfoCell, FileStateSetCell, FileSummaryCell
from .values import (
    FileCell,
    FileCounterCell,
    FileGaugeCell,
    FileIntCounterCell,
    FileIntGaugeCell,
)
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
    """The cell backend of multiprocess mode: every new child's cell lives in ``file``."""

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
        """The cell of child ``key`` of ``family``, its entries in this process's file."""
        cell = _make_cell(family, key, self.file)
        self.cells.add(cell)
        return cell

    def forked(self) -> None:
        """In a forked child: a file of its own, every live cell placed in it."""
        cells = list(self.cells)
        try:
            self.file = ProcessFile(self.path)
        except OSError as exc:
            _log.error(
                "multiprocess mode: the forked process %d cannot create its file in %r (%s); "
                "its metrics stay in its memory",
                os.getpid(),
                self.path,
                exc,
            )
            self.file = _private_file()
        for cell in cells:
            cell._reset(self.file)


def _private_file() -> ProcessFile:
    """A file nobody reads, for a forked child that cannot create its own (memory only)."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="dm-private-")
    file = ProcessFile(directory)
    os.unlink(file.path)
    os.rmdir(directory)
    return file


def _make_cell(family: object, key: tuple[str, ...], file: ProcessFile) -> FileCell:
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
            return _key(name, GAUGE, help, unit, name, labels, _LIVEALL)

        return FileInfoCell(file, family._keys, key_of)
    if isinstance(family, StateSetFamily):
        keys = [
            _key(name, GAUGE, help, unit, name, labels, _LIVEALL)
            for labels in family._state_pairs(pairs)
        ]
        return FileStateSetCell(file, keys, family._states)
    mode: str = family._multiprocess_mode  # type: ignore[attr-defined]  # a gauge
    keys = [_key(name, GAUGE, help, unit, name, pairs, mode)]
    gauge = FileIntGaugeCell if isinstance(family, (IntGauge, IntGaugeVec)) else FileGaugeCell
    return gauge(file, keys, stamp=mode.endswith("mostrecent"))


_state_lock = threading.Lock()
_backend: Optional[FileBackend] = None


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
        try:
            file = ProcessFile(real)
        except OSError as exc:
            raise ConfigError(
                f"multiprocess directory {os.fspath(path)!r} is not writable: {exc}"
            ) from None
        _backend = FileBackend(real, file)
        backends.install(_backend)


def disable() -> None:
    """Stop multiprocess mode for metrics created from now on (for tests and forks).

    Metrics created while it was on keep writing their file.
    """
    global _backend
    with _state_lock:
        if _backend is not None:
            backends.install(None)
            _backend.file.close()
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
    backend = _backend
    if backend is not None:
        backend.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
