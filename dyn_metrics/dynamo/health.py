"""Process health for the ``/health`` and ``/live`` routes (Dynamo's system_health.rs).

:meth:`SystemHealth.snapshot` decides ``healthy`` by the first rule that applies:

1. any outstanding readiness hold -> not healthy;
2. ``use_endpoint_health_status`` non-empty -> healthy iff every listed endpoint
   is known and ready;
3. else, health-check targets registered -> healthy iff every target is ready;
4. else, canary checks enabled and at least one endpoint known -> healthy iff
   every known endpoint is ready;
5. else -> the process-wide status (starts at ``starting_status``, changed only
   by :meth:`SystemHealth.set_status`).

The body is ``{"endpoints": {name: "ready"|"notready"}, "status":
"ready"|"notready", "uptime": {"nanos": int, "secs": int}}``; :func:`render_json`
writes it compactly with sorted keys, byte-for-byte as Dynamo does.
"""

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Optional, Protocol, TypedDict, Union

from ..errors import InvalidValueError, LazyLogger

_log = LazyLogger(__name__)

READY = "ready"
NOTREADY = "notready"

#: A status as the API takes it: ``"ready"``/``"notready"`` or a bool.
Status = Union[bool, str]


class Uptime(TypedDict):
    """The ``uptime`` of a health body: whole seconds plus the nanoseconds beyond them."""

    nanos: int
    secs: int


class HealthBody(TypedDict):
    """The JSON body of ``/health`` and ``/live``, as :meth:`SystemHealth.snapshot` builds it."""

    endpoints: dict[str, str]
    status: str
    uptime: Uptime


class HealthSettings(Protocol):
    """The fields :meth:`SystemHealth.from_config` reads (a ``SystemConfig`` has them)."""

    @property
    def starting_health_status(self) -> str: ...

    @property
    def use_endpoint_health_status(self) -> Sequence[str]: ...

    @property
    def health_check_enabled(self) -> bool: ...


def render_json(body: Mapping[str, object]) -> str:
    """Compact JSON with sorted keys: ``{"endpoints":{},"status":"ready",...}``."""
    # Imported here: nothing else at `import dyn_metrics` needs json (a tenth of
    # the package's import time), and only a served health probe renders one.
    import json

    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def _to_ready(status: object, what: str) -> bool:
    if isinstance(status, bool):
        return status
    if status == READY:
        return True
    if status == NOTREADY:
        return False
    raise InvalidValueError(f"{what}: expected 'ready', 'notready' or a bool, got {status!r}")


class ReadinessHold:
    """Withholds readiness for one endpoint until released (Dynamo's ``ReadinessHold``).

    Use it as a context manager or call :meth:`release`; releasing twice is harmless.
    """

    __slots__ = ("_health", "endpoint", "_released")

    def __init__(self, health: "SystemHealth", endpoint: str) -> None:
        self._health = health
        self.endpoint = endpoint
        self._released = False

    def release(self) -> None:
        """Drop the hold; does not itself mark the endpoint ready."""
        self._health._release(self)

    @property
    def released(self) -> bool:
        """True once :meth:`release` has been called."""
        return self._released

    def __enter__(self) -> "ReadinessHold":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<ReadinessHold {self.endpoint!r} {state}>"


