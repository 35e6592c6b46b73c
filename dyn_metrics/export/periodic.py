"""The periodic export driver: one named daemon thread calling an export on an interval.

:class:`PeriodicExporter` drives any ``export()`` callable that returns a
result with a ``success`` attribute (the OTLP and remote-write exporters'
``ExportResult``). Its contract:

* **One thread**, a daemon named ``dyn-metrics-<name>``, started by
  :meth:`~PeriodicExporter.start` (idempotent). It ticks on
  ``stop_event.wait(delay)``: the starts of two exports are ``interval``
  seconds apart; a tick missed because an export ran long is skipped, never
  queued (:attr:`~PeriodicExporter.missed_ticks` counts them).
* **No overlap.** Every export, background or explicit, runs under one export
  lock. :meth:`~PeriodicExporter.export_now` called while the thread exports
  waits for that export to finish, then runs its own, so its result always
  covers values recorded before the call.
* **Shutdown** (:meth:`~PeriodicExporter.shutdown`) sets the stop event, which
  also ends any wait made through :meth:`~PeriodicExporter.wait` (give it to a
  ``Backoff`` as its ``sleep``, and stop retrying once
  :attr:`~PeriodicExporter.stopping` is true), joins the thread, runs one final
  export and returns whether it succeeded. A driver never started in this
  process has nothing to flush: shutdown then exports nothing and returns True.
  Later calls return the first call's answer.
* **Nothing escapes the thread.** An export that raises counts as a failure;
  failures are logged once per state change (ok -> failed -> raised, and the
  recovery), never once per tick.
* **Fork.** In a child process (``os.register_at_fork``) the copy of a running
  driver is stopped (``state == "forked"``): the parent's thread does not exist
  there. Its locks and stop event are new. Calling ``start()`` in the child
  starts a thread of the child's own; ``shutdown()`` there exports nothing
  unless the child started it.

Counters (:attr:`~PeriodicExporter.last_result`,
:attr:`~PeriodicExporter.consecutive_failures`,
:attr:`~PeriodicExporter.last_success_time`) are updated by background and
explicit exports alike. ``clock`` (monotonic seconds, for ticks), ``time``
(wall seconds, for ``last_success_time``) and ``event_factory`` (the stop
event) are injectable, so tests tick without sleeping.
"""

import logging
import math
import os
import threading
import time as _time
import weakref
from types import TracebackType
from typing import Any, Callable, Generic, Literal, Optional, Protocol, TypeVar

from ..errors import InvalidValueError

__all__ = ["ExportOutcome", "PeriodicExporter", "StopEvent"]

_log = logging.getLogger(__name__)


class ExportOutcome(Protocol):
    """What an export returns: anything with a boolean ``success``."""

    @property
    def success(self) -> bool: ...


