"""``ProcessCollector``: CPU, memory, start time and file descriptors of a process, from /proc.

The families, their names, types, HELP strings and values are prometheus_client's
(``prometheus_client/process_collector.py``), read from the same files the same way:

* ``/proc/stat`` ``btime`` (boot time, seconds since the epoch);
* ``/proc/<pid>/stat``: utime, stime, starttime (in clock ticks, ``os.sysconf("SC_CLK_TCK")``),
  vsize (bytes) and rss (in pages of ``resource.getpagesize()``);
* ``/proc/<pid>/limits``: the soft "Max open files" limit;
* ``/proc/<pid>/fd/``: one entry per open descriptor.

What prometheus_client lets escape (a garbled file, a limits file without the open-files
line), this collector treats as an unreadable file: the group of families read from it is
left out, and ``collect()`` never raises.
"""

import logging
import os
from typing import Callable, Optional, Union

from ..errors import InvalidNameError, InvalidValueError
from ..model import COUNTER, GAUGE, METRIC_NAME_RE, Family, Sample

try:
    import resource

    _PAGESIZE = resource.getpagesize()
except ImportError:  # not Unix: prometheus_client's fallback
    _PAGESIZE = 4096

_log = logging.getLogger(__name__)

PidValue = Union[int, str]
Pid = Union[PidValue, Callable[[], PidValue]]

# (name after the prefix, type, help), in prometheus_client's order of collection:
# the four read from <pid>/stat, then the two read from <pid>/limits and <pid>/fd.
_STAT_FAMILIES = (
    ("virtual_memory_bytes", GAUGE, "Virtual memory size in bytes."),
    ("resident_memory_bytes", GAUGE, "Resident memory size in bytes."),
    ("start_time_seconds", GAUGE, "Start time of the process since unix epoch in seconds."),
    ("cpu_seconds_total", COUNTER, "Total user and system CPU time spent in seconds."),
)
_FD_FAMILIES = (
    ("open_fds", GAUGE, "Number of open file descriptors."),
    ("max_fds", GAUGE, "Maximum number of open file descriptors."),
)

# Fields of /proc/<pid>/stat counted from the first one after the command name, which
# ends at the last ")": field 3 (state) is index 0 (proc(5) numbers them from 1).
_UTIME, _STIME, _STARTTIME, _VSIZE, _RSS = 11, 12, 19, 20, 21


def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, TypeError, AttributeError, OSError):
        return 100.0  # prometheus_client's fallback


def _check_pid(pid: object) -> Optional[str]:
    """The /proc entry name for ``pid`` ("self" or decimal digits), or None when it is not one."""
    if isinstance(pid, bool) or not isinstance(pid, (int, str)):
        return None
    # prometheus_client strips the value (a pid read from a pid file ends in a newline).
    text = str(pid).strip()
    if text == "self" or (text.isascii() and text.isdigit()):
        return text
    return None


