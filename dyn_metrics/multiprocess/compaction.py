"""Retiring dead processes' files and folding them into one aggregate file.

:func:`mark_process_dead` renames a dead process's ``dm_<pid>.dmdb`` to its
retired name and compacts; :func:`compact` folds every retired file into
``dm_aggregate.dmdb``, so a directory holds the live processes' files, the
aggregate and the lock, however many processes came and went.

Compaction, under an exclusive ``fcntl.flock`` on ``dm.lock`` (readers take
it shared, so they see a directory before or after a compaction):

1. read the aggregate (its entries and the names of the files folded into it);
2. read every retired file it does not list, dropping ``live`` gauge modes;
3. fold them with :mod:`.aggregate`'s rules (counters, buckets, summary sums
   and counts added per key; ``sum`` gauges added, ``max``/``min`` folded,
   ``mostrecent`` by the latest timestamp, ``all`` kept per pid with a
   ``pid`` label);
4. write the new aggregate atomically (:func:`layout.write_file`) listing as
   folded the files just folded and those listed before that still exist;
5. delete the folded files (and any temporary file a killed compactor left).

A compactor stopped anywhere leaves either the old aggregate with the
retired files unfolded (step 4 not done: they are still read) or the new
aggregate listing them (readers skip them; the next compaction deletes them
and, once they are gone, drops them from the list): nothing is counted twice
or lost. A retired file that cannot be read or folded for any reason (not a
regular file, corrupt, any exception) is logged once per name and kind of
problem, left in place and not folded; the others still are. Files are opened
without blocking (a FIFO named like a retired file never hangs a compaction).

The exclusive lock is waited for at most ``collector.LOCK_TIMEOUT`` seconds;
past that, or nested in this thread's own compaction (a signal handler), the
retired files are left for the next compaction (logged; readers still read
them), since compacting without the lock could lose values.
"""

import logging
import os
import time
from typing import Optional

from . import layout, plans
from .aggregate import Scrape, SeriesTable
from .collector import LOCK_TIMEOUT, PathLike, ProcessFileReader, locked, resolve_directory

__all__ = ["compact", "mark_process_dead"]

_log = logging.getLogger(__name__)

#: prometheus_client's gauge modes whose files ``mark_process_dead`` deletes.
_LIVE_GAUGE_MODES = ("liveall", "livemin", "livemax", "livesum", "livemostrecent")
_logged: dict[str, object] = {}
_TEMPORARY = layout.TEMPORARY_PREFIX


def mark_process_dead(pid: int, path: Optional[PathLike] = None) -> None:
    """Retire the files of process ``pid`` (dead) in ``path`` and compact the directory.

    ``path`` None: :func:`~.collector.resolve_directory`'s order. dyn_metrics'
    ``dm_<pid>.dmdb`` is renamed to its retired name and folded into the
    aggregate; prometheus_client's ``live`` gauge files of that pid are
    deleted, as its own ``mark_process_dead`` does. A pid without files is
    not an error.
    """
    directory = resolve_directory(path)
    with locked(directory, exclusive=True) as held:
        live = os.path.join(directory, layout.process_file_name(pid))
        retired = os.path.join(directory, layout.retired_file_name(pid, time.time_ns()))
        try:
            os.rename(live, retired)
        except FileNotFoundError:
            pass
        for mode in _LIVE_GAUGE_MODES:
            try:
                os.remove(os.path.join(directory, f"gauge_{mode}_{pid}.db"))
            except FileNotFoundError:
                pass
        _compact_if(held, directory)


def compact(path: Optional[PathLike] = None) -> None:
    """Fold every retired file of ``path`` into the aggregate file (module docstring)."""
    directory = resolve_directory(path)
    with locked(directory, exclusive=True) as held:
        _compact_if(held, directory)


def _compact_if(held: bool, directory: str) -> None:
    if held:
        _compact_locked(directory)
        return
    token = object()
    if _logged.setdefault(f"unlocked:{directory}", token) is token:
        _log.warning(
            "multiprocess directory %r not compacted: its lock was not taken within %s s or "
            "a compaction is in progress in this thread (logged once)",
            directory,
            LOCK_TIMEOUT,
        )


def _log_once(path: str, problem: BaseException) -> None:
    token = object()
    if _logged.setdefault(f"{path}\0{type(problem).__name__}", token) is token:
        _log.error("multiprocess file %r not compacted (logged once): %s", path, problem)


def _compact_locked(directory: str) -> None:
    names = set(os.listdir(directory))
    # Under the exclusive lock a temporary file is a killed compactor's: never renamed.
    _delete(directory, [name for name in names if name.startswith(_TEMPORARY)])
    reader = ProcessFileReader(SeriesTable())
    scrape = Scrape(reader.series)
    folded_before: list[str] = []
    aggregate = os.path.join(directory, layout.AGGREGATE)
    if layout.AGGREGATE in names:
        try:
            data = layout.read_bytes(aggregate)
            plan, values, stamps, folded_before = reader.read(layout.AGGREGATE, data)
        except Exception as exc:
            # Rewriting it would lose what it holds: leave the directory as it is.
            _log_once(aggregate, exc)
            return
        plans.add(scrape, plan, values, stamps, None, "dyn_metrics", dead=True)
    listed = set(folded_before)
    retired = []
    for name in names:
        pid_stamp = layout.retired_stamp(name)
        if pid_stamp is not None and name not in listed:
            retired.append((pid_stamp[0], pid_stamp[1], name))
    folding: list[str] = []
    for pid, _, name in sorted(retired):
        path = os.path.join(directory, name)
        try:
            plan, values, stamps, _ = reader.read(name, layout.read_bytes(path))
        except FileNotFoundError:
            continue  # gone (removed by hand): nothing to fold
        except Exception as exc:  # one bad file must not stop the others
            _log_once(path, exc)
            continue
        # Read and decoded whole before being added: a bad file adds nothing.
        plans.add(scrape, plan, values, stamps, str(pid), "dyn_metrics", dead=True)
        folding.append(name)
    leftover = [name for name in folded_before if name in names]
    if not folding and len(leftover) == len(folded_before):
        _delete(directory, leftover)  # an earlier compaction stopped before deleting them
        return
    kept = leftover + folding
    record = [(layout.Key("", layout.FOLDED, "", "", name, ()), 0.0, 0.0) for name in kept]
    layout.write_file(aggregate, scrape.entries() + record)
    _delete(directory, kept)


def _delete(directory: str, names: list[str]) -> None:
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
