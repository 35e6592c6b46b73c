"""Engine pass-through: a prometheus_client registry served through the hierarchy.

One vLLM-like prometheus_client registry of about 2,000 samples (a counter
vec, a gauge vec and a histogram vec with colon names, ``_created`` samples
included) is the engine of both columns:

* dyn_metrics: ``register_engine_metrics_callback`` on an endpoint, then the
  runtime's text 0.0.4 scrape (read, filter, label injection, the custom
  collector check, merge, encode), against
* prometheus_client: its own ``generate_latest`` of the same registry.

Rows: values unchanged between scrapes (target <= 1.5x), every gauge changed
before each scrape (report; both columns pay the same updates), and the
OpenMetrics scrape against prometheus_client's OpenMetrics ``generate_latest``
(report).
"""

import functools
import gc
import importlib
from time import perf_counter_ns
from typing import Any, Callable

from .harness import Bench, Row, Timed, fmt_ms
from .sides import Side

COUNTERS = 750
GAUGES = 750
HISTOGRAMS = 27  # 17 samples each: about 2,000 samples in all (the bench disables _created)
INNER = 5


def _engine(pc: Any) -> tuple[Any, Callable[[int], None]]:
    """The engine registry, and a function that sets every gauge from a seed."""
    reg = pc.CollectorRegistry()
    labels = ["model_name", "engine"]
    requests = pc.Counter("vllm:request_success", "Finished requests", labels, registry=reg)
    running = pc.Gauge("vllm:num_requests_running", "Running requests", labels, registry=reg)
    ttft = pc.Histogram("vllm:time_to_first_token_seconds", "TTFT", labels, registry=reg)
    for i in range(COUNTERS):
        requests.labels("llama", str(i)).inc(i)
    children = [running.labels("llama", str(i)) for i in range(GAUGES)]
    for i in range(HISTOGRAMS):
        ttft.labels("llama", str(i)).observe(i / 10)

    def change(seed: int) -> None:
        for i, child in enumerate(children):
            child.set(seed + i)

    change(0)
    return reg, change


def _scrapers(
    side: Side, pc: Any, fmt: str
) -> tuple[Callable[[], object], Callable[[int], None], int]:
    """(scrape, change gauges, samples in the engine) for one side."""
    reg, change = _engine(pc)
    samples = sum(len(m.samples) for m in reg.collect())
    if side.name == "prometheus_client":
        if fmt == "text":
            return (lambda: pc.generate_latest(reg)), change, samples
        om = importlib.import_module(pc.__name__ + ".openmetrics.exposition")
        return (lambda: om.generate_latest(reg)), change, samples
    dm: Any = getattr(side, "dm")  # noqa: B009  (Side is a union of the two adapters)
    config = importlib.import_module(dm.__name__ + ".dynamo.config")
    engine = importlib.import_module(dm.__name__ + ".dynamo.engine")
    drt = dm.DistributedRuntime(worker_id=255, config=config.SystemConfig())
    endpoint = drt.namespace("dynamo").component("backend").endpoint("generate")
    engine.register_engine_metrics_callback(endpoint, reg, model_name="llama")
    return (lambda: drt.render_exposition(fmt)), change, samples


def _time(scrape: Callable[[], object], change: Callable[[int], None], changing: bool) -> float:
    """Mean ms of one scrape over INNER scrapes (gauge updates timed for both sides)."""
    with Timed():
        t0 = perf_counter_ns()
        for i in range(INNER):
            if changing:
                change(i)
            scrape()
        t1 = perf_counter_ns()
    return (t1 - t0) / INNER / 1e6


def run(bench: Bench) -> None:
    static = bench.row(
        "engine_text",
        "engine pass-through, ~2k samples, text",
        "ms/scrape",
        1.5,
        fmt=fmt_ms,
        group="engine",
    )
    changing = bench.row(
        "engine_text_changing",
        "  every gauge changed before each scrape",
        "ms/scrape",
        fmt=fmt_ms,
        group="engine",
    )
    om = bench.row(
        "engine_openmetrics",
        "engine pass-through, ~2k samples, OpenMetrics",
        "ms/scrape",
        fmt=fmt_ms,
        group="engine",
    )
    pc_side = next(s for s in bench.sides if s.name == "prometheus_client")
    pc: Any = getattr(pc_side, "pc")  # noqa: B009  (the engine of both columns)
    cases: list[tuple[Row, Side, Any]] = []
    for side in bench.sides:
        for row, fmt in ((static, "text"), (changing, "text"), (om, "openmetrics")):
            built = bench.guarded(row, side, lambda s=side, f=fmt: _scrapers(s, pc, f))
            if built is not None:
                cases.append((row, side, built))
                bench.info.setdefault("engine_samples", built[2])
                bench.guarded(row, side, built[0])  # warm: parser imports, caches
    bench.log(f"engine: {bench.info.get('engine_samples')} samples, {bench.args.repeat} repeats")
    for rep in range(bench.args.repeat):
        order = cases if rep % 2 == 0 else list(reversed(cases))
        for row, side, (scrape, change, _) in order:
            timed = functools.partial(_time, scrape, change, row is changing)
            ms = bench.guarded(row, side, timed)
            if ms is not None:
                row.add(side.name, ms)
        gc.collect()
