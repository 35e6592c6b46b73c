"""DistributedRuntime: the root of the hierarchy and owner of the system server.

``DistributedRuntime()`` reads the ``DYN_SYSTEM_*`` configuration once (see
``config.py``), creates the ``dynamo_component_uptime_seconds`` gauge
(refreshed before every scrape of the runtime) and, when ``DYN_SYSTEM_PORT``
is set, serves ``/metrics``, ``/health`` and ``/live`` from a daemon thread,
as a Dynamo worker does. Everything in the process is reachable from here;
there is no global default registry.
"""

import time

from .. import prometheus_names as names
from ..errors import InvalidValueError
from .config import SystemConfig
from .health import SystemHealth
from .hierarchy import _NamespaceParent

UPTIME_HELP = "Total uptime of the DistributedRuntime in seconds"


class DistributedRuntime(_NamespaceParent):
    """The root of the metrics hierarchy (Dynamo's ``DistributedRuntime``).

    ``worker_id`` (a non-negative int, optional) becomes the ``worker_id``
    label, in lowercase hex, on every metric created through the hierarchy.
    ``config`` defaults to ``SystemConfig.from_env(strict=strict_config)``;
    with the environment's server enabled, a bind failure is logged and the
    runtime keeps working without a server (``system_server`` is None).
    """

    def __init__(self, worker_id=None, *, config=None, strict_config=False):
        if worker_id is not None and (
            isinstance(worker_id, bool) or not isinstance(worker_id, int) or worker_id < 0
        ):
            raise InvalidValueError(f"worker_id must be a non-negative int, got {worker_id!r}")
        self._worker_id = worker_id
        super().__init__("", None)
        self.config = SystemConfig.from_env(strict=strict_config) if config is None else config
        self.health = SystemHealth.from_config(self.config)
        self._started = time.monotonic()
        self._uptime = self.metrics().create_gauge(
            names.distributed_runtime.UPTIME_SECONDS, UPTIME_HELP
        )
        self._registry.add_update_callback(self._refresh_uptime)
        self.system_server = None
        if self.config.enabled:
            # Imported only when a server runs: the HTTP stack (sockets, TLS)
            # doubles the import time of the package.
            from .system_server import start_from_config

            self.system_server = start_from_config(self, self.config)

    def connection_id(self):
        """The worker id given at construction, or None."""
        return self._worker_id

    def uptime_seconds(self):
        """Seconds since this runtime was created."""
        return time.monotonic() - self._started

    def _refresh_uptime(self):
        self._uptime.set(self.uptime_seconds())

    def render_exposition(self, fmt="text"):
        """The whole process' metrics as ``"text"`` (0.0.4) or ``"openmetrics"``."""
        if fmt == "text":
            return self._registry.prometheus_expfmt()
        if fmt == "openmetrics":
            return self._registry.openmetrics_expfmt()
        raise InvalidValueError(f"format must be 'text' or 'openmetrics', got {fmt!r}")

    def shutdown(self):
        """Stop the system server, if any. Metrics keep working."""
        server, self.system_server = self.system_server, None
        if server is not None:
            server.stop()
