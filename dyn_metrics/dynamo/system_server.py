"""Glue between a runtime and the system status server (Dynamo's system_status_server.rs).

Duck-typed so it imports no hierarchy code: the runtime passed as ``drt``
needs ``drt.render_exposition(fmt, names) -> str`` (``fmt`` is ``"text"`` or
``"openmetrics"``, ``names`` the scrape's ``name[]`` selection or None; it
refreshes the uptime gauge and runs the scrape callbacks) and ``drt.health``
with a ``snapshot() -> (healthy, body)`` method (a
:class:`~dyn_metrics.dynamo.health.SystemHealth`).
"""

import logging
from collections.abc import Mapping
from typing import Any, Optional, Protocol

from ..server.app import MetricsServer
from .config import SystemConfig

_log = logging.getLogger(__name__)


class _Health(Protocol):
    def snapshot(self) -> tuple[bool, Mapping[str, Any]]: ...


class Runtime(Protocol):
    """What the server needs of a runtime (a :class:`~dyn_metrics.DistributedRuntime`)."""

    @property
    def health(self) -> _Health: ...

    def render_exposition(self, fmt: str, names: Optional[frozenset[str]]) -> str: ...


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# The options are ServerOptions fields of several types, checked there.
def start_http_server(
    drt: Runtime,
    port: int = 0,
    host: str = "0.0.0.0",
    *,
    openmetrics: bool = False,
    health_path: str = "/health",
    live_path: str = "/live",
    **options: Any,
) -> MetricsServer:
    """Serve ``drt``'s ``/metrics``, health and live routes; return the started MetricsServer.

    ``options`` are further :class:`~dyn_metrics.server.ServerOptions` fields
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


def start_from_config(drt: Runtime, config: SystemConfig) -> Optional[MetricsServer]:
    """Start the server a :class:`~dyn_metrics.dynamo.config.SystemConfig` asks for, or None.

    Returns None when ``config.enabled`` is false, and also when the bind
    fails: then it logs ``Failed to bind to address host:port: reason`` at
    ERROR and the runtime carries on without a server, as Dynamo does.
    """
    port = config.port
    if not config.enabled or port is None:  # enabled means a port is set; mypy sees the port
        return None
    server = MetricsServer(
        drt.render_exposition,
        drt.health.snapshot,
        host=config.host,
        port=port,
        openmetrics=config.openmetrics,
        health_path=config.health_path,
        live_path=config.live_path,
    )
    try:
        server.start()
    except OSError as e:
        _log.error("Failed to bind to address %s: %s", _hostport(config.host, port), e)
        return None
    return server
