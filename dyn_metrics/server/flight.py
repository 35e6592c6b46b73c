"""Single-flight renders under a deadline: N concurrent scrapes cost one render.

:class:`RenderFlights` runs ``render(fmt, names)`` on its own daemon thread,
one render at a time, and lets every scrape that asks for the same
``(fmt, names)`` while that render is queued or running share its result.

Why one render thread, not the caller's: a scrape waits at most ``timeout``
seconds and then answers 503, so its handler thread is free again; only the
render thread stays with a callback that hangs. Why one render at a time:
the callbacks a render runs are the same for every format, so a second render
started beside a hung one would hang too; serialised, a hung callback pins
exactly one thread. Once the running render has run for ``timeout``
seconds, every scrape is refused at once (:class:`RenderHung`) until it
returns.

Why the render thread stays: a thread started per render costs a scrape
several waits for the GIL (the new thread's start, the starter's return), each
about ``sys.getswitchinterval()`` times the number of busy threads when the
process is busy. So it waits for the next render on a condition (no polling)
and exits after ``idle_timeout`` seconds without one, or at :meth:`close`.
"""

import gzip
import logging
import threading
import time
from collections import deque
from typing import Callable, Optional, Union

Key = tuple[str, Optional[frozenset[str]]]

_log = logging.getLogger(__name__)


class RenderTimeout(Exception):
    """The render did not finish within the timeout; the scrape gets 503."""


class RenderHung(Exception):
    """A render has been running for longer than the timeout; refused without waiting."""


class RenderFailed(Exception):
    """The render raised; it was logged once, on the render thread, for every scrape it served."""


class _Flight:
    """One render and its result, shared by every scrape that joined it.

    ``body`` is the exposition encoded once; :meth:`gzipped` compresses it
    once, for every scrape of the flight that accepts gzip.
    """

    __slots__ = (
        "key",
        "done",
        "body",
        "failed",
        "started",
        "waiters",
        "_gzip",
        "_gzip_lock",
    )

    def __init__(self, key: Key) -> None:
        self.key = key
        self.done = threading.Event()
        self.body = b""
        self._gzip: Optional[bytes] = None
        self._gzip_lock = threading.Lock()
        self.failed = False
        self.started = time.monotonic()  # when its render began (set again then)
        self.waiters = 0

    def gzipped(self) -> bytes:
        """``body`` gzip-compressed (level 6, no timestamp), made on first use."""
        with self._gzip_lock:
            if self._gzip is None:
                self._gzip = gzip.compress(self.body, compresslevel=6, mtime=0)
            return self._gzip


class RenderFlights:
    """Shares renders between concurrent scrapes and bounds how long a scrape waits.

    ``render(fmt, names) -> str`` runs on a daemon thread named ``{name}-render``,
    made when a render is queued and none exists; it exits once no render has
    been queued for ``idle_timeout`` seconds, or after :meth:`close`.
    Thread-safe.
    """

    def __init__(
        self,
        render: Callable[[str, Optional[frozenset[str]]], Union[str, bytes]],
        *,
        timeout: float,
        name: str,
        idle_timeout: float = 30.0,
    ) -> None:
        self._render = render
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self.name = name
        self._lock = threading.Lock()  # guards every field below
        self._queued = threading.Condition(self._lock)  # notified when a flight is queued
        self._flights: dict[Key, _Flight] = {}  # queued or running, by key
        self._queue: deque[_Flight] = deque()
        self._running: Optional[_Flight] = None
        self._worker: Optional[threading.Thread] = None  # the render thread, while it lives
        self._closed = False

    def close(self, timeout: float = 0.5) -> None:
        """Let the render thread exit once its current render is done; wait up to ``timeout``.

        A render thread still rendering then is abandoned (a daemon). A later
        :meth:`get` starts a new one.
        """
        with self._lock:
            self._closed = True
            worker = self._worker
            self._queued.notify_all()
        if worker is not None:
            worker.join(timeout)

    @property
    def waiting(self) -> int:
        """How many scrapes are waiting for a render now."""
        with self._lock:
            return sum(f.waiters for f in self._flights.values())

    def get(self, fmt: str, names: Optional[frozenset[str]]) -> _Flight:
        """The finished render for ``(fmt, names)``, one in progress or a new one.

        Raises RenderHung at once while a render older than the timeout runs,
        RenderTimeout when this scrape waited the timeout, RenderFailed when
        ``render`` raised (logged once as ``Failed to get metrics``).
        """
        key = (fmt, names)
        with self._lock:
            running = self._running
            # Measured from the render's start, not from when it was queued
            # (it may have waited behind another format's render): once it
            # has run for the timeout, the next scrape is refused at once.
            if running is not None and time.monotonic() - running.started >= self._timeout:
                raise RenderHung()
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight(key)
                self._queue.append(flight)
                self._closed = False
                if self._worker is None:
                    thread = threading.Thread(
                        target=self._work, name=f"{self.name}-render", daemon=True
                    )
                    try:
                        thread.start()
                    except RuntimeError:  # "can't start new thread": this scrape fails only
                        self._queue.remove(flight)
                        del self._flights[key]
                        _log.error("Failed to get metrics: cannot start the render thread")
                        raise RenderFailed() from None
                    self._worker = thread
                else:
                    self._queued.notify()
            flight.waiters += 1
        finished = flight.done.wait(self._timeout)
        with self._lock:
            flight.waiters -= 1
        if not finished:
            raise RenderTimeout()
        if flight.failed:
            raise RenderFailed()
        return flight

    def _next_locked(self) -> Optional[_Flight]:
        """The next flight to render, waiting for one; None (thread forgotten) to exit."""
        while True:
            # A queued render nobody waits for any more is skipped.
            while self._queue and self._queue[0].waiters == 0:
                del self._flights[self._queue.popleft().key]
            if self._queue:
                return self._queue.popleft()
            if self._closed or not self._queued.wait(self._idle_timeout):
                if not self._queue:
                    self._worker = None
                    return None

    def _work(self) -> None:
        while True:
            with self._lock:
                flight = self._next_locked()
                if flight is None:
                    return
                self._running = flight
                flight.started = time.monotonic()
            try:
                out = self._render(*flight.key)
                flight.body = out if isinstance(out, bytes) else out.encode("utf-8")
            # Any exception, SystemExit included: this thread must live on to
            # clean up, or every later scrape would be refused.
            except BaseException:
                _log.exception("Failed to get metrics")
                flight.failed = True
            with self._lock:
                del self._flights[flight.key]
                self._running = None
            flight.done.set()
