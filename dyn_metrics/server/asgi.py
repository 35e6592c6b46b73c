"""MetricsAsgiApp: the ``/metrics`` answer of the built-in server as an ASGI 3 application.

``await app(scope, receive, send)``, for uvicorn, hypercorn, or mounted in
Starlette/FastAPI (``app.mount("/metrics", ...)``). Scopes:

* ``http`` -- exactly the server's ``/metrics`` answer
  (:func:`~dyn_metrics.server.app.metrics_response`) at whatever path it is
  mounted on, as prometheus_client's ``make_asgi_app`` does: negotiation,
  gzip, ``name[]``, HEAD with GET's headers and no body, 405 with
  ``Allow: GET, HEAD``. Header names are sent lowercase, as ASGI asks. The
  request body is never read.
* ``lifespan`` -- ``lifespan.startup.complete`` and
  ``lifespan.shutdown.complete``.
* ``websocket`` -- refused: ``websocket.close`` before any accept, which
  the server turns into HTTP 403.
* any other type -- InvalidValueError naming it (ASGI asks applications to
  raise for scope types they do not know).

Never on the event loop: the response (render and gzip) is made on a small
pool of at most :data:`WAITERS` threads, each waiting for
:class:`~dyn_metrics.server.flight.RenderFlights` as a server handler thread
does: concurrent requests for the same format and ``name[]`` share one
render on its own render thread, a request waits at most ``scrape_timeout``
seconds (then 503), and a hung update callback pins one render thread while
the loop and every other route of the application go on. Requests past
:data:`WAITERS` wait as queued work items, not threads.
"""

import asyncio
import threading
from collections.abc import Awaitable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from ..errors import InvalidValueError
from .app import METHODS, Render, method_not_allowed, metrics_response, sized
from .flight import RenderFlights
from .handler import Response
from .wsgi import check_settings

__all__ = ["WAITERS", "MetricsAsgiApp", "Receive", "Scope", "Send"]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Threads that wait for renders, at most, per app.
WAITERS = 4

_READ = frozenset((b"accept", b"accept-encoding"))


def _headers(scope: Scope) -> dict[str, str]:
    """The ``accept`` and ``accept-encoding`` fields, repeats joined with ``", "``."""
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers") or ():
        key = bytes(name).lower()
        if key in _READ:
            found.setdefault(key.decode("latin-1"), []).append(bytes(value).decode("latin-1"))
    return {key: ", ".join(values) for key, values in found.items()}


class MetricsAsgiApp:
    """``await app(scope, receive, send)`` serving ``render(fmt, names)`` (see the module doc).

    ``render``, ``openmetrics`` and ``scrape_timeout`` as for
    :class:`~dyn_metrics.server.wsgi.MetricsWsgiApp`. Raises
    InvalidValueError on bad arguments. One app may serve any number of
    concurrent requests, from one event loop or several.
    """

    def __init__(
        self, render: Render, *, openmetrics: bool = False, scrape_timeout: float = 10.0
    ) -> None:
        check_settings(render, openmetrics, scrape_timeout)
        self._openmetrics = openmetrics
        self._scrape_timeout = float(scrape_timeout)
        self._flights = RenderFlights(render, timeout=self._scrape_timeout, name="dyn-metrics-asgi")
        self._lock = threading.Lock()  # guards _pool
        self._pool: Optional[ThreadPoolExecutor] = None  # made on the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise InvalidValueError(
                f"scope type: expected 'http', 'lifespan' or 'websocket', got {kind!r}"
            )

    def __repr__(self) -> str:
        return f"<MetricsAsgiApp openmetrics={self._openmetrics}>"

    async def _http(self, scope: Scope, send: Send) -> None:
        method = str(scope.get("method", "GET"))
        if method in METHODS:
            query = bytes(scope.get("query_string") or b"").decode("latin-1")
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(
                self._waiters(), self._respond, method, _headers(scope), query
            )
        else:
            response = method_not_allowed()
        response = sized(method, response)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    def _respond(self, method: str, headers: Mapping[str, str], query: str) -> Response:
        """The response, made on a waiter thread (it blocks until the render is done)."""
        return metrics_response(
            method,
            headers,
            query,
            self._flights.get,
            openmetrics=self._openmetrics,
            scrape_timeout=self._scrape_timeout,
        )

    def _waiters(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WAITERS, thread_name_prefix="dyn-metrics-asgi")
            return self._pool

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                # The waiter threads stay: they idle on the pool's queue, and at
                # interpreter exit each returns within scrape_timeout.
                await send({"type": "lifespan.shutdown.complete"})
                return