class StopEvent(Protocol):
    """The part of :class:`threading.Event` the driver uses (tests supply fakes)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: Optional[float] = None) -> bool: ...


R = TypeVar("R", bound=ExportOutcome)
State = Literal["new", "running", "forked", "shut down"]

# Every live driver, so one fork handler can reset the children's copies.
_DRIVERS: "weakref.WeakSet[PeriodicExporter[Any]]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for driver in list(_DRIVERS):
        try:
            driver._reset_after_fork()
        except Exception:  # a fork handler must not fail the child's start
            _log.exception("resetting exporter %r after fork failed", driver.name)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class PeriodicExporter(Generic[R]):
    """Call ``export()`` every ``interval`` seconds in a named daemon thread.

    ``export`` takes no argument and returns an :class:`ExportOutcome`;
    ``interval`` is a positive finite number of seconds; ``name`` (non-empty)
    names the thread ``dyn-metrics-<name>``. ``on_error``, when given, turns an
    exception raised by ``export`` into a result (stored as ``last_result``;
    ``export_now`` returns it instead of raising). Bad arguments raise
    :class:`~dyn_metrics.errors.InvalidValueError`.
    """

    def __init__(
        self,
        export: Callable[[], R],
        interval: float,
        *,
        name: str,
        on_error: Optional[Callable[[BaseException], R]] = None,
        clock: Callable[[], float] = _time.monotonic,
        time: Callable[[], float] = _time.time,
        event_factory: Callable[[], StopEvent] = threading.Event,
    ) -> None:
        if not callable(export):
            raise InvalidValueError(f"export must be callable, got {export!r}")
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not math.isfinite(interval)
            or interval <= 0
        ):
            raise InvalidValueError(
                f"interval must be a positive finite number of seconds, got {interval!r}"
            )
        if not isinstance(name, str) or not name or name != name.strip():
            raise InvalidValueError(f"name must be a non-empty string, got {name!r}")
        self._export = export
        self._interval = float(interval)
        self._name = name
        self._on_error = on_error
        self._clock = clock
        self._time = time
        self._event_factory = event_factory
        self._last_result: Optional[R] = None
        self._last_error: Optional[BaseException] = None
        self._consecutive_failures = 0
        self._last_success_time: Optional[float] = None
        self._export_count = 0
        self._missed_ticks = 0
        # The kind of the last outcome ("ok", "failed", "raised <Type>"): logs fire on changes.
        self._outcome_kind = "ok"
        self._shutdown_result: Optional[bool] = None
        self._state: State = "new"
        self._started_here = False
        self._init_sync()
        _DRIVERS.add(self)

    def _init_sync(self) -> None:
        # RLock: shutdown() may be called from a signal handler interrupting start().
        self._state_lock = threading.RLock()
        self._export_lock = threading.Lock()
        self._exporting: Optional[int] = None  # ident of the thread holding the export lock
        self._stop = self._event_factory()
        self._shutdown_done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- read-only state ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def thread_name(self) -> str:
        """``dyn-metrics-<name>``."""
        return f"dyn-metrics-{self._name}"

    @property
    def state(self) -> State:
        """``new``, ``running``, ``forked`` (a stopped copy in a child) or ``shut down``."""
        return self._state

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def stop_event(self) -> StopEvent:
        """Set by shutdown. Read it at each use: a fork replaces it in the child."""
        return self._stop

    @property
    def stopping(self) -> bool:
        """True once shutdown began: an export should stop retrying."""
        return self._stop.is_set()

    @property
    def last_result(self) -> Optional[R]:
        """The result of the latest export (background or explicit), None before any."""
        return self._last_result

    @property
    def last_error(self) -> Optional[BaseException]:
        """The exception of the latest export if it raised, else None."""
        return self._last_error

    @property
    def consecutive_failures(self) -> int:
        """Failed exports (unsuccessful or raising) since the last success."""
        return self._consecutive_failures

    @property
    def last_success_time(self) -> Optional[float]:
        """Wall-clock seconds (``time()``) at the end of the latest successful export."""
        return self._last_success_time

    @property
    def export_count(self) -> int:
        """Exports run so far, background and explicit."""
        return self._export_count

    @property
    def missed_ticks(self) -> int:
        """Ticks skipped because an export was still running when they came."""
        return self._missed_ticks

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True at once if shutdown began (a backoff sleep)."""
        return self._stop.wait(max(0.0, seconds))

    def start(self) -> None:
        """Start the thread; a no-op if running. After shutdown, logs a warning and does nothing."""
        with self._state_lock:
            if self._state == "running":
                return
            if self._state == "shut down":
                _log.warning("exporter %r is shut down; start() ignored", self._name)
                return
            thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread = thread
            self._state = "running"
            self._started_here = True
            thread.start()

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        """Stop the thread, run one final export, return whether it succeeded.

        ``timeout`` (seconds, None = unbounded) bounds the wait for the thread
        and for a running export; if it passes first, no final export is made
        and False is returned. A driver not started in this process exports
        nothing and returns True. Idempotent: later calls return the first's
        answer (waiting up to ``timeout`` for it if it is still running).
        """
        deadline = None if timeout is None else _time.monotonic() + max(0.0, timeout)
        with self._state_lock:
            if self._state == "shut down":
                first = False
            else:
                first = True
                started = self._started_here
                self._state = "shut down"
                self._stop.set()
                thread = self._thread
        if not first:
            if not self._shutdown_done.wait(_remaining(deadline)):
                return False
            return bool(self._shutdown_result)
        try:
            ok = self._final_export(started, thread, deadline)
        except BaseException:
            ok = False
            raise
        finally:
            self._shutdown_result = ok
            self._shutdown_done.set()
        return ok

    def _final_export(
        self, started: bool, thread: Optional[threading.Thread], deadline: Optional[float]
    ) -> bool:
        if self._exporting == threading.get_ident():
            # Called from inside an export (a signal handler, or the export itself): waiting
            # for the lock or for a thread queued on it would deadlock; exporting would overlap.
            _log.warning("exporter %r: shutdown inside an export; no final export", self._name)
            return False
        if thread is not None and thread is not threading.current_thread():
            thread.join(_remaining(deadline))
        if not started:
            return True
        remaining = _remaining(deadline)
        if not self._export_lock.acquire(timeout=-1 if remaining is None else remaining):
            _log.warning(
                "exporter %r: an export still runs after the shutdown timeout; no final export",
                self._name,
            )
            return False
        try:
            result = self._export_locked(background=True)
        finally:
            self._release()
        return result is not None and bool(result.success)

    def __enter__(self) -> "PeriodicExporter[R]":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.shutdown()

    def export_now(self) -> R:
        """Export at once in the calling thread, after any export in progress; return the result.

        Works in every state. If ``export`` raises, the exception is counted
        and re-raised, unless ``on_error`` turns it into a result.
        """
        self._export_lock.acquire()
        try:
            self._exporting = threading.get_ident()
            result = self._export_locked(background=False)
        finally:
            self._release()
        assert result is not None  # background=False re-raises instead of returning None
        return result

    def force_flush(self, timeout: Optional[float] = None) -> bool:
        """:meth:`export_now` waiting at most ``timeout`` for a running export; True on success.

        Never raises for an exception of ``export`` (it counts as a failure)."""
        if not self._export_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            self._exporting = threading.get_ident()
            result = self._export_locked(background=True)
        finally:
            self._release()
        return result is not None and bool(result.success)

    def _release(self) -> None:
        self._exporting = None
        self._export_lock.release()

    def _export_locked(self, *, background: bool) -> Optional[R]:
        """One export with the export lock held; bookkeeping and logging included.

        Returns None when ``export`` raised without ``on_error`` (background
        only: an explicit call re-raises).
        """
        self._exporting = threading.get_ident()
        self._export_count += 1
        try:
            result = self._export()
        except BaseException as e:
            converted = self._convert(e)
            self._record_failure(converted, e)
            if converted is not None:
                return converted
            if background and isinstance(e, Exception):
                return None
            # An explicit caller sees its error; SystemExit and the like are never swallowed.
            raise
        if bool(getattr(result, "success", False)):
            self._last_result, self._last_error = result, None
            self._consecutive_failures = 0
            self._last_success_time = self._time()
            if self._outcome_kind != "ok":
                _log.info("exporter %r: export succeeded again", self._name)
                self._outcome_kind = "ok"
        else:
            self._record_failure(result, None)
        return result

    def _convert(self, error: BaseException) -> Optional[R]:
        if self._on_error is None or not isinstance(error, Exception):
            return None
        try:
            return self._on_error(error)
        except Exception:
            _log.exception("exporter %r: on_error raised", self._name)
            return None

    def _record_failure(self, result: Optional[R], error: Optional[BaseException]) -> None:
        if result is not None:
            self._last_result = result
        self._last_error = error
        self._consecutive_failures += 1
        kind = "failed" if error is None else f"raised {type(error).__name__}"
        if kind == self._outcome_kind:
            return
        self._outcome_kind = kind
        if error is not None:
            _log.error(
                "exporter %r: export raised (further failures of this kind not logged)",
                self._name,
                exc_info=(type(error), error, error.__traceback__),
            )
        else:
            detail = getattr(result, "error_message", None) or result
            _log.warning(
                "exporter %r: export failed: %s (further failures not logged until a change)",
                self._name,
                detail,
            )

    def _run(self) -> None:
        stop = self._stop
        try:
            next_tick = self._clock() + self._interval
            while not stop.is_set():
                if stop.wait(max(0.0, next_tick - self._clock())):
                    break
                with self._export_lock:
                    if stop.is_set():  # shutdown came while we waited for export_now
                        break
                    try:
                        self._export_locked(background=True)
                    finally:
                        self._exporting = None
                next_tick += self._interval
                now = self._clock()
                if now >= next_tick:
                    # The export outlasted one or more ticks: skip them, keep the grid.
                    missed = int((now - next_tick) // self._interval) + 1
                    self._missed_ticks += missed
                    next_tick += missed * self._interval
        except BaseException:  # the last resort: the thread must end quietly, logged
            _log.exception("exporter %r: export thread stopped by an error", self._name)

    def _reset_after_fork(self) -> None:
        """In a fork child: new locks and stop event; a running copy becomes ``forked``."""
        self._init_sync()
        self._started_here = False
        if self._state == "running":
            self._state = "forked"
        elif self._state == "shut down":
            # A shutdown still running in another parent thread never finishes here.
            if self._shutdown_result is None:
                self._shutdown_result = False
            self._shutdown_done.set()

    def __repr__(self) -> str:
        return (
            f"PeriodicExporter(name={self._name!r}, interval={self._interval!r}, "
            f"state={self._state!r}, consecutive_failures={self._consecutive_failures})"
        )


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - _time.monotonic())
