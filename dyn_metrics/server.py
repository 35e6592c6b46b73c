"""An HTTP server for ``/metrics``, health and liveness that hostile clients cannot stall.

It stands apart from the metric code: it takes a ``render(fmt) -> str`` callable
(``fmt`` is ``"text"`` or ``"openmetrics"``) and a ``health() -> (healthy,
body_dict)`` callable, so it can be run and tested with stubs.

Routes (GET, and HEAD with the same headers and no body):

* ``/metrics`` -- the exposition. ``?name[]=x&name[]=y`` keeps only the families
  named ``x``/``y`` (or having a sample of that name), as prometheus_client
  offers; the rendered text is filtered by family block. gzip when
  ``Accept-Encoding`` allows it. OpenMetrics only when enabled and preferred by
  the client's ``Accept`` q-values (:func:`negotiate`). A raising ``render``
  gives 500 ``Failed to get metrics`` and one logged exception.
* health and live paths -- the health JSON, 200 when healthy else 503.
* ``/`` -- a small HTML page linking the routes.
* anything else -- 404 ``Route not found``; other methods on a route -- 405
  with ``Allow: GET, HEAD``.

How it stays up (prometheus_client's exporter has no timeouts, no thread bound,
and does the TLS handshake inside ``accept()``, so one idle TLS client stops
every scrape):

* One event-loop thread accepts, does the TLS handshake (non-blocking) and
  reads the request head. A connection costs no thread while it does that, so
  idle, half-open or slow clients cannot take handler threads. Each must
  finish handshake and head within ``read_timeout`` seconds of being accepted,
  or it is closed.
* Complete requests run on at most ``max_connections`` handler threads, made
  on demand. A response must be sent within ``write_timeout`` seconds.
* At most ``max_pending`` connections may still be sending their request;
  past that the oldest of them is dropped. At most ``max_queued`` complete
  requests wait for a free handler thread; past that a request gets 503 with
  ``Retry-After: 1``. So a flood costs descriptors up to those bounds, never
  threads.
* Request line over ``max_request_line`` bytes -> 414; head over
  ``max_header_bytes`` or more than ``max_headers`` fields -> 431; malformed ->
  400; HTTP other than 1.x -> 505.
* One request per connection (``Connection: close``).
* A client that goes away is not an error: logged at DEBUG only. Every request
  is logged at DEBUG on ``logging.getLogger("dyn_metrics.server")``; nothing is
  written to stderr.

``basic_auth=(user, password)`` protects every path, health and live
included (a probe must send the header), so a 401 reveals nothing about the
routes. Serve it over TLS: Basic credentials are only base64.
"""

import base64
import binascii
import collections
import email.utils
import errno
import gzip
import hmac
import html
import itertools
import json
import logging
import queue
import re
import selectors
import socket
import ssl
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from .errors import InvalidValueError, MetricsError
from .expfmt import CONTENT_TYPE as TEXT_CONTENT_TYPE

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CONTENT_TYPES = {"text": TEXT_CONTENT_TYPE, "openmetrics": OPENMETRICS_CONTENT_TYPE}
METRICS_PATH = "/metrics"

_log = logging.getLogger("dyn_metrics.server")

_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_QVALUE_RE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
_OM_VERSIONS = (None, "1.0.0", "0.0.1")
_SAMPLE_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info", "_gcount", "_gsum")
_WRITE_CHUNK = 256 * 1024
_LINGER = 1.0
_WORKER_IDLE = 30.0  # seconds before an idle handler thread exits
# What a client going away looks like: resets, broken pipes, timeouts and TLS
# errors are all OSErrors.
_DISCONNECTS = OSError


# -- negotiation and filtering (pure functions) --------------------------------------------


def _parse_list(header):
    """Split an Accept-style header into ``(token, params, q)``; bad q-values give q=0."""
    for item in header.split(","):
        token, *params = item.split(";")
        token = token.strip().lower()
        if not token:
            continue
        q, rest = 1.0, {}
        for param in params:
            key, _, value = param.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                q = float(value) if _QVALUE_RE.fullmatch(value) else 0.0
            elif key:
                rest[key] = value
        yield token, rest, q


