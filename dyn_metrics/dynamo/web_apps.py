"""Glue between a metrics source and the WSGI/ASGI apps, as system_server.py is for the server.

:func:`make_wsgi_app` and :func:`make_asgi_app` resolve any source
(:func:`~dyn_metrics.registry.sources.resolve_source`: a runtime, a
hierarchy node or its ``.metrics()``, a Registry, None for ``dm.REGISTRY``)
into its render callable and build the server layer's app around it, so a
web application's ``/metrics`` answers exactly what the built-in server's does.
"""

from ..registry.sources import resolve_source
from ..server.asgi import MetricsAsgiApp
from ..server.wsgi import MetricsWsgiApp

__all__ = ["MetricsAsgiApp", "MetricsWsgiApp", "make_asgi_app", "make_wsgi_app"]


def make_wsgi_app(source: object = None, *, openmetrics: bool = False) -> MetricsWsgiApp:
    """A PEP 3333 app serving ``source``'s exposition at whatever path it is mounted on.

    The built-in server's ``/metrics`` answer: ``Accept`` negotiation
    (OpenMetrics only with ``openmetrics=True`` and a client preferring it),
    gzip, ``name[]``, HEAD, 405 with ``Allow: GET, HEAD``; a render that
    raises gives 500 ``Failed to get metrics`` and one logged exception, one
    that takes over 10 s a 503. Raises InvalidValueError for a source of no
    known kind or a non-bool ``openmetrics``.
    """
    render, _ = resolve_source(source)
    return MetricsWsgiApp(render, openmetrics=openmetrics)


def make_asgi_app(source: object = None, *, openmetrics: bool = False) -> MetricsAsgiApp:
    """An ASGI 3 app serving ``source``'s exposition; as :func:`make_wsgi_app` otherwise.

    HTTP scopes get the ``/metrics`` answer, rendered on worker threads, never
    on the event loop; lifespan scopes are answered; websockets are refused.
    """
    render, _ = resolve_source(source)
    return MetricsAsgiApp(render, openmetrics=openmetrics)
