"""OTLPExporter and RemoteWriteExporter: the pieces of ``export/`` behind api.md's handles.

Each handle owns one :class:`~.periodic.PeriodicExporter` (a named daemon
thread, no overlapping exports, a final export on ``shutdown``, fork-safe)
and one export function that never raises for transport outcomes: it returns
an :class:`~.result.ExportResult`, and the handle's ``last_result``,
``consecutive_failures`` and ``last_success_time`` follow background and
explicit exports alike.

* :class:`OTLPExporter`: the source's families encoded by ``otlp_model`` (or
  ``otlp_json``) and sent over gRPC (``grpc.py``; retried on the retryable
  codes) or HTTP (``otlp_http.py``), configured by :class:`~.otlp_config.OTLPConfig`
  (constructor values win over the ``OTEL_*`` variables). The start time of the
  cumulative points is the exporter's creation, constant, as Dynamo's.
* :class:`RemoteWriteExporter`: the families as one ``WriteRequest`` per
  tick, snappy-compressed and sent by ``remote_write.send``. A write that fails
  with a retryable outcome keeps its batch; later ticks send the oldest pending
  batch first; past ``queue_limit`` samples the oldest batches are dropped and
  counted (``dropped_samples``). A permanent refusal drops that batch.

:func:`export_counts` gives ``{(exporter, result): n}`` for the self metric
``dyn_metrics_export_requests_total{exporter,result}``.
"""

import collections
import math
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ..errors import ExportUnavailableError, InvalidValueError
from ..exposition import protowire
from ..registry.sources import collect_families
from . import grpc, otlp_model, remote_write, snappy
from .counts import count_export, export_counts
from .otlp_config import OTLPConfig, RemoteWriteConfig
from .periodic import PeriodicExporter
from .result import ExportResult
from .transport import Backoff, package_version

__all__ = ["OTLPExporter", "RemoteWriteExporter", "export_counts", "start_from_env"]

_DEFAULT_ENDPOINTS = {
    "grpc": "http://localhost:4317",
    "http/protobuf": "http://localhost:4318/v1/metrics",
    "http/json": "http://localhost:4318/v1/metrics",
}


def _failed(exc: BaseException) -> ExportResult:
    return ExportResult(False, error_message=f"{type(exc).__name__}: {exc}")