def negotiate(accept_header, openmetrics_enabled):
    """Choose ``"text"`` or ``"openmetrics"`` for an ``Accept`` header.

    OpenMetrics only when ``openmetrics_enabled`` and the header names
    ``application/openmetrics-text`` with version 1.0.0, 0.0.1 or none, at a
    q-value > 0 and >= text's. Text's q comes from the most specific of
    ``text/plain;version=0.0.4``, ``text/plain``, ``text/*``, ``*/*``. A
    missing header or ``*/*`` gives text; wildcards never select OpenMetrics.
    """
    if not openmetrics_enabled or not accept_header:
        return "text"
    om = (-1, 0.0)  # (specificity, q) of the most specific matching range
    text = (-1, 0.0)
    for token, params, q in _parse_list(accept_header):
        version = params.get("version")
        if token == "application/openmetrics-text":
            if version in _OM_VERSIONS:
                om = max(om, (1 if version else 0, q))
        elif token == "text/plain":
            if version in (None, "0.0.4"):
                text = max(text, (3 if version else 2, q))
        elif token == "text/*":
            text = max(text, (1, q))
        elif token == "*/*":
            text = max(text, (0, q))
    if om[1] > 0.0 and om[1] >= text[1]:
        return "openmetrics"
    return "text"


def accepts_gzip(accept_encoding):
    """True when ``Accept-Encoding`` allows gzip (``q=0`` refuses; ``*`` counts)."""
    if not accept_encoding:
        return False
    explicit, star = None, None
    for token, _, q in _parse_list(accept_encoding):
        if token in ("gzip", "x-gzip"):
            explicit = q if explicit is None else max(explicit, q)
        elif token == "*":
            star = q
    if explicit is not None:
        return explicit > 0.0
    return bool(star)


def _family_of(line):
    """The family a comment line names (``# HELP x``, ``# TYPE x``, ``# UNIT x``), else None."""
    parts = line.split(None, 3)
    if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE", "UNIT"):
        return parts[2]
    return None


def _belongs(sample, family):
    if family is None:
        return False
    if sample == family:
        return True
    return sample.startswith(family) and sample[len(family):] in _SAMPLE_SUFFIXES


def filter_families(text, names):
    """Keep the family blocks of ``text`` whose name, or one of whose sample names, is in ``names``.

    A block starts at a HELP/TYPE/UNIT line naming a new family, or at a sample
    line that does not belong to the current family (``x``, ``x_bucket``,
    ``x_sum``, ... belong to ``x``). ``# EOF`` is always kept.
    """
    wanted = frozenset(names)
    out = []
    block, family, samples = [], None, set()
    for line in text.splitlines(keepends=True):
        sample, start = None, None
        if line.startswith("#"):
            if line.rstrip("\r\n") == "# EOF":
                if family in wanted or not wanted.isdisjoint(samples):
                    out.extend(block)
                out.append(line)
                block, family, samples = [], None, set()
                continue
            named = _family_of(line)
            if named is not None and named != family:
                start = named
        elif line.strip():
            sample = line.split("{", 1)[0].split(None, 1)[0]
            if not _belongs(sample, family):
                start = sample
        if start is not None:
            if family in wanted or not wanted.isdisjoint(samples):
                out.extend(block)
            block, family, samples = [], start, set()
        if sample is not None:
            samples.add(sample)
        block.append(line)
    if family in wanted or not wanted.isdisjoint(samples):
        out.extend(block)
    return "".join(out)


# -- HTTP plumbing ----------------------------------------------------------------------------


class _BadRequest(Exception):
    def __init__(self, status, body):
        super().__init__(body)
        self.status = status
        self.body = body


