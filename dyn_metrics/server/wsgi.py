"""MetricsWsgiApp: the ``/metrics`` answer of the built-in server as a PEP 3333 application.

Mount it in any WSGI server or framework (``wsgiref``, gunicorn, Flask's
``DispatcherMiddleware``...). It answers at whatever path it is mounted on,
as prometheus_client's ``make_wsgi_app`` does, with exactly the server's
``/metrics`` answer (:func:`~dyn_metrics.server.app.metrics_response`):
negotiation from ``HTTP_ACCEPT``, gzip from ``HTTP_ACCEPT_ENCODING``,
``name[]`` from ``QUERY_STRING``, HEAD with GET's headers and no body, 405
with ``Allow: GET, HEAD`` for any other method.

Renders go through :class:`~dyn_metrics.server.flight.RenderFlights`, as the
server's do: concurrent requests for the same format and ``name[]`` share
one render, run on a render thread of its own; a request waits at most
``scrape_timeout`` seconds (then 503), so a hung update callback pins one
thread, not every worker of the WSGI server.
"""

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Callable

from ..errors import InvalidValueError
from .app import Render, metrics_response, sized
from .flight import RenderFlights

__all__ = ["MetricsWsgiApp", "StartResponse", "reason"]

StartResponse = Callable[..., Any]


def reason(status: int) -> str:
    """``"200 OK"``: the status line text of ``status`` (its standard phrase)."""
    return f"{status} {HTTPStatus(status).phrase}"


def check_settings(render: object, openmetrics: object, scrape_timeout: object) -> None:
    """Raise InvalidValueError unless the arguments of an app are usable (shared with ASGI)."""
    if not callable(render):
        raise InvalidValueError(f"render: expected a callable, got {render!r}")
    if not isinstance(openmetrics, bool):
        raise InvalidValueError(f"openmetrics: expected True or False, got {openmetrics!r}")
    if (
        isinstance(scrape_timeout, bool)
        or not isinstance(scrape_timeout, (int, float))
        or not scrape_timeout > 0
    ):
        raise InvalidValueError(
            f"scrape_timeout: expected a positive number, got {scrape_timeout!r}"
        )


class MetricsWsgiApp:
    """``app(environ, start_response) -> [body]`` serving ``render(fmt, names)``.

    ``render`` is the server's render callable (``fmt`` ``"text"`` or
    ``"openmetrics"``, ``names`` the ``name[]`` selection or None);
    ``openmetrics`` allows OpenMetrics for clients that prefer it;
    ``scrape_timeout`` bounds a request's wait for its render. Raises
    InvalidValueError on bad arguments. Thread-safe: the WSGI server may call
    it from any number of threads.
    """

    def __init__(
        self, render: Render, *, openmetrics: bool = False, scrape_timeout: float = 10.0
    ) -> None:
        check_settings(render, openmetrics, scrape_timeout)
        self._openmetrics = openmetrics
        self._scrape_timeout = float(scrape_timeout)
        self._flights = RenderFlights(render, timeout=self._scrape_timeout, name="dyn-metrics-wsgi")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        headers = {}
        accept = environ.get("HTTP_ACCEPT")
        if accept is not None:
            headers["accept"] = accept
        encoding = environ.get("HTTP_ACCEPT_ENCODING")
        if encoding is not None:
            headers["accept-encoding"] = encoding
        response = sized(
            method,
            metrics_response(
                method,
                headers,
                environ.get("QUERY_STRING", ""),
                self._flights.get,
                openmetrics=self._openmetrics,
                scrape_timeout=self._scrape_timeout,
            ),
        )
        start_response(reason(response.status), list(response.headers))
        return [response.body]

    def __repr__(self) -> str:
        return f"<MetricsWsgiApp openmetrics={self._openmetrics}>"
