"""Reading the ``.db`` files prometheus_client writes in ``PROMETHEUS_MULTIPROC_DIR``.

vLLM and SGLang run prometheus_client in multiprocess mode: each process
writes its values to memory-mapped files in one directory, and whoever serves
``/metrics`` aggregates them. :class:`PrometheusFilesReader` does that
aggregation without prometheus_client, with the same results as its
``MultiProcessCollector`` (``prometheus_client/multiprocess.py``, 0.26).

The file layout (``prometheus_client/mmap_dict.py``): a 4-byte native int,
the number of bytes in use, 4 bytes of padding, then entries of a 4-byte
length, that many bytes of UTF-8 key padded so the entry stays 8-byte
aligned, and two doubles, value and timestamp. A key is the JSON
``[metric_name, sample_name, {label: value}, help]``. The file name gives the
type and process: ``counter_<pid>.db``, ``histogram_<pid>.db``,
``summary_<pid>.db``, ``gauge_<mode>_<pid>.db``.

Aggregation, as prometheus_client's:

* counters, summaries (``_sum``, ``_count``) and histograms are summed over
  processes; histogram buckets are summed per bound and made cumulative, and
  ``_count`` is the ``+Inf`` bucket;
* gauges by the mode in the file name: ``all`` and ``liveall`` keep one
  series per process with a ``pid`` label; ``min``/``livemin``,
  ``max``/``livemax``, ``sum``/``livesum`` fold the processes into one series;
  ``mostrecent``/``livemostrecent`` keep the value with the latest timestamp
  (a value never written, timestamp 0, is not served); an unknown mode is
  treated as ``all``. The ``live`` modes differ only in that
  ``mark_process_dead`` deletes their files.

The aggregation itself is :mod:`.aggregate`'s, shared with
:class:`~.collector.MultiProcessCollector` (which reads these files beside
dyn_metrics' own through :meth:`PrometheusFilesReader.add_to`); keys are
parsed once per distinct key bytes and kept across scrapes. dyn_metrics'
own files (``*.dmdb``, not globbed; any ``dm_*.db``) are left alone.

A file that cannot be read for any reason (not a regular file, truncated,
corrupt, a key that is not prometheus_client's, an unknown type in its name:
any exception) is skipped as a whole with one ERROR log line per file name
and kind of problem, and the other files are served: a bad file never fails
a scrape. Files are opened without blocking and only regular files are read,
so a FIFO or device named ``*.db`` never hangs one. A file that disappears
between listing and reading is skipped silently (``mark_process_dead``
removes files while others scrape).

The families follow :mod:`dyn_metrics.model`: a counter family is named as
its ``_total`` samples, labels are sorted by name with ``le`` last, histogram
samples are the buckets by bound, then ``_sum``, then ``_count``.
"""

import glob
import json
import logging
import math
import os
import struct
import threading
from collections.abc import Callable
from typing import Any, Optional, Union

from ..model import COUNTER, GAUGE, HISTOGRAM, SUMMARY, Family, Labels
from . import layout, plans
from .aggregate import Entry, Scrape, SeriesTable
from .plans import Plan

__all__ = ["PrometheusFilesReader", "float_to_go_string", "read_db_file"]

_log = logging.getLogger(__name__)

_INT = struct.Struct("i")
_TWO_DOUBLES = struct.Struct("dd")
_TYPES = frozenset((COUNTER, GAUGE, HISTOGRAM, SUMMARY))
#: The source name conflicts are logged under.
SOURCE = "prometheus_client"

#: A parsed key: (metric name, sample name, sorted label pairs, help).
Key = tuple[str, str, Labels, str]


def float_to_go_string(value: float) -> str:
    """prometheus_client's ``floatToGoString``: how it spells a bucket bound."""
    d = float(value)
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if d != d:
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    # Go switches to exponents sooner than Python (prometheus_client's comment).
    if d > 0 and dot > 6:
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _entries(data: bytes) -> list[tuple[bytes, float, float]]:
    """The ``(key bytes, value, timestamp)`` entries of a whole file's bytes (ValueError if cut)."""
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes, shorter than the 8-byte header")
    used = _INT.unpack_from(data, 0)[0]
    if used < 8 or used > len(data):
        raise ValueError(f"header says {used} bytes in use, the file has {len(data)}")
    entries: list[tuple[bytes, float, float]] = []
    append, unpack_int, unpack_two = entries.append, _INT.unpack_from, _TWO_DOUBLES.unpack_from
    pos = 8
    while pos < used:
        if pos + 4 > used:
            raise ValueError(f"entry at byte {pos} is cut short")
        length = unpack_int(data, pos)[0]
        padded = length + (8 - (length + 4) % 8)
        end = pos + 4 + padded + 16
        if length < 0 or end > used:
            raise ValueError(f"entry at byte {pos} runs past the {used} bytes in use")
        value, timestamp = unpack_two(data, pos + 4 + padded)
        append((data[pos + 4 : pos + 4 + length], value, timestamp))
        pos = end
    return entries


def read_db_file(path: str) -> list[tuple[str, float, float]]:
    """The ``(key, value, timestamp)`` entries of one file, in file order.

    Raises :class:`FileNotFoundError` when it is gone, another OSError when it
    cannot be read or is not a regular file, and :class:`ValueError` when it is
    not a whole prometheus_client file.
    """
    data = layout.read_bytes(path)
    return [(key.decode("utf-8"), value, ts) for key, value, ts in _entries(data)]


