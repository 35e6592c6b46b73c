"""Glue between a metrics source and the system status server (Dynamo's system_status_server.rs).

:func:`~dyn_metrics.registry.sources.resolve_source` turns any source into the two
callables the server takes, ``render(fmt, names) -> str`` and ``health() -> (healthy, body)``:

* a runtime (:class:`~dyn_metrics.DistributedRuntime`, or anything with
  ``render_exposition(fmt, names)``): its render, which refreshes the uptime
  gauge and runs the scrape callbacks, and its ``health.snapshot()``;
* a hierarchy node (Namespace, Component, Endpoint): its registry, with its
  children; health is the runtime's at the root of its hierarchy;
* a :class:`~dyn_metrics.dynamo.facade.Metrics` facade: its registry;
* a :class:`~dyn_metrics.Registry`: itself;
* None: the default registry ``dm.REGISTRY``.

A source without health answers always healthy: 200 with the body
``{"endpoints":{},"status":"ready"}``.

Self metrics (``self_metrics=True`` or ``DYN_SYSTEM_SELF_METRICS=1``): the
server reports each scrape through its ``on_scrape`` hook and
:class:`SelfMetrics` keeps them as ``dyn_metrics_scrape_requests_total{code}``,
``dyn_metrics_scrape_duration_seconds`` and ``dyn_metrics_scrape_in_flight``
in a registry of its own, appended to every exposition served, with the
process-wide counts of :mod:`dyn_metrics.registry.stats` as
``dyn_metrics_callback_errors_total{kind}`` and
``dyn_metrics_dropped_families_total``. Off by default, so the served bytes
are exactly the source's.
"""

import logging
import time
from typing import Any, Callable, Optional, Union

from ..errors import ConfigError
from ..export.counts import export_counts
from ..metrics import Gauge, Histogram, IntCounter, IntCounterVec, overflow_children_total
from ..registry import Registry
from ..registry.sources import Runtime, registry_render, resolve_source
from ..registry.stats import CALLBACK_ERROR_KINDS, stats
from ..server.app import MetricsServer, Render
from .config import SystemConfig

__all__ = ["Runtime", "SelfMetrics", "resolve_source", "start_from_config", "start_http_server"]

_log = logging.getLogger(__name__)

_OM_EOF = "# EOF\n"


# -- self metrics -------------------------------------------------------------------------


