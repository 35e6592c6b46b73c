"""MetricsServer: ``/metrics``, health and liveness over HTTP, with routes, auth and TLS.

It stands apart from the metric code: it takes a ``render(fmt, names) -> str``
callable (``fmt`` is ``"text"``, ``"openmetrics"`` or ``"protobuf"``, the
last rendered as bytes, the others as str; ``names`` the
``name[]`` values of the query as a frozenset, None without any) and a
``health() -> (healthy, body_dict)`` callable, so it can be run and tested
with stubs.

Routes (GET, and HEAD with the same headers and no body):

* ``/metrics`` -- the exposition. ``?name[]=x&name[]=y`` is handed to
  ``render``, which keeps only the families named ``x``/``y`` (or having a
  sample of that name), as prometheus_client offers. gzip when
  ``Accept-Encoding`` allows it. OpenMetrics only when enabled and preferred
  by the client's ``Accept`` q-values, the protobuf format (native
  histograms) whenever the client prefers it (:func:`negotiate`). A raising
  ``render`` gives 500 ``Failed to get metrics`` and one logged exception.
* health and live paths -- the health JSON, 200 when healthy else 503.
* ``/`` -- a small HTML page linking the routes.
* anything else -- 404 ``Route not found``; other methods on a route -- 405
  with ``Allow: GET, HEAD``.

The ``/metrics`` answer is :func:`metrics_response`, which the WSGI and ASGI
apps (:mod:`~dyn_metrics.server.wsgi`, :mod:`~dyn_metrics.server.asgi`) call
too, each with its own renderer, so all three answer alike.

Connections, limits, timeouts and logging are the loop's job
(:mod:`dyn_metrics.server.loop`), parsing the request and writing the
response http.server's (:mod:`dyn_metrics.server.handler`); negotiation is
pure functions in :mod:`dyn_metrics.exposition.negotiation`, re-exported here.

``basic_auth=(user, password)`` and ``users`` (hashed passwords) protect
every path, health and live included (a probe must send the header), so a 401
reveals nothing about the routes; ``auth_exempt_probes`` lets health and live
answer without credentials. Serve it over TLS: Basic credentials are only base64.

Scrape isolation. Health, live and every other route but ``/metrics`` run on
the loop's small probe pool, never queued behind scrapes. Concurrent scrapes
of the same format and ``name[]`` set share one render in progress
(:mod:`~dyn_metrics.server.flight`), run by the scrape that started it on its
own thread; ``scrape_timeout`` seconds into it, a scrape still waiting is
answered 503 ``Scrape timed out`` (the one rendering by the watchdog thread,
through ``Request.late``), and while that render still runs every scrape
answers 503 at once: a hung callback pins one thread only.

``on_scrape`` (optional) is told of each ``/metrics`` request without the
server knowing any metric: it is called as the request starts and returns a
``finish(status)`` callable, called once with the status answered (on the
watchdog thread for the scrape whose own render overran).
"""

import dataclasses
import functools
import html
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional, Protocol, Union
from urllib.parse import parse_qs, urlsplit

from ..errors import InvalidValueError, MetricsError
from ..exposition.negotiation import CONTENT_TYPES, accepts_gzip, negotiate
from ..exposition.openmetrics import CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from .flight import RenderFailed, RenderFlights, RenderHung, RenderOverran, RenderTimeout
from .handler import Answered, Request, Response, plain
from .loop import HttpLoop
from .options import METRICS_PATH, ServerOptions

__all__ = [
    "CONTENT_TYPES",
    "METRICS_PATH",
    "OPENMETRICS_CONTENT_TYPE",
    "METHODS",
    "MetricsServer",
    "Render",
    "Rendered",
    "Renderer",
    "metrics_response",
    "method_not_allowed",
    "sized",
    "Health",
    "OnScrape",
    "accepts_gzip",
    "negotiate",
]

Render = Callable[[str, Optional[frozenset[str]]], Union[str, bytes]]
Health = Callable[[], tuple[bool, Mapping[str, object]]]
Finish = Callable[[int], None]
OnScrape = Callable[[], Finish]


class Rendered(Protocol):
    """A finished render: the exposition as UTF-8 ``body``, and :meth:`gzipped` of it."""

    body: bytes

    def gzipped(self) -> bytes: ...


#: ``renderer(fmt, names) -> Rendered``, e.g. :meth:`RenderFlights.get
#: <dyn_metrics.server.flight.RenderFlights.get>`: raises RenderFailed (already
#: logged), RenderTimeout or RenderHung as that does.
Renderer = Callable[[str, Optional[frozenset[str]]], Rendered]

METHODS = ("GET", "HEAD")

_log = logging.getLogger(__name__)

_WORKER_IDLE = 30.0  # seconds before an idle handler thread exits; given to the loop


def _display_host(host: str) -> str:
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