class SystemHealth:
    """Readiness of the process and of its endpoints; every method is thread-safe.

    ``starting_status`` is ``"ready"``/``"notready"`` or a bool.
    ``use_endpoint_health_status`` lists endpoints that decide health (rule 2;
    deprecated in Dynamo but honoured). ``canary_enabled`` is Dynamo's
    ``DYN_HEALTH_CHECK_ENABLED``. Raises InvalidValueError on bad arguments.
    """

    def __init__(
        self,
        starting_status: Status = NOTREADY,
        use_endpoint_health_status: Sequence[str] = (),
        canary_enabled: bool = False,
    ) -> None:
        ready = _to_ready(starting_status, "starting_status")
        names = use_endpoint_health_status
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise InvalidValueError(
                f"use_endpoint_health_status: expected a list of strings, got {names!r}"
            )
        self._lock = threading.Lock()
        self._start_ns = time.monotonic_ns()
        self._status = ready
        self._use_endpoints = tuple(names)
        self._canary = bool(canary_enabled)
        # Listed endpoints start at the starting status, or NotReady when the
        # canary must verify them first.
        initial = ready and not self._canary
        self._endpoints: dict[str, bool] = {name: initial for name in self._use_endpoints}
        self._targets: dict[str, object] = {}
        self._holds: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: HealthSettings) -> "SystemHealth":
        """Build from a :class:`~dyn_metrics.dynamo.config.SystemConfig` or its look-alike.

        Reads ``starting_health_status``, ``use_endpoint_health_status`` and
        ``health_check_enabled`` only.
        """
        return cls(
            config.starting_health_status,
            config.use_endpoint_health_status,
            config.health_check_enabled,
        )

    @property
    def canary_enabled(self) -> bool:
        """True when canary health checks decide readiness (``DYN_HEALTH_CHECK_ENABLED``)."""
        return self._canary

    def set_status(self, ready: Status) -> None:
        """Set the process-wide status used by rule 5 (Dynamo ``set_health_status``).

        ``ready`` is a bool or ``"ready"``/``"notready"``; anything else raises
        :class:`InvalidValueError`.
        """
        value = _to_ready(ready, "ready")
        with self._lock:
            self._status = value

    def set_endpoint_status(self, name: str, ready: Status) -> None:
        """Mark one endpoint ready or not (Dynamo ``set_endpoint_health_status``).

        ``ready`` as for :meth:`set_status`.
        """
        value = _to_ready(ready, "ready")
        with self._lock:
            self._endpoints[name] = value

    def endpoint_status(self, name: str) -> Optional[bool]:
        """True/False for a known endpoint, None for an unknown one."""
        with self._lock:
            return self._endpoints.get(name)

    def register_health_check_target(self, endpoint: str, payload: object = None) -> None:
        """Register ``endpoint`` as a health-check target; it starts NotReady if unknown.

        A second registration of the same endpoint is ignored with a warning,
        as in Dynamo. ``payload`` is kept for a canary checker.
        """
        with self._lock:
            duplicate = endpoint in self._targets
            if not duplicate:
                self._targets[endpoint] = payload
                self._endpoints.setdefault(endpoint, False)
        if duplicate:
            _log.warning(
                "Attempted to re-register health check for endpoint %r; ignoring.", endpoint
            )

    def health_check_targets(self) -> dict[str, object]:
        """The registered targets as a ``{endpoint: payload}`` copy."""
        with self._lock:
            return dict(self._targets)

    def endpoint_registered(self, name: str) -> None:
        """The endpoint is serving: mark it ready unless held, or canary-checked.

        Mirrors Dynamo ``set_endpoint_registered``: with canary checks on, an
        endpoint that has a target waits for the canary to mark it ready.
        """
        with self._lock:
            if self._holds.get(name):
                return
            if not (self._canary and name in self._targets):
                self._endpoints[name] = True

    def hold(self, endpoint: str) -> ReadinessHold:
        """Withhold readiness of ``endpoint`` until the returned handle is released.

        While any hold is outstanding the process is not healthy (rule 1), and
        :meth:`endpoint_registered` does not mark ``endpoint`` ready. Holds are
        counted: two holds on one endpoint need two releases.
        """
        handle = ReadinessHold(self, endpoint)
        with self._lock:
            self._holds[endpoint] = self._holds.get(endpoint, 0) + 1
        return handle

    def _release(self, handle: ReadinessHold) -> None:
        with self._lock:
            if handle._released:
                return
            handle._released = True
            left = self._holds[handle.endpoint] - 1
            if left:
                self._holds[handle.endpoint] = left
            else:
                del self._holds[handle.endpoint]

    def uptime_seconds(self) -> float:
        """Seconds since this object was created (monotonic clock)."""
        return (time.monotonic_ns() - self._start_ns) / 1e9

    def snapshot(self) -> tuple[bool, HealthBody]:
        """Return ``(healthy, body)`` by rules 1-5; ``body`` is a fresh dict."""
        now = time.monotonic_ns()
        with self._lock:
            endpoints = dict(self._endpoints)
            healthy = self._decide_locked()
        secs, nanos = divmod(now - self._start_ns, 1_000_000_000)
        body: HealthBody = {
            "endpoints": {n: READY if r else NOTREADY for n, r in endpoints.items()},
            "status": READY if healthy else NOTREADY,
            "uptime": {"nanos": nanos, "secs": secs},
        }
        return healthy, body

    def _decide_locked(self) -> bool:
        endpoints = self._endpoints
        if self._holds:
            return False
        if self._use_endpoints:
            return all(endpoints.get(n) is True for n in self._use_endpoints)
        if self._targets:
            return all(endpoints.get(n) is True for n in self._targets)
        if self._canary and endpoints:
            return all(endpoints.values())
        return self._status