class SelfMetrics:
    """The server's own metrics, fed by its ``on_scrape`` hook, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.requests = self.registry.register(
            IntCounterVec(
                "dyn_metrics_scrape_requests_total",
                "Scrapes of /metrics answered, by HTTP status code",
                label_names=["code"],
            )
        )
        self.duration = self.registry.register(
            Histogram(
                "dyn_metrics_scrape_duration_seconds",
                "Time to answer a scrape of /metrics, in seconds",
            )
        )
        self.in_flight = self.registry.register(
            Gauge("dyn_metrics_scrape_in_flight", "Scrapes of /metrics being answered now")
        )
        self.callback_errors = self.registry.register(
            IntCounterVec(
                "dyn_metrics_callback_errors_total",
                "Metric callbacks that raised during a scrape, by kind of callback",
                label_names=["kind"],
            )
        )
        for kind in CALLBACK_ERROR_KINDS:
            self.callback_errors.with_label_values(kind)
        self.dropped_families = self.registry.register(
            IntCounter(
                "dyn_metrics_dropped_families_total",
                "Families left out of scrapes: invalid or repeated callback families",
            )
        )
        self.overflow_children = self.registry.register(
            IntCounter(
                "dyn_metrics_overflow_children_total",
                "Overflow children made by vecs that reached their max_children",
            )
        )
        self.exports = self.registry.register(
            IntCounterVec(
                "dyn_metrics_export_requests_total",
                "Exports sent by this process's exporters, by exporter and result",
                label_names=["exporter", "result"],
            )
        )
        self._seen: dict[str, int] = {}
        self.registry.add_update_callback(self._refresh)

    def _advance(self, key: str, value: object, counter: Union[IntCounter, IntCounterVec]) -> None:
        """Add to ``counter`` what the process-wide count ``value`` gained since last seen."""
        if not isinstance(value, int):
            return
        delta = value - self._seen.get(key, 0)
        if delta > 0:
            self._seen[key] = value
            if isinstance(counter, IntCounterVec):
                counter.with_label_values(key).inc_by(delta)
            else:
                counter.inc_by(delta)

    def _refresh(self) -> None:
        """Bring the counters up to the process-wide counts (renders are serialised)."""
        now = stats()
        errors = now["callback_errors"]
        for kind, value in errors.items() if isinstance(errors, dict) else ():
            self._advance(kind, value, self.callback_errors)
        self._advance("dropped", now["dropped_families"], self.dropped_families)
        self._advance("overflow", overflow_children_total(), self.overflow_children)
        for (exporter, result), value in export_counts().items():
            key = f"{exporter}:{result}"
            delta = value - self._seen.get(key, 0)
            if delta > 0:
                self._seen[key] = value
                self.exports.with_label_values(exporter, result).inc_by(delta)

    def on_scrape(self) -> Callable[[int], None]:
        """Count a scrape in flight; the returned callable ends it with its status code."""
        self.in_flight.inc()
        started = time.perf_counter()

        def finish(status: int) -> None:
            self.duration.observe(time.perf_counter() - started)
            self.requests.with_label_values(str(status)).inc()
            self.in_flight.dec()

        return finish

    def wrap(self, render: Render) -> Render:
        """``render`` with these metrics appended (before OpenMetrics' ``# EOF``)."""
        own = registry_render(self.registry)

        def combined(fmt: str, names: Optional[frozenset[str]]) -> Union[str, bytes]:
            out, more = render(fmt, names), own(fmt, names)
            if isinstance(out, bytes) or isinstance(more, bytes):
                # Delimited protobuf streams concatenate.
                return _as_bytes(out) + _as_bytes(more)
            if fmt == "openmetrics":
                return out.removesuffix(_OM_EOF) + more
            return out + more

        return combined


def _as_bytes(out: Union[str, bytes]) -> bytes:
    return out if isinstance(out, bytes) else out.encode("utf-8")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _server(source: object, self_metrics: bool, **options: Any) -> MetricsServer:
    render, health = resolve_source(source)
    if not self_metrics:
        return MetricsServer(render, health, **options)
    own = SelfMetrics()
    return MetricsServer(own.wrap(render), health, on_scrape=own.on_scrape, **options)


# The options are ServerOptions fields of several types, checked there.
def start_http_server(
    source: object = None,
    port: int = 0,
    host: str = "0.0.0.0",
    *,
    openmetrics: bool = False,
    health_path: str = "/health",
    live_path: str = "/live",
    scrape_timeout: float = 10.0,
    self_metrics: bool = False,
    **options: Any,
) -> MetricsServer:
    """Serve ``source``'s ``/metrics``, health and live routes; return the started MetricsServer.

    ``source`` is any kind :func:`resolve_source` takes. ``scrape_timeout``:
    seconds a scrape waits for its render before answering 503.
    ``self_metrics`` adds the server's own ``dyn_metrics_scrape_*`` metrics.
    ``options`` are further :class:`~dyn_metrics.server.ServerOptions` fields
    (``certfile``, ``keyfile``, ``client_cafile``, ``ssl_context``,
    ``basic_auth``, ``users``, ``auth_exempt_probes``, limits and timeouts).
    Raises OSError naming ``host:port`` (same errno and OSError subclass) when
    the address cannot be bound, and InvalidValueError on bad arguments.
    """
    server = _server(
        source,
        bool(self_metrics),
        host=host,
        port=port,
        openmetrics=openmetrics,
        health_path=health_path,
        live_path=live_path,
        scrape_timeout=scrape_timeout,
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


def _config_options(config: SystemConfig, port: int) -> dict[str, Any]:
    return {
        "host": config.host,
        "port": port,
        "openmetrics": config.openmetrics,
        "health_path": config.health_path,
        "live_path": config.live_path,
        "scrape_timeout": config.scrape_timeout,
        "certfile": config.tls_cert_file,
        "keyfile": config.tls_key_file,
        "client_cafile": config.tls_client_ca_file,
        "users": dict(config.users) or None,
        "auth_exempt_probes": config.auth_exempt_probes,
    }


def start_from_config(
    drt: object, config: SystemConfig, *, strict: bool = False
) -> Optional[MetricsServer]:
    """Start the server a :class:`~dyn_metrics.dynamo.config.SystemConfig` asks for, or None.

    Returns None when ``config.enabled`` is false, and also when the bind
    fails: then it logs ``Failed to bind to address host:port: reason`` at
    ERROR and the runtime carries on without a server, as Dynamo does. With
    ``strict=True`` a bind failure raises ConfigError naming ``host:port``,
    chained from the OSError. TLS files that no longer load (the config
    loaded them once already) are handled the same way.
    """
    port = config.port
    if not config.enabled or port is None:  # enabled means a port is set; mypy sees the port
        return None
    try:
        server = _server(drt, config.self_metrics, **_config_options(config, port))
    except OSError as e:  # a TLS file that changed since the config read it
        if strict:
            raise ConfigError(f"cannot load the TLS files: {e}") from e
        _log.error("Failed to start the system server: cannot load the TLS files: %s", e)
        return None
    try:
        server.start()
    except OSError as e:
        address = _hostport(config.host, port)
        if strict:
            raise ConfigError(f"cannot bind {address}: {e.strerror or e}") from e
        _log.error("Failed to bind to address %s: %s", address, e)
        return None
    return server
