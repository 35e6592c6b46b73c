"""Single-flight renders under a deadline: N concurrent scrapes cost one render.

:class:`RenderFlights` runs ``render(fmt, names)`` one render at a time and
lets every scrape that asks for the same ``(fmt, names)`` while that render is
queued or running share its result.

Where a render runs. A scrape that offers an ``overrun`` callback and finds
no render running or queued renders on its own thread: the thread that will
send the answer, so no thread hand-off (each a wait for the GIL, about
``sys.getswitchinterval()`` times the number of busy threads in a busy
process) lies between the render and the send. If that render is still
running ``timeout`` seconds after it began, the watchdog thread
(``{name}-watchdog``) calls ``overrun()`` once, which answers the scrape 503
on that thread; the render goes on, and the scrape's own :meth:`get` then raises
:class:`RenderOverran` instead of returning. Whichever of the two comes first
under the lock wins, so a scrape is answered exactly once. Every other render
(a scrape without ``overrun``, as the WSGI and ASGI apps make, or one queued
behind a running render) runs on the render thread (``{name}-render``), and
its scrapes wait for it at most ``timeout`` seconds.

Why one render at a time: the callbacks a render runs are the same for every
format, so a second render started beside a hung one would hang too;
serialised, a hung callback pins exactly one thread. Once the running render
has run for ``timeout`` seconds, every scrape is refused at once
(:class:`RenderHung`) until it returns.

Why both threads stay: a thread started per render costs a scrape several
waits for the GIL. The render thread waits for the next render on a
condition; the watchdog sleeps until the running inline render's deadline,
else at most ``timeout`` seconds at a time, so arming it never wakes it. Each
exits after ``idle_timeout`` seconds without work, or at :meth:`close` (the
watchdog not before the deadline of the last inline render).
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
    """The render raised; it was logged once, where it ran, for every scrape it served."""


class RenderOverran(Exception):
    """This scrape's own render overran the timeout and ``overrun()`` answered it already."""


