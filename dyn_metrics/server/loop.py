"""The connection engine of the HTTP server: one event loop, bounded handler pools.

It knows nothing of routes or metrics: it accepts connections, does the TLS
handshake and collects one request head each (:mod:`~dyn_metrics.server.wire`)
without a thread per connection, runs the head through http.server's handler
and the app on a pool thread (:mod:`~dyn_metrics.server.handler`) and sends the
answer under the write deadline (also one the app gives late, from another
thread: ``Request.late``).
Two loop threads take turns (:mod:`~dyn_metrics.server.turns`); a turn may
end with a request for the pool, served on that thread instead. Why, and how
it stays up under hostile clients: :mod:`dyn_metrics.server`. A client that
goes away is not an error: logged at DEBUG only, like every request.
"""

import collections
import functools
import logging
import selectors
import socket
import ssl
import threading
import time
from typing import Callable, Optional

from .conn import Conn
from .handler import Answer, Answered, App, RequestHandler, busy, refuse
from .options import ServerOptions
from .pool import HandlerPool
from .sockets import SHORTAGES, Sends, Sock, accept, listen, shutdown_both
from .turns import Turns
from .wire import BadRequest, HeadReader

_log = logging.getLogger(__name__)

_LINGER = 1.0
_MAX_SLEEP = 1.0  # the loop wakes at least this often (seconds)
# 0 where the platform lacks the flag: then every read waits for select.
_DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)
_DISCONNECTS = OSError  # a client going away: resets, broken pipes, timeouts, TLS errors
_LISTENER = "listener"  # selector keys' data: these two, or the Conn
_WAKER = "waker"
_PROBE_WORKERS, _PROBE_QUEUED = 4, 64  # the pool of light requests (probes)


_Job = tuple[Conn, bytes]


