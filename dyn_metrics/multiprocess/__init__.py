"""Multiprocess mode: metrics that several processes write and any one of them serves.

With ``DYN_METRICS_MULTIPROC_DIR`` set (read at ``import dyn_metrics``) or
:func:`enable` called before the metrics are created, every process writes
its values to its own memory-mapped file ``dm_<pid>.dmdb`` in that directory
(``writer.py``, ``values.py``; the layout in ``layout.py``), on every update
and without a system call. Any process serves the aggregate:
:class:`MultiProcessCollector` registered on the registry it serves reads
every process's file, and prometheus_client's ``.db`` files in the same
directory (``prometheus_files.py``), aggregating as prometheus_client does
(``aggregate.py``). :func:`mark_process_dead` retires a dead process's file
and :func:`compact` folds retired files into one aggregate file, so the
directory holds one file per live process, whatever the restarts.
"""

from .collector import MultiProcessCollector
from .compaction import compact, mark_process_dead
from .mode import disable, enable, enable_from_environment, enabled_path
from .prometheus_files import PrometheusFilesReader

__all__ = [
    "MultiProcessCollector",
    "PrometheusFilesReader",
    "compact",
    "disable",
    "enable",
    "enable_from_environment",
    "enabled_path",
    "mark_process_dead",
]
