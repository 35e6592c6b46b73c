"""DistributedRuntime: the root of the hierarchy and owner of the system server.

``DistributedRuntime()`` reads the ``DYN_SYSTEM_*`` configuration once (see
:mod:`dyn_metrics.dynamo.config`), creates the ``dynamo_component_uptime_seconds``
gauge (refreshed before every scrape of the runtime) and, when ``DYN_SYSTEM_PORT``
is set, serves ``/metrics``, ``/health`` and ``/live`` from a daemon thread
(:mod:`dyn_metrics.dynamo.system_server`), as a Dynamo worker does. Every metric
created through the hierarchy is reachable from here.
"""

import os
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Literal, Optional, Union, overload

from ..errors import InvalidValueError
from ..prometheus_names import distributed_runtime
from .config import SystemConfig
from .health import SystemHealth
from .hierarchy import _NamespaceParent

if TYPE_CHECKING:  # the server stack is imported only when a server runs
    from ..server.app import MetricsServer

#: The variables that make a runtime start an exporter (OTLP, remote write).
_EXPORTER_SWITCHES = ("OTEL_METRICS_EXPORTER", "DYN_METRICS_REMOTE_WRITE_URL")

UPTIME_HELP = "Total uptime of the DistributedRuntime in seconds"


class DistributedRuntime(_NamespaceParent):
    """The root of the metrics hierarchy (Dynamo's ``DistributedRuntime``).

    ``worker_id`` (a non-negative int, optional) becomes the ``worker_id``
    label, in lowercase hex, on every metric created through the hierarchy.
    ``created=True`` (default: the config's, ``DYN_METRICS_CREATED``) makes
    every registry of the hierarchy remember creation times, which
    OpenMetrics scrapes write as ``_created`` samples. ``process_metrics=True``
    (default: ``DYN_SYSTEM_PROCESS_METRICS``) registers the process, platform
    and GC collectors (prometheus_client's names) at the root.
    ``OTEL_METRICS_EXPORTER=otlp`` starts an OTLP exporter and
    ``DYN_METRICS_REMOTE_WRITE_URL`` a remote-write exporter of the whole
    runtime (``exporters``); ``shutdown()`` stops them after a final export.
    ``config`` defaults to ``SystemConfig.from_env(strict=strict_config)``;
    with the environment's server enabled, a bind failure is logged and the
    runtime keeps working without a server (``system_server`` is None); with
    ``strict_config=True`` it raises ConfigError naming ``host:port`` instead.
    """

    def __init__(
        self,
        worker_id: Optional[int] = None,
        *,
        config: Optional[SystemConfig] = None,
        strict_config: bool = False,
        created: Optional[bool] = None,
        process_metrics: Optional[bool] = None,
    ) -> None:
        if worker_id is not None and (
            isinstance(worker_id, bool) or not isinstance(worker_id, int) or worker_id < 0
        ):
            raise InvalidValueError(f"worker_id must be a non-negative int, got {worker_id!r}")
        self._worker_id = worker_id
        self.config = SystemConfig.from_env(strict=strict_config) if config is None else config
        # Read by every node's registry as it is made (hierarchy._Node._tracks_created).
        self._created = self.config.created if created is None else bool(created)
        super().__init__("", None)
        self.health = SystemHealth.from_config(self.config)
        if self.config.process_metrics if process_metrics is None else process_metrics:
            from ..collectors import GCCollector, PlatformCollector, ProcessCollector

            for collector in (ProcessCollector(), PlatformCollector(), GCCollector()):
                self._registry.register(collector)
        self._started = time.monotonic()
        self._uptime = self.metrics().create_gauge(distributed_runtime.UPTIME_SECONDS, UPTIME_HELP)
        self._registry.add_update_callback(self._refresh_uptime)
        self.system_server: Optional[MetricsServer] = None
        if self.config.enabled:
            # Imported only when a server runs: the HTTP stack (sockets, TLS)
            # doubles the import time of the package.
            from .system_server import start_from_config

            self.system_server = start_from_config(self, self.config, strict=strict_config)
        self.exporters: list[Any] = []
        if any(os.environ.get(var) for var in _EXPORTER_SWITCHES):
            # Imported only when asked for: the exporters' transports cost import time.
            from ..export.exporters import start_from_env

            self.exporters = list(start_from_env(self, os.environ, strict_config))

    def connection_id(self) -> Optional[int]:
        """The worker id given at construction, or None."""
        return self._worker_id

    def _max_children(self) -> Optional[int]:
        # Vecs made before the config is read (the uptime gauge's siblings) are unlimited.
        config = getattr(self, "config", None)
        return None if config is None else config.max_children

    def uptime_seconds(self) -> float:
        """Seconds since this runtime was created."""
        return time.monotonic() - self._started

    def _refresh_uptime(self) -> None:
        self._uptime.set(self.uptime_seconds())

    @overload
    def render_exposition(
        self, fmt: Literal["text", "openmetrics"] = "text", names: Optional[Collection[str]] = None
    ) -> str: ...

    @overload
    def render_exposition(
        self, fmt: Literal["protobuf"], names: Optional[Collection[str]] = None
    ) -> bytes: ...

    @overload
    def render_exposition(
        self, fmt: str, names: Optional[Collection[str]] = None
    ) -> Union[str, bytes]: ...

    def render_exposition(
        self, fmt: str = "text", names: Optional[Collection[str]] = None
    ) -> Union[str, bytes]:
        """The whole process' metrics as ``"text"`` (0.0.4), ``"openmetrics"`` or ``"protobuf"``.

        Text and OpenMetrics are str, protobuf (the delimited
        ``io.prometheus.client.MetricFamily`` stream) bytes. ``names`` (the
        ``name[]`` query of a scrape) keeps only the families whose name or
        any of whose sample names is in it; None keeps every family. Raises
        :class:`InvalidValueError` for another ``fmt``.
        """
        if fmt == "text":
            return self._registry.prometheus_expfmt(names=names)
        if fmt == "openmetrics":
            return self._registry.openmetrics_expfmt(names=names)
        if fmt == "protobuf":
            return self._registry.protobuf_expfmt(names=names)
        raise InvalidValueError(f"format must be 'text', 'openmetrics' or 'protobuf', got {fmt!r}")

    def shutdown(self) -> None:
        """Stop the exporters (each sends a final export) and the system server, if any.

        Metrics keep working.
        """
        exporters, self.exporters = self.exporters, []
        for exporter in exporters:
            exporter.shutdown()
        server, self.system_server = self.system_server, None
        if server is not None:
            server.stop()