class HttpLoop:
    """Serves ``app`` on ``options.host:options.port`` from daemon event-loop threads.

    ``app(Request) -> Response`` runs on a handler thread, possibly
    concurrently, and should not raise (an exception is logged and costs the
    connection). With an ``ssl_context`` every connection is TLS. Threads are
    named ``name-PORT`` (the two loop threads) and ``name-PORT-worker-N``
    (handlers, exiting after ``worker_idle`` idle seconds); one request at a
    time may run on a loop thread, beside the ``max_connections`` handlers.
    ``Request.late`` answers from another thread; the handler thread, left
    busy, then stops counting against ``max_connections``.

    ``light(head) -> bool`` picks cheap requests (probes): they run on their own
    pool (``name-PORT-probe-worker-N``, 4 threads, 64 queued), never behind
    scrapes, and never on a loop thread.

    Call :meth:`bind` until it succeeds, then :meth:`start` once; :meth:`stop`
    only after :meth:`start`. The owner keeps that order; nothing here checks it.
    """

    def __init__(
        self,
        app: App,
        options: ServerOptions,
        ssl_context: Optional[ssl.SSLContext],
        *,
        worker_idle: float,
        name: str,
        light: Optional[Callable[[bytes], bool]] = None,
    ) -> None:
        self._app = app
        self._light = light
        self._options = options
        self._host, self._port = options.host, options.port
        self._ssl = ssl_context
        self._max_pending = options.max_pending
        self._read_timeout = float(options.read_timeout)
        # Answers go out in one blocking send each; the loop keeps their deadlines.
        self._sends = Sends(float(options.write_timeout), _MAX_SLEEP, self._wake)
        self._name_prefix = self._name = name
        # The handlers, and the probes' pool (its name gets "-probe" at bind()).
        sizes = ((options.max_connections, options.max_queued), (_PROBE_WORKERS, _PROBE_QUEUED))
        self._pool, self._probes = (
            HandlerPool[_Job](
                self._serve, name=name, max_workers=w, max_queued=q, idle_timeout=worker_idle
            )
            for w, q in sizes
        )
        self._lock = threading.Lock()  # guards _stopping, _conns, _handbacks
        self._stopping = False
        self._turns = Turns[_Job](self._loop, self._serve, name=name)
        self._own: Optional[_Job] = None  # a request this turn takes for its own thread
        self._conns: set[Sock] = set()  # every accepted socket not yet closed
        self._handbacks: collections.deque[Conn] = collections.deque()
        # Made by bind() and start(): a server that never starts holds no descriptor.
        self._listener: socket.socket
        self._selector: selectors.BaseSelector
        self._wake_r: socket.socket  # and _wake_w, the ends of the waker's socket pair
        # Loop thread only; accept order is deadline order.
        self._pending: collections.OrderedDict[Conn, None] = collections.OrderedDict()
        self._draining: collections.OrderedDict[Conn, None] = collections.OrderedDict()
        self._paused_until: Optional[float] = None
        self._fd_warned = False

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The first of the two event-loop threads (None before :meth:`start`)."""
        return self._turns.threads[0] if self._turns.threads else None

    def bind(self) -> tuple[str, int]:
        """Bind and listen; return the bound ``(host, port)``. Raises OSError if the bind fails."""
        self._listener = sock = listen(self._host or "0.0.0.0", self._port)
        self._host, self._port = sock.getsockname()[:2]
        self._name = self._pool.name = self._turns.name = f"{self._name_prefix}-{self._port}"
        self._probes.name = f"{self._name}-probe"
        return self._host, self._port

    def start(self) -> None:
        """Start the event-loop threads on the bound socket."""
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKER)
        self._turns.start()

    def stop(self) -> None:
        """Close the listening socket and every connection; wait briefly for the threads.

        Returns within two seconds even if a handler is stuck (abandoned: a daemon)."""
        assert self._turns.threads, "start() first"
        with self._lock:
            self._stopping = True
        self._wake()
        self._turns.ended.wait(1.0)
        with self._lock:
            # Unblock handlers that are sending; they close their own sockets.
            for sock in self._conns:
                shutdown_both(sock)
        self._turns.join(0.5)
        self._pool.stop(0.5)
        self._probes.stop(0.1)
        if not self._turns.over:  # never expected; free the port regardless
            self._listener.close()

    # -- event loop (one thread at a time) -----------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _loop(self) -> Optional[_Job]:
        """A turn: the loop until it takes a request to serve, or None once stopped and closed."""
        select = self._selector.select
        try:
            while not self._stopping:
                for key, _mask in select(self._timeout()):
                    what = key.data
                    if what is _LISTENER:
                        self._accept()
                    elif what is _WAKER:
                        self._on_wake()
                    else:
                        try:
                            if what in self._draining:
                                self._drain(what)
                            else:
                                self._on_ready(what)
                        except Exception:
                            _log.exception("unexpected error on connection from %s", what.peer)
                            self._drop(what)
                self._sweep()
                if self._own is not None:
                    job, self._own = self._own, None
                    return job
        except Exception:
            _log.exception("metrics server loop failed")
        self._close_all()
        return None

    def _timeout(self) -> float:
        now = time.monotonic()
        timeout = _MAX_SLEEP
        for conns in (self._pending, self._draining):
            if conns:
                timeout = min(timeout, next(iter(conns)).deadline - now)
        timeout = min(timeout, self._sends.next_deadline() - now)
        if self._paused_until is not None:
            timeout = min(timeout, self._paused_until - now)
        return max(timeout, 0.0)

    def _sweep(self) -> None:
        now = time.monotonic()
        for conns in (self._pending, self._draining):
            while conns:
                conn = next(iter(conns))
                if conn.deadline > now:
                    break
                _log.debug("%s: closed after the read timeout", conn.peer)
                self._drop(conn)
        self._sends.expire(now)
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)

    def _accept(self) -> None:
        for _ in range(128):
            try:
                accepted = accept(self._listener)
            except OSError as e:
                if e.errno not in SHORTAGES:
                    _log.debug("accept failed: %s", e)
                    return
                # Out of descriptors: drop the oldest idle connection, else pause accepting.
                if self._pending:
                    self._drop(next(iter(self._pending)))
                    continue
                # Warn once per shortage, not every 0.1 s while it lasts.
                log = _log.debug if self._fd_warned else _log.warning
                log("accept failed, pausing for 0.1 s: %s", e)
                self._fd_warned = True
                self._selector.unregister(self._listener)
                self._paused_until = time.monotonic() + 0.1
                return
            if accepted is None:
                return
            self._fd_warned = False
            self._admit(*accepted)
            if self._own is not None:  # to hand the loop over: the next round accepts the rest
                return

    def _admit(self, raw: socket.socket, peer: str) -> None:
        sock: Sock = raw
        # A plain request is usually in hand: reading it before any selector call saves GIL
        # releases, each may cost a switch interval; not under a default timeout: recv would wait.
        early = self._ssl is None and bool(_DONTWAIT) and raw.gettimeout() is None
        try:
            if not early:
                raw.setblocking(False)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as e:
            _log.debug("%s: dropped at accept: %s", peer, e)
            raw.close()
            return
        if len(self._pending) >= self._max_pending:
            oldest = next(iter(self._pending))
            _log.debug("%s: dropped, too many pending connections", oldest.peer)
            self._drop(oldest)
        deadline = time.monotonic() + self._read_timeout
        conn = Conn(sock, peer, HeadReader(self._options), deadline, self._ssl is not None)
        with self._lock:
            self._conns.add(sock)
        self._pending[conn] = None
        if early:
            conn.events = 0  # not on the selector (yet)
            return self._on_ready(conn)
        self._selector.register(sock, selectors.EVENT_READ, conn)
        return None

    def _watch(self, conn: Conn) -> bool:
        """Put a connection off the selector on it; False if it was dropped instead."""
        if not conn.events:
            try:
                conn.sock.setblocking(False)
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            except (OSError, ValueError) as e:
                _log.debug("%s: dropped: %s", conn.peer, e)
                self._drop(conn)
                return False
            conn.events = selectors.EVENT_READ
        return True

    def _want(self, conn: Conn, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self._selector.modify(conn.sock, events, conn)

    def _on_ready(self, conn: Conn) -> None:
        sock = conn.sock
        if conn.handshaking:
            assert isinstance(sock, ssl.SSLSocket)
            try:
                sock.do_handshake()
            except ssl.SSLWantReadError:
                return self._want(conn, selectors.EVENT_READ)
            except ssl.SSLWantWriteError:
                return self._want(conn, selectors.EVENT_WRITE)
            except _DISCONNECTS as e:
                _log.debug("%s: TLS handshake failed: %s", conn.peer, e)
                return self._drop(conn)
            conn.handshaking = False
            self._want(conn, selectors.EVENT_READ)
        while True:
            try:
                data = sock.recv(65536, 0 if conn.events else _DONTWAIT)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                self._watch(conn)
                return None
            except _DISCONNECTS as e:
                _log.debug("%s: read failed: %s", conn.peer, e)
                return self._drop(conn)
            if not data:
                _log.debug("%s: closed before a complete request", conn.peer)
                return self._drop(conn)
            try:
                head = conn.reader.feed(data)
            except BadRequest as e:
                return self._reject(conn, e.status, refuse(e.status, e.body))
            if head is not None:
                return self._dispatch(conn, head)

    def _reject(self, conn: Conn, status: int, data: bytes) -> None:
        _log.debug("%s: rejected with %d", conn.peer, status)
        if not self._watch(conn):  # drained through the selector
            return
        try:
            conn.sock.send(data)
        except OSError:
            pass
        self._linger(conn)

    def _linger(self, conn: Conn) -> None:
        """Half-close and read until EOF for a moment, so unread input cannot reset the reply."""
        self._pending.pop(conn, None)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return self._drop(conn)
        if len(self._draining) >= self._max_pending:
            self._drop(next(iter(self._draining)))
        conn.deadline = time.monotonic() + _LINGER
        self._draining[conn] = None
        return None

    def _drain(self, conn: Conn) -> None:
        try:
            for _ in range(16):
                if not conn.sock.recv(65536):
                    return self._drop(conn)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return self._drop(conn)
        return None

    def _drop(self, conn: Conn) -> None:
        self._pending.pop(conn, None)
        self._draining.pop(conn, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self._close(conn.sock)

    def _close(self, sock: Sock) -> None:
        with self._lock:
            self._conns.discard(sock)
            sock.close()

    def _on_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        while True:
            with self._lock:
                if not self._handbacks:
                    return
                conn = self._handbacks.popleft()
            conn.events = 0  # a handler had it: back on the selector to drain
            if self._watch(conn):
                self._linger(conn)

    def _close_all(self) -> None:
        with self._lock:
            self._stopping = True
            handbacks, self._handbacks = self._handbacks, collections.deque()
        for conn in list(self._pending) + list(self._draining):
            self._drop(conn)
        for conn in handbacks:
            self._close(conn.sock)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    def _dispatch(self, conn: Conn, head: bytes) -> None:
        pool = self._probes if self._light is not None and self._light(head) else self._pool
        own = pool is self._pool and self._own is None and self._turns.claim()
        if not own and not pool.reserve():
            return self._reject(conn, 503, busy())
        del self._pending[conn]
        if conn.events:  # off the selector before a handler thread can touch the socket
            self._selector.unregister(conn.sock)
        if own:
            self._own = (conn, head)
        else:
            pool.put((conn, head))
        return None

    # -- handler threads ------------------------------------------------------------------------

    def _serve(self, job: _Job) -> None:
        conn, head = job
        late = functools.partial(self._answer_late, conn, threading.current_thread())
        try:
            if self._stopping:
                return self._close(conn.sock)
            self._answer(conn, RequestHandler(head, conn.peer, self._app, late).run())
        except Answered:  # late() has answered, and owns the socket now
            pass
        except Exception:
            # A handler bug costs this connection, never a descriptor for good.
            _log.exception("unexpected error in a metrics server handler")
            self._close(conn.sock)
        return None

    def _answer_late(self, conn: Conn, thread: threading.Thread, answer: Answer) -> None:
        """``Request.late``: answer from another thread while ``thread`` stays busy."""
        self._answer(conn, answer)
        for pool in (self._pool, self._probes):
            pool.detach(thread)  # it may stay busy long: no longer counted against the bound

    def _answer(self, conn: Conn, answer: Answer) -> None:
        # Logged before sending, so the line exists once the client has its answer.
        size = len(answer.head) + len(answer.body)
        _log.debug('%s "%s" %d %d', conn.peer, answer.request_line, answer.status, size)
        try:
            self._sends.send(conn.sock, answer.head, answer.body)
        except _DISCONNECTS as e:
            _log.debug("%s: client went away: %s", conn.peer, e)
            return self._close(conn.sock)
        if answer.linger:
            with self._lock:
                if not self._stopping:
                    self._handbacks.append(conn)
                    self._wake()
                    return None
        return self._close(conn.sock)