class _Conn:
    __slots__ = ("sock", "addr", "buf", "scanned", "deadline", "handshaking", "events")

    def __init__(self, sock, addr, deadline, handshaking):
        self.sock = sock
        self.addr = addr
        self.buf = bytearray()
        self.scanned = 0
        self.deadline = deadline
        self.handshaking = handshaking
        self.events = selectors.EVENT_READ


class _Request:
    __slots__ = ("conn", "method", "target", "version", "headers", "unread_body")

    def __init__(self, conn, method, target, version, headers):
        self.conn = conn
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.unread_body = (
            "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0"
        )


def _response(status, headers, body, head_only=False):
    status = HTTPStatus(status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
    lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def _text_response(status, text, extra=(), head_only=False):
    return _response(
        status, [("Content-Type", "text/plain; charset=utf-8"), *extra], text.encode(), head_only
    )


def _display_host(host):
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    return f"[{host}]" if ":" in host else host


_LANDING = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>dyn_metrics</title></head>
<body><h1>dyn_metrics</h1><ul>
{items}
</ul></body></html>
"""


def _make_ssl_context(certfile, keyfile, client_cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    if client_cafile:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=client_cafile)
    return ctx


def _check_path(name, value):
    if not isinstance(value, str) or not value.startswith("/") or value == METRICS_PATH:
        raise InvalidValueError(
            f"{name}: expected a path starting with '/' other than '/metrics', got {value!r}"
        )


def _check_positive(name, value, kind=(int, float)):
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise InvalidValueError(f"{name}: expected a positive number, got {value!r}")


_LISTENER = object()
_WAKER = object()


class MetricsServer:
    """Serves ``/metrics``, health and live routes from a background daemon thread.

    ``render(fmt) -> str`` gives the exposition for ``fmt`` (``"text"`` or
    ``"openmetrics"``); ``health() -> (healthy, body_dict)`` gives the health
    answer. Both are called on handler threads, possibly concurrently.

    TLS: ``certfile``/``keyfile`` (or a ready ``ssl_context``); with
    ``client_cafile`` clients must present a certificate signed by that CA.
    The handshake runs non-blocking on the event loop under ``read_timeout``,
    never inside ``accept()``. ``basic_auth=(user, password)`` protects every
    path (see the module docstring). Limits and timeouts are described there.

    Raises InvalidValueError on bad arguments; TLS file errors (OSError,
    ssl.SSLError) propagate from the constructor, bind errors from
    :meth:`start`. Usable as a context manager (starts on enter, stops on exit).
    """

    def __init__(
        self,
        render,
        health,
        *,
        host="0.0.0.0",
        port=0,
        health_path="/health",
        live_path="/live",
        openmetrics=False,
        certfile=None,
        keyfile=None,
        client_cafile=None,
        ssl_context=None,
        basic_auth=None,
        max_connections=64,
        max_pending=1024,
        max_queued=256,
        read_timeout=5.0,
        write_timeout=10.0,
        max_request_line=8192,
        max_header_bytes=16384,
        max_headers=100,
    ):
        if not callable(render) or not callable(health):
            raise InvalidValueError(
                f"render and health: expected callables, got {render!r}, {health!r}"
            )
        if not isinstance(host, str):
            raise InvalidValueError(f"host: expected a string, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidValueError(f"port: expected an int in 0..65535, got {port!r}")
        _check_path("health_path", health_path)
        _check_path("live_path", live_path)
        for name, value in (("read_timeout", read_timeout), ("write_timeout", write_timeout)):
            _check_positive(name, value)
        for name, value in (
            ("max_connections", max_connections),
            ("max_pending", max_pending),
            ("max_queued", max_queued),
            ("max_request_line", max_request_line),
            ("max_header_bytes", max_header_bytes),
            ("max_headers", max_headers),
        ):
            _check_positive(name, value, int)
        if basic_auth is not None:
            if (
                not isinstance(basic_auth, (tuple, list))
                or len(basic_auth) != 2
                or not all(isinstance(x, str) for x in basic_auth)
                or ":" in basic_auth[0]
            ):
                raise InvalidValueError(
                    "basic_auth: expected (user, password) strings, user without ':', "
                    f"got {basic_auth!r}"
                )
            self._auth = f"{basic_auth[0]}:{basic_auth[1]}".encode("utf-8")
        else:
            self._auth = None
        if (keyfile or client_cafile) and not certfile:
            raise InvalidValueError("keyfile and client_cafile need certfile")
        if certfile and ssl_context is not None:
            raise InvalidValueError("give either certfile or ssl_context, not both")
        if certfile:
            ssl_context = _make_ssl_context(certfile, keyfile, client_cafile)
        self._ssl = ssl_context
        self._render = render
        self._health = health
        self._host = host
        self._port = port
        self._health_path = health_path
        self._live_path = live_path
        self._routes = frozenset((METRICS_PATH, health_path, live_path, "/"))
        self._openmetrics = bool(openmetrics)
        self._max_workers = max_connections
        self._max_pending = max_pending
        self._max_queued = max_queued
        self._read_timeout = float(read_timeout)
        self._write_timeout = float(write_timeout)
        self._max_line = max_request_line
        self._max_head = max_header_bytes
        self._max_headers = max_headers
        items = "\n".join(
            f'<li><a href="{html.escape(p[1:] or ".")}">{html.escape(p)}</a></li>'
            for p in dict.fromkeys((METRICS_PATH, health_path, live_path))
        )
        self._landing = _LANDING.format(items=items).encode("utf-8")

        self._lock = threading.Lock()  # guards _state, _stopping, _conns, _handbacks
        self._state = "new"
        self._stopping = False
        self._conns = set()  # every accepted socket not yet closed
        self._handbacks = collections.deque()
        self._listener = None
        self._selector = None
        self._wake_r = self._wake_w = None
        self._thread = None
        self._pending = collections.OrderedDict()  # loop thread only; accept order = deadline order
        self._draining = collections.OrderedDict()  # loop thread only
        self._paused_until = None
        self._fd_warned = False
        self._jobs = queue.SimpleQueue()
        self._pool_lock = threading.Lock()  # guards _workers, _idle, _queued
        self._workers = []
        self._worker_ids = itertools.count(1)
        self._idle = 0
        self._queued = 0
        self._name = "dyn-metrics-server"

    # -- public surface ----------------------------------------------------------------

    @property
    def host(self):
        """The bound address once started (e.g. ``0.0.0.0``), else the configured host."""
        return self._host

    @property
    def port(self):
        """The bound port once started (the real one when 0 was asked), else the configured port."""
        return self._port

    @property
    def address(self):
        return self._host, self._port

    @property
    def url(self):
        """The metrics URL; a wildcard bind shows ``127.0.0.1`` (``[::1]`` for ``::``)."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{_display_host(self._host)}:{self._port}{METRICS_PATH}"

    @property
    def thread(self):
        """The event-loop thread (None before :meth:`start`)."""
        return self._thread

    @property
    def running(self):
        return self._state == "running"

    def __repr__(self):
        return f"<MetricsServer {self.url} {self._state}>"

    def __enter__(self):
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Bind, listen and start the daemon thread; return the bound ``(host, port)``.

        Returns once the socket is bound and listening. Raises OSError if the
        bind fails, MetricsError if the server was already started.
        """
        with self._lock:
            if self._state != "new":
                raise MetricsError(f"metrics server already {self._state}")
            self._state = "starting"
        try:
            self._listener = self._bind()
        except BaseException:
            self._state = "new"
            raise
        self._host, self._port = self._listener.getsockname()[:2]
        self._name = f"dyn-metrics-server-{self._port}"
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKER)
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._state = "running"
        self._thread.start()
        return self._host, self._port

    def stop(self):
        """Stop serving, close the listening socket and every open connection.

        Returns within about a second even if a ``render`` call is stuck (its
        handler thread is a daemon and is abandoned). Idempotent.
        """
        with self._lock:
            if self._state != "running":
                if self._state == "new":
                    self._state = "stopped"
                return
            self._state = "stopped"
            self._stopping = True
        self._wake()
        self._thread.join(1.0)
        with self._lock:
            # Unblock handlers that are sending; they close their own sockets.
            for sock in self._conns:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        with self._pool_lock:
            workers = list(self._workers)
        for _ in workers:
            self._jobs.put(None)
        deadline = time.monotonic() + 0.5
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():  # never expected; free the port regardless
            self._listener.close()

    # -- event loop (one thread) -----------------------------------------------------------

    def _bind(self):
        host = self._host or "0.0.0.0"
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, self._port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1024)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def _wake(self):
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _loop(self):
        select = self._selector.select
        try:
            while not self._stopping:
                for key, mask in select(self._timeout()):
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
                            _log.exception("unexpected error on connection from %s", what.addr[0])
                            self._drop(what)
                self._sweep()
        except Exception:
            _log.exception("metrics server loop failed")
        finally:
            self._close_all()

    def _timeout(self):
        now = time.monotonic()
        timeout = 1.0
        for conns in (self._pending, self._draining):
            if conns:
                timeout = min(timeout, next(iter(conns)).deadline - now)
        if self._paused_until is not None:
            timeout = min(timeout, self._paused_until - now)
        return max(timeout, 0.0)

    def _sweep(self):
        now = time.monotonic()
        for conns in (self._pending, self._draining):
            while conns:
                conn = next(iter(conns))
                if conn.deadline > now:
                    break
                _log.debug("%s: closed after the read timeout", conn.addr[0])
                self._drop(conn)
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)

    def _accept(self):
        for _ in range(128):
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    _log.debug("accept failed: %s", e)
                    return
                # Out of descriptors: make room by dropping the oldest idle
                # connection, else stop accepting for a moment.
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
            self._fd_warned = False
            self._admit(sock, addr)

    def _admit(self, sock, addr):
        try:
            sock.setblocking(False)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as e:
            _log.debug("%s: dropped at accept: %s", addr[0], e)
            sock.close()
            return
        if len(self._pending) >= self._max_pending:
            oldest = next(iter(self._pending))
            _log.debug("%s: dropped, too many pending connections", oldest.addr[0])
            self._drop(oldest)
        conn = _Conn(sock, addr, time.monotonic() + self._read_timeout, self._ssl is not None)
        with self._lock:
            self._conns.add(sock)
        self._pending[conn] = None
        self._selector.register(sock, selectors.EVENT_READ, conn)

    def _want(self, conn, events):
        if conn.events != events:
            conn.events = events
            self._selector.modify(conn.sock, events, conn)

    def _on_ready(self, conn):
        sock = conn.sock
        if conn.handshaking:
            try:
                sock.do_handshake()
            except ssl.SSLWantReadError:
                return self._want(conn, selectors.EVENT_READ)
            except ssl.SSLWantWriteError:
                return self._want(conn, selectors.EVENT_WRITE)
            except _DISCONNECTS as e:
                _log.debug("%s: TLS handshake failed: %s", conn.addr[0], e)
                return self._drop(conn)
            conn.handshaking = False
            self._want(conn, selectors.EVENT_READ)
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return None
            except _DISCONNECTS as e:
                _log.debug("%s: read failed: %s", conn.addr[0], e)
                return self._drop(conn)
            if not data:
                _log.debug("%s: closed before a complete request", conn.addr[0])
                return self._drop(conn)
            conn.buf += data
            try:
                request = self._parse(conn)
            except _BadRequest as e:
                return self._reject(conn, e.status, e.body)
            if request is not None:
                return self._dispatch(request)

    def _parse(self, conn):
        """The request in ``conn.buf``, None until it is complete; raises _BadRequest."""
        buf = conn.buf
        if buf[:1] in (b"\r", b"\n"):  # empty lines before the request line are allowed
            del buf[: len(buf) - len(buf.lstrip(b"\r\n"))]
            conn.scanned = 0
        nl = buf.find(b"\n", 0, self._max_line + 2)
        if nl < 0 and len(buf) >= self._max_line + 2:
            raise _BadRequest(414, "Request line too long")
        if nl >= 0 and len(buf[:nl].rstrip(b"\r")) > self._max_line:
            raise _BadRequest(414, "Request line too long")
        end = _HEAD_END_RE.search(buf, max(conn.scanned - 3, 0))
        if end is None:
            conn.scanned = len(buf)
            if len(buf) > self._max_head:
                raise _BadRequest(431, "Request header fields too large")
            return None
        if end.start() > self._max_head:
            raise _BadRequest(431, "Request header fields too large")
        lines = bytes(buf[: end.start()]).split(b"\n")
        parts = lines[0].rstrip(b"\r").split(b" ")
        if (
            len(parts) != 3
            or not _TOKEN_RE.fullmatch(parts[0])
            or not _TARGET_RE.fullmatch(parts[1])
        ):
            raise _BadRequest(400, "Bad request")
        version = _VERSION_RE.fullmatch(parts[2])
        if version is None:
            raise _BadRequest(400, "Bad request")
        if version.group(1) != b"1":
            raise _BadRequest(505, "HTTP version not supported")
        if len(lines) - 1 > self._max_headers:
            raise _BadRequest(431, "Request header fields too large")
        headers = {}
        for raw in lines[1:]:
            raw = raw.rstrip(b"\r")
            name, sep, value = raw.partition(b":")
            if not sep or not _TOKEN_RE.fullmatch(name):  # also rejects obs-fold
                raise _BadRequest(400, "Bad request")
            key = name.decode("ascii").lower()
            value = value.strip(b" \t").decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        method, target = parts[0].decode("ascii"), parts[1].decode("ascii")
        return _Request(conn, method, target, parts[2].decode("ascii"), headers)

    def _reject(self, conn, status, body, extra=()):
        _log.debug("%s: rejected with %d: %s", conn.addr[0], status, body)
        try:
            conn.sock.send(_text_response(status, body, extra))
        except OSError:
            pass
        self._linger(conn)

    def _linger(self, conn):
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

    def _drain(self, conn):
        try:
            for _ in range(16):
                if not conn.sock.recv(65536):
                    return self._drop(conn)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return self._drop(conn)
        return None

    def _drop(self, conn):
        self._pending.pop(conn, None)
        self._draining.pop(conn, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self._close(conn.sock)

    def _close(self, sock):
        with self._lock:
            self._conns.discard(sock)
            sock.close()

    def _on_wake(self):
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
            try:
                conn.sock.setblocking(False)
                conn.events = selectors.EVENT_READ
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            except (OSError, ValueError):
                self._close(conn.sock)
                continue
            self._linger(conn)

    def _close_all(self):
        with self._lock:
            self._stopping = True
            handbacks = list(self._handbacks)
            self._handbacks.clear()
        for conn in list(self._pending) + list(self._draining):
            self._drop(conn)
        for conn in handbacks:
            self._close(conn.sock)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    def _dispatch(self, request):
        conn = request.conn
        with self._pool_lock:
            busy = self._queued >= self._max_queued
            if not busy:
                self._queued += 1
                spawn = self._idle < self._queued and len(self._workers) < self._max_workers
                if spawn:
                    worker = threading.Thread(
                        target=self._work,
                        name=f"{self._name}-worker-{next(self._worker_ids)}",
                        daemon=True,
                    )
                    self._workers.append(worker)
        if busy:
            return self._reject(conn, 503, "Server busy", [("Retry-After", "1")])
        del self._pending[conn]
        self._selector.unregister(conn.sock)
        if spawn:
            worker.start()
        self._jobs.put(request)
        return None

    # -- handler threads ------------------------------------------------------------------------

    def _work(self):
        while True:
            with self._pool_lock:
                self._idle += 1
            try:
                request = self._jobs.get(timeout=_WORKER_IDLE)
            except queue.Empty:
                with self._pool_lock:
                    self._idle -= 1
                    # Leave only if the other idle handlers cover the queued jobs;
                    # _dispatch counts a job under this lock before putting it.
                    if self._queued <= self._idle:
                        self._workers.remove(threading.current_thread())
                        return
                continue
            with self._pool_lock:
                self._idle -= 1
                if request is not None:
                    self._queued -= 1
            if request is None:
                return
            try:
                self._handle(request)
            except Exception:
                _log.exception("unexpected error in a metrics server handler")

    def _handle(self, request):
        conn = request.conn
        if self._stopping:
            return self._close(conn.sock)
        status, data = self._respond(request)
        # Logged before sending, so the line exists once the client has its answer.
        _log.debug(
            '%s "%s %s %s" %d %d',
            conn.addr[0], request.method, request.target, request.version, status, len(data),
        )
        try:
            self._send_all(conn.sock, data)
        except _DISCONNECTS as e:
            _log.debug("%s: client went away: %s", conn.addr[0], e)
            return self._close(conn.sock)
        if request.unread_body:
            with self._lock:
                if not self._stopping:
                    self._handbacks.append(conn)
                    self._wake()
                    return None
        return self._close(conn.sock)

    def _send_all(self, sock, data):
        # A total deadline, so a client reading one byte at a time cannot hold
        # a handler thread for longer than write_timeout.
        deadline = time.monotonic() + self._write_timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("write timed out")
            sock.settimeout(left)
            view = view[sock.send(view[:_WRITE_CHUNK]):]

    def _respond(self, request):
        """Return ``(status, response_bytes)``; never raises."""
        head_only = request.method == "HEAD"
        headers = request.headers
        if self._auth is not None and not self._authorized(headers.get("authorization")):
            extra = [("WWW-Authenticate", 'Basic realm="dyn_metrics"')]
            return 401, _text_response(401, "Unauthorized", extra, head_only)
        target = request.target
        if target.startswith(("http://", "https://")):  # absolute form
            parts = urlsplit(target)
            path, query = parts.path or "/", parts.query
        else:
            path, _, query = target.partition("?")
        if path not in self._routes:
            return 404, _text_response(404, "Route not found", head_only=head_only)
        if request.method not in ("GET", "HEAD"):
            return 405, _text_response(405, "Method not allowed", [("Allow", "GET, HEAD")])
        if path == METRICS_PATH:
            return self._metrics(headers, query, head_only)
        if path in (self._health_path, self._live_path):
            return self._health_reply(head_only)
        ctype = [("Content-Type", "text/html; charset=utf-8")]
        return 200, _response(200, ctype, self._landing, head_only)

    def _authorized(self, value):
        if not value:
            return False
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            raw = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(raw, self._auth)

    def _metrics(self, headers, query, head_only):
        fmt = negotiate(headers.get("accept"), self._openmetrics)
        try:
            text = self._render(fmt)
            if query:
                names = parse_qs(query, keep_blank_values=True).get("name[]")
                if names is not None:
                    text = filter_families(text, names)
            body = text.encode("utf-8")
        except Exception:
            _log.exception("Failed to get metrics")
            return 500, _text_response(500, "Failed to get metrics", head_only=head_only)
        reply = [
            ("Content-Type", CONTENT_TYPES[fmt]),
            ("Vary", "Accept, Accept-Encoding" if self._openmetrics else "Accept-Encoding"),
        ]
        if accepts_gzip(headers.get("accept-encoding")):
            body = gzip.compress(body, compresslevel=6, mtime=0)
            reply.append(("Content-Encoding", "gzip"))
        return 200, _response(200, reply, body, head_only)

    def _health_reply(self, head_only):
        try:
            healthy, body = self._health()
            payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
        except Exception:
            _log.exception("Failed to get health status")
            return 500, _text_response(500, "Failed to get health status", head_only=head_only)
        status = 200 if healthy else 503
        return status, _response(status, [("Content-Type", "application/json")], payload, head_only)