class _Handle:
    """What both exporters share: the driver and its results."""

    _driver: PeriodicExporter[ExportResult]

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        self._driver.start()

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        """Stop the thread after one final export; True if that export succeeded."""
        return self._driver.shutdown(timeout)

    @property
    def last_result(self) -> Optional[ExportResult]:
        """The result of the latest export, background or explicit."""
        return self._driver.last_result

    @property
    def consecutive_failures(self) -> int:
        """Failed exports since the last success."""
        return self._driver.consecutive_failures

    @property
    def last_success_time(self) -> Optional[float]:
        """Wall-clock time of the latest successful export, or None."""
        return self._driver.last_success_time

    def _backoff(self) -> Backoff:
        return Backoff(sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        # The driver's wait, not time.sleep: shutdown wakes a backoff wait at once.
        self._driver.wait(seconds)


class OTLPExporter(_Handle):
    """Periodic OTLP export of ``source`` (None: ``dm.REGISTRY``); see the module docstring.

    Raises :class:`~dyn_metrics.errors.ConfigError` for a malformed endpoint,
    protocol, header or certificate (given or from the environment).
    """

    def __init__(
        self,
        source: object = None,
        endpoint: Optional[str] = None,
        protocol: Optional[str] = None,
        headers: Optional[Any] = None,
        timeout: Optional[float] = None,
        interval: Optional[float] = None,
        service_name: Optional[str] = None,
        resource_attributes: Optional[Any] = None,
        tls_context: Optional[Any] = None,
        *,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        config = OTLPConfig.from_env(
            env,
            service_name=service_name,
            resource_attributes=resource_attributes,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            timeout=timeout,
            interval=interval,
            tls_context=tls_context,
        )
        self.config = config
        self._source = source
        self._endpoint = config.endpoint or _DEFAULT_ENDPOINTS[config.protocol]
        self._tls = config.ssl_context() if config.secure else None
        self._start_ns = time.time_ns()
        self._driver = PeriodicExporter(
            self._export, config.interval, name="otlp-export", on_error=_failed
        )

    def export_once(self) -> ExportResult:
        """Export now (waiting for a background export in progress); never raises."""
        return self._driver.export_now()

    def _export(self) -> ExportResult:
        families = collect_families(self._source)
        # OTLP data points (one per series; a histogram's buckets are one point).
        points = sum(len(m.points) for m in otlp_model.otlp_metrics(families))
        args: dict[str, Any] = dict(
            resource_attributes=dict(self.config.resource),
            scope_version=package_version(),
            start_time_unix_nano=self._start_ns,
            time_unix_nano=time.time_ns(),
        )
        protocol = self.config.protocol
        if protocol == "grpc":
            result = self._grpc(otlp_model.encode_request(families, **args), points)
        else:
            from .otlp_http import post_otlp

            if protocol == "http/json":
                from .otlp_json import dumps_json, request_json

                body = dumps_json(request_json(families, **args))
            else:
                body = otlp_model.encode_request(families, **args)
            result = post_otlp(
                self._endpoint,
                body,
                protocol=protocol,
                headers=self.config.headers,
                compression=None if self.config.compression == "none" else "gzip",
                timeout=self.config.export_timeout,
                tls_context=self._tls,
                backoff=self._backoff(),
                data_points=points,
            )
        count_export("otlp", result.success)
        return result

    def _grpc(self, request: bytes, points: int) -> ExportResult:
        """One export over gRPC, retried on the retryable codes inside the export timeout."""
        parts = urllib.parse.urlsplit(self._endpoint)
        target = parts.netloc or parts.path
        backoff = self._backoff()
        deadline = backoff.clock() + self.config.export_timeout
        attempts = 0
        while True:
            attempts += 1
            left = deadline - backoff.clock()
            call = grpc.unary_call(
                target,
                grpc.OTLP_METRICS_PATH,
                request,
                tls_context=self._tls,
                metadata=self.config.headers,
                timeout=max(left, 0.001) if math.isfinite(left) else 3600.0,
            )
            if call.ok:
                rejected, message = _partial_success(call.response)
                return ExportResult(True, 0, attempts, rejected, message)
            wait = backoff.wait(attempts)
            retry = grpc.is_retryable(call.code) and attempts < backoff.max_attempts
            if not retry or self._driver.stopping or backoff.clock() + wait > deadline:
                return ExportResult(
                    False,
                    int(call.code),
                    attempts,
                    points,
                    f"gRPC {call.code.name}: {call.message}",
                )
            backoff.sleep(wait)


def _partial_success(response: bytes) -> tuple[int, str]:
    """``(rejected_data_points, error_message)`` of an ExportMetricsServiceResponse."""
    try:
        for field, _, value in protowire.iter_fields(response):
            if field == 1 and isinstance(value, bytes):
                rejected, message = 0, ""
                for f, _, v in protowire.iter_fields(value):
                    if f == 1 and isinstance(v, int):
                        rejected = v
                    elif f == 2 and isinstance(v, bytes):
                        message = v.decode("utf-8", "replace")
                return rejected, message
    except ValueError:
        pass
    return 0, ""


#: One tick's write: ``(encoded WriteRequest, samples in it)``.
_Batch = tuple[bytes, int]


class RemoteWriteExporter(_Handle):
    """Periodic Prometheus remote write of ``source`` to ``url``; see the module docstring."""

    def __init__(
        self,
        url: str,
        source: object = None,
        interval: float = 15.0,
        headers: Optional[Mapping[str, str]] = None,
        basic_auth: Optional[tuple[str, str]] = None,
        bearer_token: Optional[str] = None,
        tls_context: Optional[Any] = None,
        external_labels: Optional[Mapping[str, str]] = None,
        timeout: float = 30.0,
        queue_limit: int = 10000,
    ) -> None:
        self.config = RemoteWriteConfig(
            url=url,
            interval=interval,
            timeout=timeout,
            headers=tuple((headers or {}).items()),
            basic_auth=basic_auth,
            bearer_token=bearer_token,
            external_labels=tuple((external_labels or {}).items()),
            queue_limit=queue_limit,
            tls_context=tls_context,
        )
        if not self.config.enabled:
            raise InvalidValueError(f"remote write needs a URL, got {url!r}")
        self._source = source
        self._pending: collections.deque[_Batch] = collections.deque()
        self._pending_lock = threading.Lock()
        self.dropped_samples = 0
        self._driver = PeriodicExporter(
            self._write, self.config.interval, name="remote-write", on_error=_failed
        )

    def write_once(self) -> ExportResult:
        """Write now (waiting for a background write in progress); never raises."""
        return self._driver.export_now()

    def _write(self) -> ExportResult:
        families = collect_families(self._source)
        body = remote_write.encode_write_request(
            families,
            external_labels=dict(self.config.external_labels) or None,
            timestamp_ms=int(time.time() * 1000),
        )
        samples = sum(len(f.samples) for f in families)
        with self._pending_lock:  # exports never overlap; the lock guards the counts
            self._pending.append((body, samples))
            self._trim()
        result = ExportResult(True)
        while True:
            with self._pending_lock:
                if not self._pending:
                    break
                body, samples = self._pending[0]
            result = self._send(body, samples)
            with self._pending_lock:
                if result.success or not isinstance(result.error, ExportUnavailableError):
                    self._pending.popleft()  # sent, or refused for good
            if not result.success:
                break
        count_export("remote_write", result.success)
        return result

    def _trim(self) -> None:
        total = sum(n for _, n in self._pending)
        while len(self._pending) > 1 and total > self.config.queue_limit:
            _, n = self._pending.popleft()
            total -= n
            self.dropped_samples += n

    def _send(self, body: bytes, samples: int) -> ExportResult:
        return remote_write.send(
            str(self.config.url),
            snappy.compress(body),
            headers=dict(self.config.headers) or None,
            basic_auth=self.config.basic_auth,
            bearer_token=self.config.bearer_token,
            tls_context=self.config.tls_context,
            timeout=self.config.timeout,
            backoff=self._backoff(),
            data_points=samples,
        )


def start_from_env(source: object, env: Mapping[str, str], strict: bool) -> Sequence[_Handle]:
    """The exporters the environment asks for (``OTEL_METRICS_EXPORTER=otlp``,
    ``DYN_METRICS_REMOTE_WRITE_URL``), started; a bad setting raises ConfigError
    when ``strict``, else it is logged (by the config) and that exporter stays off."""
    started: list[_Handle] = []
    otlp = OTLPConfig.from_env(env, strict=strict)
    if otlp.enabled:
        exporter = OTLPExporter(source, env=env)
        exporter.start()
        started.append(exporter)
    rw = RemoteWriteConfig.from_env(env, strict=strict)
    if rw.enabled:
        writer = RemoteWriteExporter(
            str(rw.url),
            source,
            rw.interval,
            dict(rw.headers),
            rw.basic_auth,
            rw.bearer_token,
            rw.tls_context,
            dict(rw.external_labels),
            rw.timeout,
            rw.queue_limit,
        )
        writer.start()
        started.append(writer)
    return started