class MetricsServer:
    """Serves ``/metrics``, health and live routes from a background daemon thread.

    ``render(fmt, names) -> str`` gives the exposition for ``fmt`` (``"text"``
    or ``"openmetrics"``) restricted to the families ``names`` selects (all
    when None); ``health() -> (healthy, body_dict)`` gives the health answer.
    Both are called on handler threads, possibly concurrently.

    ``on_scrape() -> finish(status)`` (optional) hears of every ``/metrics``
    request (see the module docstring); it must be cheap and must not raise.

    The settings are a :class:`~dyn_metrics.server.options.ServerOptions`:
    ``options``, with any keyword arguments (its field names: ``host``,
    ``port``, ``certfile``, ``basic_auth``, limits and timeouts...) replacing
    its values. The TLS handshake runs non-blocking on the event loop under
    ``read_timeout``, never inside ``accept()``.

    Raises InvalidValueError on bad arguments; TLS file errors (OSError,
    ssl.SSLError) propagate from the constructor, bind errors from
    :meth:`start`. Usable as a context manager (starts on enter, stops on exit).
    """

    # The keyword arguments are ServerOptions fields of several types, checked there.
    def __init__(
        self,
        render: Render,
        health: Health,
        options: Optional[ServerOptions] = None,
        *,
        on_scrape: Optional[OnScrape] = None,
        **kwargs: Any,
    ) -> None:
        if not callable(render) or not callable(health):
            raise InvalidValueError(
                f"render and health: expected callables, got {render!r}, {health!r}"
            )
        if on_scrape is not None and not callable(on_scrape):
            raise InvalidValueError(f"on_scrape: expected a callable or None, got {on_scrape!r}")
        if options is None:
            options = ServerOptions(**kwargs)
        elif kwargs:
            options = dataclasses.replace(options, **kwargs)
        self._options = options
        self._auth = options.credentials()
        self._ssl = options.tls_context()
        self._flights = RenderFlights(
            render,
            timeout=float(options.scrape_timeout),
            name="dyn-metrics-server",
            idle_timeout=_WORKER_IDLE,
        )
        self._on_scrape = on_scrape
        self._probe_paths = frozenset((options.health_path, options.live_path))
        self._health = health
        self._host = options.host
        self._port = options.port
        self._routes = frozenset((METRICS_PATH, options.health_path, options.live_path, "/"))
        items = "\n".join(
            f'<li><a href="{html.escape(p[1:] or ".")}">{html.escape(p)}</a></li>'
            for p in dict.fromkeys((METRICS_PATH, options.health_path, options.live_path))
        )
        self._landing = _LANDING.format(items=items).encode("utf-8")
        self._loop = HttpLoop(
            self._respond,
            options,
            self._ssl,
            worker_idle=_WORKER_IDLE,
            name="dyn-metrics-server",
            light=functools.partial(
                _is_light, probes=frozenset(p.encode() for p in self._probe_paths)
            ),
        )
        self._lock = threading.Lock()  # guards _state
        self._state = "new"

    # -- public surface ----------------------------------------------------------------

    @property
    def options(self) -> ServerOptions:
        """The settings this server was made with (the configured host and port)."""
        return self._options

    @property
    def host(self) -> str:
        """The bound address once started (e.g. ``0.0.0.0``), else the configured host."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port once started (the real one when 0 was asked), else the configured port."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._port

    @property
    def url(self) -> str:
        """The metrics URL; a wildcard bind shows ``127.0.0.1`` (``[::1]`` for ``::``)."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{_display_host(self._host)}:{self._port}{METRICS_PATH}"

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The first of the two event-loop threads (None before :meth:`start`)."""
        return self._loop.thread

    @property
    def scrapes_waiting(self) -> int:
        """How many ``/metrics`` requests are waiting for a render right now."""
        return self._flights.waiting

    @property
    def running(self) -> bool:
        return self._state == "running"

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url} {self._state}>"

    def __enter__(self) -> "MetricsServer":
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> tuple[str, int]:
        """Bind, listen and start the daemon thread; return the bound ``(host, port)``.

        Returns once the socket is bound and listening. Raises OSError if the
        bind fails, MetricsError if the server was already started.
        """
        with self._lock:
            if self._state != "new":
                raise MetricsError(f"metrics server already {self._state}")
            self._state = "starting"
        try:
            self._host, self._port = self._loop.bind()
            self._flights.name = f"dyn-metrics-server-{self._port}"
        except BaseException:
            self._state = "new"
            raise
        self._state = "running"
        self._loop.start()
        return self._host, self._port

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection.

        Returns within two seconds even if a ``render`` call is stuck (its
        thread is a daemon and is abandoned). Idempotent.
        """
        with self._lock:
            if self._state != "running":
                if self._state == "new":
                    self._state = "stopped"
                return
            self._state = "stopped"
        self._loop.stop()
        self._flights.close(0.1)

    # -- routes (handler threads) ----------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        """The app the handler asks: the answer to ``request``; never raises."""
        headers = request.headers
        target = request.target
        if target.startswith(("http://", "https://")):  # absolute form
            try:
                parts = urlsplit(target)
            except ValueError:  # e.g. "http://[/": an unbalanced IPv6 bracket
                return plain(400, "Bad request target")
            path, query = parts.path or "/", parts.query
        else:
            path, _, query = target.partition("?")
        if (
            self._auth is not None
            and not (self._options.auth_exempt_probes and path in self._probe_paths)
            and not self._auth.check(headers.get("authorization"))
        ):
            return plain(401, "Unauthorized", [("WWW-Authenticate", 'Basic realm="dyn_metrics"')])
        if path not in self._routes:
            return plain(404, "Route not found")
        if request.method not in METHODS:
            return method_not_allowed()
        if path == METRICS_PATH:
            finish = None if self._on_scrape is None else self._on_scrape()
            renderer: Renderer = self._flights.get
            if request.late is not None:  # this thread may render: see server.flight
                overrun = functools.partial(self._overrun, request.late, finish)
                renderer = functools.partial(self._flights.get, overrun=overrun)
            response = plain(500, "Failed to get metrics")
            try:
                response = metrics_response(
                    request.method,
                    headers,
                    query,
                    renderer,
                    openmetrics=self._options.openmetrics,
                    scrape_timeout=self._options.scrape_timeout,
                )
            except RenderOverran:  # _overrun answered, and told finish
                finish = None
                raise Answered() from None
            finally:
                if finish is not None:
                    finish(response.status)
            return response
        if path in self._probe_paths:
            return self._health_reply()
        return Response(200, [("Content-Type", "text/html; charset=utf-8")], self._landing)

    def _overrun(self, late: Callable[[Response], None], finish: Optional[Finish]) -> None:
        """Answer 503 from the watchdog thread a scrape whose own render overran."""
        response = _timed_out(self._options.scrape_timeout)
        try:
            if finish is not None:
                finish(response.status)
        finally:
            late(response)

    def _health_reply(self) -> Response:
        try:
            healthy, body = self._health()
            payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
        except Exception:
            _log.exception("Failed to get health status")
            return plain(500, "Failed to get health status")
        status = 200 if healthy else 503
        return Response(status, [("Content-Type", "application/json")], payload)


