"""MetricsServer: ``/metrics``, health and liveness over HTTP, with routes, auth and TLS.

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

Connections, limits, timeouts and logging are the engine's job
(:mod:`dyn_metrics.httploop`, whose docstring says how it stays up under
hostile clients); negotiation and ``name[]`` filtering are pure functions in
:mod:`dyn_metrics.negotiation`, re-exported here.

``basic_auth=(user, password)`` protects every path, health and live
included (a probe must send the header), so a 401 reveals nothing about the
routes. Serve it over TLS: Basic credentials are only base64.
"""

import base64
import binascii
import gzip
import hmac
import html
import json
import logging
import ssl
import threading
from urllib.parse import parse_qs, urlsplit

from ..errors import InvalidValueError, MetricsError
from ..exposition.negotiation import (
    CONTENT_TYPES,
    OPENMETRICS_CONTENT_TYPE,
    accepts_gzip,
    negotiate,
)
from ..exposition.select import filter_text as filter_families
from .loop import HttpLoop
from .wire import response, text_response

__all__ = [
    "CONTENT_TYPES",
    "METRICS_PATH",
    "OPENMETRICS_CONTENT_TYPE",
    "MetricsServer",
    "accepts_gzip",
    "filter_families",
    "negotiate",
]

METRICS_PATH = "/metrics"

_log = logging.getLogger(__name__)

_WORKER_IDLE = 30.0  # seconds before an idle handler thread exits; given to the engine


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


class MetricsServer:
    """Serves ``/metrics``, health and live routes from a background daemon thread.

    ``render(fmt) -> str`` gives the exposition for ``fmt`` (``"text"`` or
    ``"openmetrics"``); ``health() -> (healthy, body_dict)`` gives the health
    answer. Both are called on handler threads, possibly concurrently.

    TLS: ``certfile``/``keyfile`` (or a ready ``ssl_context``); with
    ``client_cafile`` clients must present a certificate signed by that CA.
    The handshake runs non-blocking on the event loop under ``read_timeout``,
    never inside ``accept()``. ``basic_auth=(user, password)`` protects every
    path (see the module docstring). Limits and timeouts are described in
    :mod:`dyn_metrics.httploop`.

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
        # Named once here: checked below, then handed to the engine as they are.
        timeouts = {"read_timeout": read_timeout, "write_timeout": write_timeout}
        counts = {
            "max_connections": max_connections,
            "max_pending": max_pending,
            "max_queued": max_queued,
            "max_request_line": max_request_line,
            "max_header_bytes": max_header_bytes,
            "max_headers": max_headers,
        }
        for name, value in timeouts.items():
            _check_positive(name, value)
        for name, value in counts.items():
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
            self._auth = f"{basic_auth[0]}:{basic_auth[1]}".encode()
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
        items = "\n".join(
            f'<li><a href="{html.escape(p[1:] or ".")}">{html.escape(p)}</a></li>'
            for p in dict.fromkeys((METRICS_PATH, health_path, live_path))
        )
        self._landing = _LANDING.format(items=items).encode("utf-8")
        self._engine = HttpLoop(
            self._respond,
            host=host,
            port=port,
            ssl_context=ssl_context,
            worker_idle=_WORKER_IDLE,
            name="dyn-metrics-server",
            **timeouts,
            **counts,
        )
        self._lock = threading.Lock()  # guards _state
        self._state = "new"

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
        return self._engine.thread

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
            self._host, self._port = self._engine.bind()
        except BaseException:
            self._state = "new"
            raise
        self._state = "running"
        self._engine.start()
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
        self._engine.stop()

    # -- routes (handler threads) ----------------------------------------------------------

    def _respond(self, request):
        """The engine's handler: return ``(status, response_bytes)``; never raises."""
        head_only = request.method == "HEAD"
        headers = request.headers
        if self._auth is not None and not self._authorized(headers.get("authorization")):
            extra = [("WWW-Authenticate", 'Basic realm="dyn_metrics"')]
            return 401, text_response(401, "Unauthorized", extra, head_only)
        target = request.target
        if target.startswith(("http://", "https://")):  # absolute form
            try:
                parts = urlsplit(target)
            except ValueError:  # e.g. "http://[/": an unbalanced IPv6 bracket
                return 400, text_response(400, "Bad request target", head_only=head_only)
            path, query = parts.path or "/", parts.query
        else:
            path, _, query = target.partition("?")
        if path not in self._routes:
            return 404, text_response(404, "Route not found", head_only=head_only)
        if request.method not in ("GET", "HEAD"):
            return 405, text_response(405, "Method not allowed", [("Allow", "GET, HEAD")])
        if path == METRICS_PATH:
            return self._metrics(headers, query, head_only)
        if path in (self._health_path, self._live_path):
            return self._health_reply(head_only)
        ctype = [("Content-Type", "text/html; charset=utf-8")]
        return 200, response(200, ctype, self._landing, head_only)

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
            return 500, text_response(500, "Failed to get metrics", head_only=head_only)
        reply = [
            ("Content-Type", CONTENT_TYPES[fmt]),
            ("Vary", "Accept, Accept-Encoding" if self._openmetrics else "Accept-Encoding"),
        ]
        if accepts_gzip(headers.get("accept-encoding")):
            body = gzip.compress(body, compresslevel=6, mtime=0)
            reply.append(("Content-Encoding", "gzip"))
        return 200, response(200, reply, body, head_only)

    def _health_reply(self, head_only):
        try:
            healthy, body = self._health()
            payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
        except Exception:
            _log.exception("Failed to get health status")
            return 500, text_response(500, "Failed to get health status", head_only=head_only)
        status = 200 if healthy else 503
        return status, response(status, [("Content-Type", "application/json")], payload, head_only)
