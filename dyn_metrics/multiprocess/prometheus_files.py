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

A file that cannot be read (truncated, corrupt, a key that is not
prometheus_client's, an unknown type in its name) is skipped as a whole with
one ERROR log line per file name, and the other files are served: a bad file
never fails a scrape. A file that disappears between listing and reading is
skipped silently (``mark_process_dead`` removes files while others scrape).

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
from typing import Union

from ..model import COUNTER, GAUGE, HISTOGRAM, SUMMARY, Family, Labels, Sample

__all__ = ["PrometheusFilesReader", "float_to_go_string", "read_db_file"]

_log = logging.getLogger(__name__)

_INT = struct.Struct("i")
_TWO_DOUBLES = struct.Struct("dd")
_TYPES = frozenset((COUNTER, GAUGE, HISTOGRAM, SUMMARY))
_FOLDED_MODES = frozenset(
    ("min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent")
)
#: Parsed keys kept across scrapes; past this many the cache starts afresh.
_KEY_CACHE_LIMIT = 100_000

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


def read_db_file(path: str) -> list[tuple[str, float, float]]:
    """The ``(key, value, timestamp)`` entries of one file, in file order.

    Raises :class:`FileNotFoundError` when it is gone and :class:`ValueError`
    when it is not a whole prometheus_client file.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes, shorter than the 8-byte header")
    used = _INT.unpack_from(data, 0)[0]
    if used < 8 or used > len(data):
        raise ValueError(f"header says {used} bytes in use, the file has {len(data)}")
    entries: list[tuple[str, float, float]] = []
    pos = 8
    while pos < used:
        if pos + 4 > used:
            raise ValueError(f"entry at byte {pos} is cut short")
        length = _INT.unpack_from(data, pos)[0]
        padded = length + (8 - (length + 4) % 8)
        end = pos + 4 + padded + 16
        if length < 0 or end > used:
            raise ValueError(f"entry at byte {pos} runs past the {used} bytes in use")
        key = data[pos + 4 : pos + 4 + length].decode("utf-8")
        value, timestamp = _TWO_DOUBLES.unpack_from(data, pos + 4 + padded)
        entries.append((key, value, timestamp))
        pos = end
    return entries


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


def _sorted_labels(labels: Labels, last: str = "") -> Labels:
    """``labels`` sorted by name, the pair named ``last`` (``le``) at the end."""
    pairs = sorted(p for p in labels if p[0] != last)
    return tuple(pairs) + tuple(p for p in labels if p[0] == last)


class _Metric:
    """One metric's raw samples across files, before aggregation."""

    __slots__ = ("name", "help", "type", "mode", "samples")

    def __init__(self, name: str, help_text: str, type_word: str) -> None:
        self.name, self.help, self.type, self.mode = name, help_text, type_word, ""
        # (sample name, labels, value, timestamp)
        self.samples: list[tuple[str, Labels, float, float]] = []


class PrometheusFilesReader:
    """The aggregate of a prometheus_client multiprocess directory (module docstring).

    ``families()`` reads every ``*.db`` file of ``path`` anew; call it at
    each scrape. Safe to call from several threads.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.path = os.fspath(path)
        self._keys: dict[str, Key] = {}
        self._logged: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"PrometheusFilesReader({self.path!r})"

    def families(self) -> list[Family]:
        """The aggregated families, sorted by name; bad files logged and skipped."""
        metrics: dict[str, _Metric] = {}
        for path in sorted(glob.glob(os.path.join(glob.escape(self.path), "*.db"))):
            try:
                self._read_into(path, metrics)
            except FileNotFoundError:
                continue  # removed by mark_process_dead since the listing
            except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                token = object()
                if self._logged.setdefault(path, token) is token:
                    _log.error(
                        "prometheus_client multiprocess file %r skipped (logged once): %s",
                        path,
                        exc,
                    )
        return sorted((_aggregate(m) for m in metrics.values()), key=lambda f: f.name)

    def _read_into(self, path: str, metrics: dict[str, _Metric]) -> None:
        """Add one file's samples to ``metrics``, all or nothing."""
        parts = os.path.basename(path).split("_")
        type_word = parts[0]
        if type_word not in _TYPES:
            raise ValueError(f"unknown metric type {type_word!r} in the file name")
        if type_word == GAUGE and len(parts) < 3:
            raise ValueError("a gauge file is named gauge_<mode>_<pid>.db")
        entries = read_db_file(path)
        keys = self._keys
        if len(keys) > _KEY_CACHE_LIMIT:
            keys = self._keys = {}
        parsed = []
        for key, value, timestamp in entries:
            found = keys.get(key)
            if found is None:
                found = _parse_key(key)
                if type_word == HISTOGRAM:
                    for label, bound in found[2]:
                        if label == "le":
                            float(bound)  # a ValueError here skips the file, not the scrape
                keys[key] = found
            parsed.append((found, value, timestamp))
        # The whole file parsed: now it may join the aggregate.
        pid = parts[2][:-3] if type_word == GAUGE else ""
        for (metric_name, name, labels, help_text), value, timestamp in parsed:
            metric = metrics.get(metric_name)
            if metric is None:
                metric = metrics[metric_name] = _Metric(metric_name, help_text, type_word)
            if type_word == GAUGE:
                metric.mode = parts[1]
                labels = labels + (("pid", pid),)
            metric.samples.append((name, labels, value, timestamp))


def _aggregate(metric: _Metric) -> Family:
    """One metric's samples folded as prometheus_client folds them."""
    if metric.type == GAUGE:
        return _gauge(metric)
    # Counters, summaries, histogram _sum/_count: summed; buckets summed per bound.
    sums: dict[Labels, dict[str, float]] = {}
    buckets: dict[Labels, dict[float, float]] = {}
    for name, labels, value, _ in metric.samples:
        le = next((v for k, v in labels if k == "le"), None)
        if metric.type == HISTOGRAM and le is not None:
            without = tuple(p for p in labels if p[0] != "le")
            by_bound = buckets.setdefault(without, {})
            bound = float(le)
            by_bound[bound] = by_bound.get(bound, 0.0) + value
            sums.setdefault(without, {})
            continue
        by_name = sums.setdefault(labels, {})
        by_name[name] = by_name.get(name, 0.0) + value
    samples: list[Sample] = []
    for labels, by_name in sums.items():
        ordered = _sorted_labels(labels)
        if metric.type == HISTOGRAM:
            acc = 0.0
            for bound, value in sorted(buckets.get(labels, {}).items()):
                acc += value
                le_labels = ordered + (("le", float_to_go_string(bound)),)
                samples.append(Sample(metric.name + "_bucket", le_labels, acc))
            if labels in buckets:
                by_name[metric.name + "_count"] = acc
            for suffix in ("_sum", "_count"):
                if metric.name + suffix in by_name:
                    value = by_name[metric.name + suffix]
                    samples.append(Sample(metric.name + suffix, ordered, value))
            continue
        for name in sorted(by_name, key=lambda n: (n != metric.name, n.endswith("_count"), n)):
            samples.append(Sample(name, ordered, by_name[name]))
    name = metric.name
    if metric.type == COUNTER and samples and all(s.name == name + "_total" for s in samples):
        name += "_total"
    return Family(name, metric.type, metric.help, tuple(samples))


def _gauge(metric: _Metric) -> Family:
    mode = metric.mode
    values: dict[tuple[str, Labels], float] = {}
    latest: dict[tuple[str, Labels], float] = {}
    for name, labels, value, timestamp in metric.samples:
        if mode in _FOLDED_MODES:
            labels = tuple(p for p in labels if p[0] != "pid")
        key = (name, labels)
        if mode in ("min", "livemin"):
            if key not in values or value < values[key]:
                values[key] = value
        elif mode in ("max", "livemax"):
            if key not in values or value > values[key]:
                values[key] = value
        elif mode in ("sum", "livesum"):
            values[key] = values.get(key, 0.0) + value
        elif mode in ("mostrecent", "livemostrecent"):
            # prometheus_client starts from timestamp 0: a value written at
            # time 0 (never set) is not served.
            if latest.get(key, 0.0) < float(timestamp or 0):
                values[key] = value
                latest[key] = float(timestamp)
        else:  # all, liveall, and any other mode
            values[key] = value
    samples = tuple(
        Sample(name, _sorted_labels(labels), value)
        for (name, labels), value in sorted(values.items(), key=lambda kv: kv[0][1])
    )
    return Family(metric.name, GAUGE, metric.help, samples)