# -- the /metrics response, shared by the server and the WSGI/ASGI apps -------------------


def method_not_allowed() -> Response:
    """The 405 every route answers to a method other than GET and HEAD."""
    return plain(405, "Method not allowed", [("Allow", "GET, HEAD")])


def metrics_response(
    method: str,
    headers: Mapping[str, str],
    query: str,
    renderer: Renderer,
    *,
    openmetrics: bool,
    scrape_timeout: float,
) -> Response:
    """The answer to a ``/metrics`` request, GET's body included for HEAD too.

    ``headers`` maps lowercase field names to values (only ``accept`` and
    ``accept-encoding`` are read); ``query`` is the raw query string, whose
    ``name[]`` values select the families. ``renderer`` gives the finished
    render (the server passes its single-flight renderer, the apps theirs);
    ``scrape_timeout`` is only named in the 503 text of a timed-out render.
    A method other than GET and HEAD gets 405. Never raises for anything
    the client sent.
    """
    if method not in METHODS:
        return method_not_allowed()
    fmt = negotiate(headers.get("accept"), openmetrics)
    names = None
    if query:
        values = parse_qs(query, keep_blank_values=True).get("name[]")
        names = None if values is None else frozenset(values)
    try:
        rendered = renderer(fmt, names)
    except RenderFailed:  # logged once by the renderer
        return plain(500, "Failed to get metrics")
    except RenderTimeout:
        return _timed_out(scrape_timeout)
    except RenderHung:
        return plain(
            503,
            "Scrape refused: an earlier render is still running past the scrape timeout",
            [("Retry-After", "1")],
        )
    # Accept always matters: protobuf is served to a client that asks for it.
    reply = [("Content-Type", CONTENT_TYPES[fmt]), ("Vary", "Accept, Accept-Encoding")]
    if not accepts_gzip(headers.get("accept-encoding")):
        return Response(200, reply, rendered.body)
    reply.append(("Content-Encoding", "gzip"))
    return Response(200, reply, rendered.gzipped())


def _timed_out(scrape_timeout: float) -> Response:
    return plain(503, f"Scrape timed out after {scrape_timeout:g} s", [("Retry-After", "1")])


def sized(method: str, response: Response) -> Response:
    """``response`` as sent: ``Content-Length`` added, and no body for HEAD (GET's length kept).

    What :class:`~dyn_metrics.server.handler.RequestHandler` does for the
    server; the WSGI and ASGI apps call this.
    """
    headers = [*response.headers, ("Content-Length", str(len(response.body)))]
    return Response(response.status, headers, b"" if method == "HEAD" else response.body)


def _is_light(head: bytes, probes: frozenset[bytes] = frozenset((b"/health", b"/live"))) -> bool:
    """True when ``head`` asks for a probe path: the loop runs those on the probe pool.

    Reads the request line only. Everything else, 404s, ``/`` and malformed
    lines included, runs on the main pool, so no request that costs a Basic
    auth key derivation can crowd out the probes.
    """
    parts = head.split(b"\n", 1)[0].split(b" ")
    if len(parts) < 2:
        return False
    target = parts[1]
    if target.startswith((b"http://", b"https://")):  # absolute form
        slash = target.find(b"/", target.index(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    return target.partition(b"?")[0] in probes
