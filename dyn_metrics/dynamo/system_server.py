"""Glue between a runtime and the system status server (Dynamo's system_status_server.rs).

Duck-typed so it imports no hierarchy code: the runtime passed as ``drt``
needs ``drt.render_exposition(fmt) -> str`` (``fmt`` is ``"text"`` or
``"openmetrics"``; it refreshes the uptime gauge and runs the scrape
callbacks) and ``drt.health`` with a ``snapshot() -> (healthy, body)`` method
(a :class:`~dyn_metrics.health.SystemHealth`).
"""

import logging

from ..server.app import MetricsServer

_log = logging.getLogger(__name__)


def _hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def start_http_server(
    drt,
    port=0,
    host="0.0.0.0",
    *,
    openmetrics=False,
    health_path="/health",
    live_path="/live",
    **options,
):
    """Serve ``drt``'s ``/metrics``, health and live routes; return the started MetricsServer.

    ``options`` are passed to :class:`~dyn_metrics.server.MetricsServer`
    (``certfile``, ``keyfile``, ``client_cafile``, ``ssl_context``,
    ``basic_auth``, limits and timeouts). Raises OSError naming ``host:port``
    (same errno and OSError subclass) when the address cannot be bound, and
    InvalidValueError on bad arguments.
    """
    server = MetricsServer(
        drt.render_exposition,
        drt.health.snapshot,
        host=host,
        port=port,
        openmetrics=openmetrics,
        health_path=health_path,
        live_path=live_path,
        **options,
    )
    try:
        server.start()
    except OSError as e:
        message = f"cannot bind {_hostport(host, port)}: {e.strerror or e}"
        if e.errno is None:
            raise OSError(message) from e
        raise OSError(e.errno, message) from e
    return server


def start_from_config(drt, config):
    """Start the server a :class:`~dyn_metrics.config.SystemConfig` asks for, or return None.

    Returns None when ``config.enabled`` is false, and also when the bind
    fails: then it logs ``Failed to bind to address host:port: reason`` at
    ERROR and the runtime carries on without a server, as Dynamo does.
    """
    if not config.enabled:
        return None
    server = MetricsServer(
        drt.render_exposition,
        drt.health.snapshot,
        host=config.host,
        port=config.port,
        openmetrics=config.openmetrics,
        health_path=config.health_path,
        live_path=config.live_path,
    )
    try:
        server.start()
    except OSError as e:
        _log.error("Failed to bind to address %s: %s", _hostport(config.host, config.port), e)
        return None
    return server
