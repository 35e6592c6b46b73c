"""``python -m dyn_metrics demo``: a simulated Dynamo worker, served like a real one.

The worker is built with the public API only: a runtime with a ``dynamo``
namespace, a ``backend`` component and a ``generate`` endpoint carrying the
work-handler metrics Dynamo creates when an endpoint is served, KV-cache
gauges on the component, and ``dynamo_frontend_*`` metrics (names from
``prometheus_names``) in a registry linked below the runtime. A simulated
traffic step moves every metric once per second.
"""

import argparse
import os
import random
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Optional, TypeVar

from . import prometheus_names as names
from .dynamo.config import SystemConfig
from .dynamo.hierarchy import Endpoint
from .dynamo.runtime import DistributedRuntime
from .metrics import CounterVec, GaugeVec, HistogramVec, IntGauge, exponential_buckets
from .registry import Collector, Registry

_M = TypeVar("_M", bound=Collector)

# Buckets of Dynamo's work-handler request duration histogram (2026 revision).
WORK_HANDLER_BUCKETS: list[float] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    20,
    30,
    60,
    120,
    300,
    600,
]
MODEL = "Qwen/Qwen3-0.6B"


class WorkHandlerMetrics:
    """The per-endpoint metrics Dynamo's work handler creates (push_handler)."""

    def __init__(self, endpoint: Endpoint, metrics_labels: Iterable[tuple[str, str]] = ()) -> None:
        m = endpoint.metrics()
        wh = names.work_handler
        labels = list(metrics_labels)
        self.requests = m.create_intcounter(
            wh.REQUESTS_TOTAL, "Total number of requests processed by work handler", labels
        )
        self.duration = m.create_histogram(
            wh.REQUEST_DURATION_SECONDS,
            "Time spent processing requests by work handler",
            labels,
            buckets=WORK_HANDLER_BUCKETS,
        )
        self.inflight = m.create_intgauge(
            wh.INFLIGHT_REQUESTS,
            "Number of requests currently being processed by work handler",
            labels,
        )
        self.request_bytes = m.create_intcounter(
            wh.REQUEST_BYTES_TOTAL,
            "Total number of bytes received in requests by work handler",
            labels,
        )
        self.response_bytes = m.create_intcounter(
            wh.RESPONSE_BYTES_TOTAL,
            "Total number of bytes sent in responses by work handler",
            labels,
        )
        self.errors = m.create_intcountervec(
            wh.ERRORS_TOTAL,
            "Total number of errors in work handler processing",
            [wh.ERROR_TYPE_LABEL],
            labels,
        )
        self.cancellations = m.create_intcounter(
            wh.CANCELLATION_TOTAL, "Total number of requests cancelled by work handler", labels
        )


class FrontendMetrics:
    """A subset of the ``dynamo_frontend_*`` metrics, labelled by ``model``."""

    def __init__(self, registry: Registry) -> None:
        fs = names.frontend_service
        prefix = names.name_prefix.FRONTEND + "_"
        tokens = exponential_buckets(1, 2, 16)

        def reg(metric: _M) -> _M:
            registry.register(metric)
            return metric

        self.requests = reg(
            CounterVec(
                prefix + fs.REQUESTS_TOTAL,
                "Total number of LLM requests processed",
                ["model", "endpoint", "request_type", "status"],
            )
        )
        self.inflight = reg(
            GaugeVec(prefix + fs.INFLIGHT_REQUESTS, "Number of inflight requests", ["model"])
        )
        self.ttft = reg(
            HistogramVec(
                prefix + fs.TIME_TO_FIRST_TOKEN_SECONDS,
                "Time to first token in seconds",
                ["model"],
                buckets=exponential_buckets(0.001, 2, 14),
            )
        )
        self.itl = reg(
            HistogramVec(
                prefix + fs.INTER_TOKEN_LATENCY_SECONDS,
                "Inter-token latency in seconds",
                ["model"],
                buckets=exponential_buckets(0.001, 2, 12),
            )
        )
        self.isl = reg(
            HistogramVec(
                prefix + fs.INPUT_SEQUENCE_TOKENS,
                "Input sequence length in tokens",
                ["model"],
                buckets=tokens,
            )
        )
        self.osl = reg(
            HistogramVec(
                prefix + fs.OUTPUT_SEQUENCE_TOKENS,
                "Output sequence length in tokens",
                ["model"],
                buckets=tokens,
            )
        )
        self.output_tokens = reg(
            CounterVec(
                prefix + fs.OUTPUT_TOKENS_TOTAL,
                "Total number of output tokens generated",
                ["model"],
            )
        )
        # An IntGauge in Dynamo (lib/llm/src/http/service/metrics.rs), not a counter.
        self.disconnects = reg(
            IntGauge(prefix + fs.DISCONNECTED_CLIENTS, "Number of disconnected clients")
        )