def _parse_key(key: str) -> Key:
    """A file key as ``(metric, sample name, sorted labels, help)``; ValueError if foreign."""
    parsed = json.loads(key)
    if not (isinstance(parsed, list) and len(parsed) == 4):
        raise ValueError(f"key {key!r} is not [metric, name, labels, help]")
    metric, name, labels, help_text = parsed
    if not (
        isinstance(metric, str)
        and isinstance(name, str)
        and isinstance(help_text, str)
        and isinstance(labels, dict)
        and all(isinstance(v, str) for v in labels.values())
    ):
        raise ValueError(f"key {key!r} is not [metric, name, labels, help] of strings")
    return metric, name, tuple(sorted(labels.items())), help_text


class PrometheusFilesReader:
    """The aggregate of a prometheus_client multiprocess directory (module docstring).

    ``families()`` reads every ``*.db`` file of ``path`` anew; call it at
    each scrape. dyn_metrics' own files are not read. Safe to call from
    several threads and from signal handlers: a call that finds another in
    progress reads afresh, without the caches, rather than wait.
    """

    def __init__(
        self, path: Union[str, "os.PathLike[str]"], series: Optional[SeriesTable] = None
    ) -> None:
        self.path = os.fspath(path)
        #: The series numbering; a :class:`MultiProcessCollector` shares its own.
        self.series = SeriesTable() if series is None else series
        # {file name prefix ("counter", "gauge_all", ...): {key bytes: entry}}
        self._keys: dict[str, dict[object, Entry]] = {}
        self._logged: dict[str, object] = {}
        self._lock = threading.Lock()
        # {path: (used, struct unpack of the whole file, its keys, their entries' plan)}
        self._shapes: dict[
            str, tuple[int, Callable[[bytes], tuple[Any, ...]], tuple[Any, ...], Plan]
        ] = self.series.cache()

    def __repr__(self) -> str:
        return f"PrometheusFilesReader({self.path!r})"

    def families(self) -> list[Family]:
        """The aggregated families, sorted by name; bad files logged and skipped."""
        if not self._lock.acquire(False):
            fresh = PrometheusFilesReader(self.path)
            fresh._logged = self._logged
            scrape = Scrape(fresh.series, self._logged)
            fresh.add_to(scrape)
            return scrape.families()
        try:
            self.series.trim()
            scrape = Scrape(self.series, self._logged)
            self.add_to(scrape)
            return scrape.families()
        finally:
            self._lock.release()

    def add_to(self, scrape: Scrape) -> None:
        """Add every prometheus_client file of the directory to ``scrape`` (same series table)."""
        paths = sorted(glob.glob(os.path.join(glob.escape(self.path), "*.db")))
        if any(path not in paths for path in self._shapes):
            listed = set(paths)
            for gone in [path for path in self._shapes if path not in listed]:
                del self._shapes[gone]  # in place: the series table empties this dict
        for path in paths:
            if os.path.basename(path).startswith("dm_"):
                continue  # dyn_metrics' own files
            try:
                self._read_into(path, scrape)
            except FileNotFoundError:
                continue  # removed by mark_process_dead since the listing
            except Exception as exc:  # a bad file never fails a scrape
                token = object()
                if self._logged.setdefault(f"{path}\0{type(exc).__name__}", token) is token:
                    _log.error(
                        "prometheus_client multiprocess file %r skipped (logged once): %s",
                        path,
                        exc,
                    )

    def _read_into(self, path: str, scrape: Scrape) -> None:
        """Add one file's samples to ``scrape``, all or nothing."""
        parts = os.path.basename(path).split("_")
        type_word = parts[0]
        if type_word not in _TYPES:
            raise ValueError(f"unknown metric type {type_word!r} in the file name")
        if type_word == GAUGE and len(parts) < 3:
            raise ValueError("a gauge file is named gauge_<mode>_<pid>.db")
        mode = parts[1] if type_word == GAUGE else ""
        prefix = type_word + "_" + mode
        keys = self._keys.get(prefix)
        if keys is None:
            keys = self._keys[prefix] = self.series.cache()
        pid = parts[2][:-3] if type_word == GAUGE else None
        data = layout.read_bytes(path)
        shape = self._shapes.get(path)
        if shape is not None and len(data) >= shape[0] and _INT.unpack_from(data)[0] == shape[0]:
            # Same size as last time: one struct call reads every key and value;
            # equal keys (a process updating in place) mean the same entries.
            got = shape[1](data)
            if got[0::3] == shape[2]:
                plans.add(scrape, shape[3], got[1::3], got[2::3], pid, SOURCE)
                return
        raw = _entries(data)
        found: list[Entry] = []
        formats = ["=8x"]
        for key, _, _ in raw:
            entry = keys.get(key)
            if entry is None:
                entry = keys[key] = self._entry(key, type_word, mode)
            found.append(entry)
            length = len(key)
            formats.append(f"4x{length}s{8 - (length + 4) % 8}x2d")
        # The whole file parsed: now it may join the aggregate.
        used = _INT.unpack_from(data)[0]
        unpack = struct.Struct("".join(formats)).unpack_from
        plan = Plan(found)
        self._shapes[path] = (used, unpack, tuple(key for key, _, _ in raw), plan)
        values = [value for _, value, _ in raw]
        stamps = [stamp for _, _, stamp in raw]
        plans.add(scrape, plan, values, stamps, pid, SOURCE)

    def _entry(self, key: bytes, type_word: str, mode: str) -> Entry:
        metric, name, labels, help_text = _parse_key(key.decode("utf-8"))
        # A counter family is named as its _total samples (dyn_metrics.model).
        family = metric + "_total" if type_word == COUNTER and name == metric + "_total" else metric
        return self.series.entry(family, type_word, help_text, "", mode, name, labels)