class ProcessCollector:
    """Standard process metrics of one process, read from /proc at each ``collect()``.

    ``namespace``, when set, prefixes every name with ``namespace + "_"``
    (``myapp_process_open_fds``), as prometheus_client does. ``pid`` is ``"self"``, a
    process id (``int`` or decimal ``str``, surrounding whitespace ignored), or a callable
    returning one, called at each ``collect()``. ``proc`` is the procfs mount point.

    Where the files cannot be read or parsed (not Linux, the process has gone, a callable
    ``pid`` that raises or returns something else) the families read from them are left
    out, down to an empty list; nothing raises. The first such failure of each kind is
    logged once per collector: unreadable files at DEBUG, a bad callable ``pid`` at WARNING.

    Raises ``InvalidNameError`` for a namespace that does not make valid metric names and
    ``InvalidValueError`` for a ``pid`` that is neither of the above. Never registers
    itself. ``collect()`` and ``describe()`` are thread-safe and re-entrant (no locks).
    """

    def __init__(
        self, namespace: str = "", pid: Pid = "self", proc: Union[str, "os.PathLike[str]"] = "/proc"
    ) -> None:
        if not isinstance(namespace, str) or (
            namespace and not METRIC_NAME_RE.fullmatch(namespace)
        ):
            raise InvalidNameError(
                f"namespace must be empty or a valid metric name, got {namespace!r}"
            )
        if not callable(pid) and _check_pid(pid) is None:
            raise InvalidValueError(
                f"pid must be 'self', a process id or a callable returning one, got {pid!r}"
            )
        self._prefix = f"{namespace}_process_" if namespace else "process_"
        self._pid = pid
        self._proc = os.fspath(proc)
        self._ticks = _clock_ticks()
        self._pagesize = _PAGESIZE
        # Boot time is read once; where it cannot be read yet, each collect() tries again.
        self._btime = self._boot_time()
        self._logged_unreadable = False
        self._logged_bad_pid = False

    def describe(self) -> list[Family]:
        """The six families ``collect()`` may produce, with no samples, in its order.

        For a registry to detect name clashes at registration; they are described even
        where /proc cannot be read, as the collector may read it later (another pid).
        """
        return [
            Family(self._prefix + name, type_word, help_text, ())
            for name, type_word, help_text in _STAT_FAMILIES + _FD_FAMILIES
        ]

    def collect(self) -> list[Family]:
        """The current families: CPU, memory and start time, then descriptors; never raises."""
        btime = self._btime or self._boot_time()
        if not btime:
            self._unreadable(os.path.join(self._proc, "stat"), "no btime")
            return []
        self._btime = btime
        pid = self._current_pid()
        if pid is None:
            return []
        base = os.path.join(self._proc, pid)
        families: list[Family] = []
        stat = self._read_stat(base, btime)
        if stat is not None:
            families.extend(self._families(_STAT_FAMILIES, stat))
        fds = self._read_fds(base)
        if fds is not None:
            families.extend(self._families(_FD_FAMILIES, fds))
        return families

    def _families(
        self, table: tuple[tuple[str, str, str], ...], values: tuple[Union[int, float], ...]
    ) -> list[Family]:
        out = []
        for (name, type_word, help_text), value in zip(table, values):
            full = self._prefix + name
            out.append(Family(full, type_word, help_text, (Sample(full, (), value),)))
        return out

    def _boot_time(self) -> float:
        """``btime`` of ``<proc>/stat``, or 0.0 when it cannot be read."""
        try:
            with open(os.path.join(self._proc, "stat"), "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        return float(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0.0

    def _current_pid(self) -> Optional[str]:
        value = self._pid
        if callable(value):
            try:
                value = value()
            except Exception:  # a user callable: log once, never fail the scrape
                if not self._logged_bad_pid:
                    self._logged_bad_pid = True
                    _log.warning("process collector pid callable failed", exc_info=True)
                return None
        pid = _check_pid(value)
        if pid is None and not self._logged_bad_pid:
            self._logged_bad_pid = True
            _log.warning(
                "process collector pid callable returned %r, expected 'self' or a process id",
                value,
            )
        return pid

    def _read_stat(self, base: str, btime: float) -> Optional[tuple[float, ...]]:
        """``(vsize, rss bytes, start time, cpu seconds)`` from ``<pid>/stat``, or None."""
        path = os.path.join(base, "stat")
        try:
            with open(path, "rb") as f:
                # The command name may hold spaces and ")": the fields start after the last ")".
                parts = f.read().rpartition(b")")[2].split()
            ticks = self._ticks
            return (
                float(parts[_VSIZE]),
                float(parts[_RSS]) * self._pagesize,
                float(parts[_STARTTIME]) / ticks + btime,
                float(parts[_UTIME]) / ticks + float(parts[_STIME]) / ticks,
            )
        except (OSError, ValueError, IndexError) as exc:
            self._unreadable(path, exc)
            return None

    def _read_fds(self, base: str) -> Optional[tuple[int, float]]:
        """``(open descriptors, soft limit)`` from ``<pid>/fd`` and ``<pid>/limits``, or None."""
        path = os.path.join(base, "limits")
        try:
            max_fds: Optional[float] = None
            with open(path, "rb") as f:
                for line in f:
                    if line.startswith(b"Max open file"):
                        max_fds = float(line.split()[3])
                        break
            if max_fds is None:
                raise ValueError("no 'Max open files' line")
            path = os.path.join(base, "fd")
            return len(os.listdir(path)), max_fds
        except (OSError, ValueError, IndexError) as exc:
            self._unreadable(path, exc)
            return None

    def _unreadable(self, path: str, reason: object) -> None:
        if not self._logged_unreadable:
            self._logged_unreadable = True
            _log.debug(
                "process collector cannot read %s (%s); leaving its metrics out", path, reason
            )