class _Flight:
    """One render and its result, shared by every scrape that joined it.

    ``body`` is the exposition encoded once; :meth:`gzipped` compresses it
    once, for every scrape of the flight that accepts gzip. ``overrun`` is the
    inline renderer's callback while it is owed: whoever takes it (None)
    under the flights' lock answers that scrape.
    """

    __slots__ = (
        "key",
        "done",
        "body",
        "failed",
        "started",
        "waiters",
        "overrun",
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
        self.overrun: Optional[Callable[[], None]] = None

    def gzipped(self) -> bytes:
        """``body`` gzip-compressed (level 6, no timestamp), made on first use."""
        with self._gzip_lock:
            if self._gzip is None:
                self._gzip = gzip.compress(self.body, compresslevel=6, mtime=0)
            return self._gzip


class RenderFlights:
    """Shares renders between concurrent scrapes and bounds how long a scrape waits.

    ``render(fmt, names) -> str`` runs on the scrape's thread or on a daemon
    thread named ``{name}-render`` (see the module docstring); the render
    thread and the watchdog (``{name}-watchdog``) are made when first needed
    and exit once idle for ``idle_timeout`` seconds, or after :meth:`close`.
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
        self._queued = threading.Condition(self._lock)  # notified when a render may start
        self._watch_wake = threading.Condition(self._lock)  # notified at close
        self._flights: dict[Key, _Flight] = {}  # queued or running, by key
        self._queue: deque[_Flight] = deque()
        self._running: Optional[_Flight] = None
        self._worker: Optional[threading.Thread] = None  # the render thread, while it lives
        self._watchdog: Optional[threading.Thread] = None  # while it lives
        self._last_inline = 0.0  # when the latest inline render began
        self._closed = False

    def close(self, timeout: float = 0.5) -> None:
        """Let both threads exit once idle (no render running); wait up to ``timeout``.

        A thread still busy then is abandoned (a daemon). A later :meth:`get`
        starts new ones.
        """
        with self._lock:
            self._closed = True
            threads = [t for t in (self._worker, self._watchdog) if t is not None]
            self._queued.notify_all()
            self._watch_wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def waiting(self) -> int:
        """How many scrapes are waiting for (or running) a render now."""
        with self._lock:
            return sum(f.waiters for f in self._flights.values())

    def get(
        self,
        fmt: str,
        names: Optional[frozenset[str]],
        overrun: Optional[Callable[[], None]] = None,
    ) -> _Flight:
        """The finished render for ``(fmt, names)``, one in progress or a new one.

        Raises RenderHung at once while a render older than the timeout runs,
        RenderTimeout when this scrape waited the timeout, RenderFailed when
        ``render`` raised (logged once as ``Failed to get metrics``).
        With ``overrun`` this call may render itself; then, if its render
        overran, ``overrun()`` has been called once on the watchdog thread at
        the deadline and this call raises RenderOverran when the render ends.
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
            inline = False
            if flight is None:
                flight = self._flights[key] = _Flight(key)
                self._closed = False
                if overrun is not None and running is None and not self._queue:
                    self._start_locked("watchdog", flight)
                    flight.overrun = overrun
                    flight.started = self._last_inline = time.monotonic()
                    self._running = flight
                    inline = True
                else:
                    self._queue.append(flight)
                    if self._worker is not None:
                        self._queued.notify()
                    else:
                        self._start_locked("render", flight)
            flight.waiters += 1
        if inline:
            return self._render_here(flight)
        finished = flight.done.wait(self._timeout)
        with self._lock:
            flight.waiters -= 1
        if not finished:
            raise RenderTimeout()
        if flight.failed:
            raise RenderFailed()
        return flight

    def _start_locked(self, role: str, flight: _Flight) -> None:
        """Start the ``role`` thread unless it lives; RenderFailed, ``flight`` dropped, if not."""
        if (self._worker if role == "render" else self._watchdog) is not None:
            return
        work = self._work if role == "render" else self._watch
        thread = threading.Thread(target=work, name=f"{self.name}-{role}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't start new thread": this scrape fails only
            if role == "render":
                self._queue.remove(flight)
            del self._flights[flight.key]
            _log.error("Failed to get metrics: cannot start the %s thread", role)
            raise RenderFailed() from None
        if role == "render":
            self._worker = thread
        else:
            self._watchdog = thread

    def _render_here(self, flight: _Flight) -> _Flight:
        """Render ``flight`` on this thread, which :meth:`get` made its renderer."""
        self._run(flight)
        with self._lock:
            flight.waiters -= 1
            answered = flight.overrun is None  # the watchdog took it: overrun() answered
            flight.overrun = None
            self._finish_locked(flight)
            if self._queue:  # the render thread waits for this render to end
                self._queued.notify()
        flight.done.set()
        if answered:
            raise RenderOverran()
        if flight.failed:
            raise RenderFailed()
        return flight

    def _run(self, flight: _Flight) -> None:
        try:
            out = self._render(*flight.key)
            flight.body = out if isinstance(out, bytes) else out.encode("utf-8")
        # Any exception, SystemExit included: the thread must live on to clean
        # up, or every later scrape would be refused.
        except BaseException:
            _log.exception("Failed to get metrics")
            flight.failed = True

    def _finish_locked(self, flight: _Flight) -> None:
        del self._flights[flight.key]
        self._running = None

    def _next_locked(self) -> Optional[_Flight]:
        """The next flight to render, waiting for one; None (thread forgotten) to exit."""
        while True:
            if self._running is None:  # else an inline render runs: wait for its end
                # A queued render nobody waits for any more is skipped.
                while self._queue and self._queue[0].waiters == 0:
                    del self._flights[self._queue.popleft().key]
                if self._queue:
                    return self._queue.popleft()
            if self._closed and not self._queue:
                break
            if not self._queued.wait(self._idle_timeout) and not self._queue:
                break
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
            self._run(flight)
            with self._lock:
                self._finish_locked(flight)
            flight.done.set()

    def _watch(self) -> None:
        """The watchdog: calls the running inline render's ``overrun`` at its deadline."""
        with self._lock:
            while True:
                now = time.monotonic()
                flight = self._running
                if flight is not None and flight.overrun is not None:
                    due = flight.started + self._timeout
                    if now < due:
                        self._watch_wake.wait(due - now)
                        continue
                    overrun, flight.overrun = flight.overrun, None
                    self._lock.release()
                    try:
                        overrun()
                    # Nothing it raises may end the watchdog: later renders need it.
                    except BaseException:
                        _log.exception("Failed to answer a scrape whose render overran")
                    finally:
                        self._lock.acquire()
                    continue
                idle = now - self._last_inline
                if self._closed or idle >= self._idle_timeout:
                    self._watchdog = None
                    return
                # At most timeout: a render armed meanwhile is seen before its deadline.
                self._watch_wake.wait(min(self._timeout, self._idle_timeout - idle))