class SimulatedWorker:
    """A runtime with Dynamo-shaped metrics and a deterministic traffic generator."""

    def __init__(self, drt: DistributedRuntime, seed: int = 0) -> None:
        self.drt = drt
        self.rng = random.Random(seed)
        component = drt.namespace("dynamo").component("backend")
        endpoint = component.endpoint("generate")
        self.work = WorkHandlerMetrics(endpoint, [(names.labels.MODEL, MODEL)])
        kv = component.metrics()
        self.kv_total = kv.create_intgauge(names.kvstats.TOTAL_BLOCKS, "Total KV cache blocks")
        self.kv_usage = kv.create_gauge(
            names.kvstats.GPU_CACHE_USAGE_PERCENT, "GPU KV cache usage in percent"
        )
        self.kv_total.set(8192)
        frontend = Registry()
        drt.metrics().registry.add_child_registry(frontend)
        self.frontend = FrontendMetrics(frontend)
        drt.health.set_status(True)

    def step(self, requests: Optional[int] = None) -> None:
        """Simulate one second of traffic."""
        rng = self.rng
        fe, wh = self.frontend, self.work
        count = rng.randint(5, 20) if requests is None else requests
        inflight = rng.randint(0, 8)
        wh.inflight.set(inflight)
        fe.inflight.with_label_values(MODEL).set(inflight)
        for _ in range(count):
            isl = rng.randint(16, 4096)
            osl = rng.randint(1, 1024)
            ttft = rng.lognormvariate(-3.0, 0.6)
            itl = rng.lognormvariate(-4.5, 0.3)
            failed = rng.random() < 0.03
            wh.requests.inc()
            wh.request_bytes.inc_by(isl * 4)
            wh.duration.observe(ttft + itl * osl)
            fe.ttft.with_label_values(MODEL).observe(ttft)
            fe.isl.with_label_values(MODEL).observe(isl)
            if failed:
                wh.errors.with_label_values(names.work_handler.error_types.GENERATE).inc()
                status = names.frontend_service.status.ERROR
            else:
                wh.response_bytes.inc_by(osl * 6)
                fe.itl.with_label_values(MODEL).observe(itl)
                fe.osl.with_label_values(MODEL).observe(osl)
                fe.output_tokens.with_label_values(MODEL).inc_by(osl)
                status = names.frontend_service.status.SUCCESS
            request_type = names.frontend_service.request_type.STREAM
            fe.requests.with_label_values(MODEL, "chat_completions", request_type, status).inc()
        if rng.random() < 0.05:
            wh.cancellations.inc()
        fe.disconnects.set(rng.randint(0, 3))
        self.kv_usage.set(round(rng.uniform(5, 95), 2))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dyn_metrics demo",
        description="Serve the metrics of a simulated Dynamo worker.",
    )
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port when DYN_SYSTEM_PORT is unset (default 8081; 0 = any free port)",
    )
    p.add_argument(
        "--host", default=None, help="bind address when DYN_SYSTEM_HOST is unset (default 0.0.0.0)"
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="print the exposition after a few simulated seconds and exit",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--openmetrics",
        action="store_true",
        help="also serve OpenMetrics to clients that prefer it",
    )
    return p


def _environment_port() -> Optional[str]:
    """``DYN_SYSTEM_PORT`` when it asks for a server; None when unset or negative (server off)."""
    raw = os.environ.get("DYN_SYSTEM_PORT", "").strip()
    try:
        return None if not raw or int(raw) < 0 else raw
    except ValueError:
        return raw


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m dyn_metrics demo``; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.once:
        worker = SimulatedWorker(DistributedRuntime(worker_id=0x1D, config=SystemConfig()))
        for _ in range(3):
            worker.step()
        sys.stdout.write(worker.drt.render_exposition("text"))
        return 0
    config = SystemConfig.from_env()
    if args.openmetrics and config.enabled:
        # The environment's server honours the flag too, not only --port's.
        config = SystemConfig(**{**config.as_dict(), "openmetrics": True})  # type: ignore[arg-type]
    drt = DistributedRuntime(worker_id=0x1D, config=config)
    worker = SimulatedWorker(drt)
    server = drt.system_server
    if server is None:
        wanted = _environment_port()
        if wanted is not None:
            sys.stderr.write(
                f"dyn_metrics demo: no server on DYN_SYSTEM_PORT={wanted!r} "
                "(the error above says why)\n"
            )
            drt.shutdown()
            return 1
        port = 8081 if args.port is None else args.port
        host = args.host or os.environ.get("DYN_SYSTEM_HOST") or "0.0.0.0"
        # Imported here: `--once` and the environment's server need none of it.
        from .dynamo.system_server import start_http_server

        server = start_http_server(drt, port, host, openmetrics=args.openmetrics)
    try:
        # Inside the try: Ctrl-C may come as soon as the URL is out.
        print(
            f"dyn_metrics demo: listening on {_hostport(server.host, server.port)}, "
            f"metrics at {server.url} (Ctrl-C to stop)",
            flush=True,
        )
        deadline = args.duration
        elapsed = 0.0
        while deadline is None or elapsed < deadline:
            worker.step()
            time.sleep(1.0)
            elapsed += 1.0
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        drt.shutdown()
    return 0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
