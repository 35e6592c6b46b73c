"""Native histograms and the protobuf exposition (dyn_metrics only: no peer has either).

Rows, each against **our own** other path (the right-hand column is dyn_metrics too):

* ``Histogram(native=True).observe`` against our classic ``Histogram.observe``
  on the same lognormal values (target <= 1.5x): bucket indexing happens at
  fold time, so ``observe`` stays one append;
* the protobuf exposition of 10k counter series against our text exposition of
  the same registry (report);
* the protobuf exposition of 1k native histogram children (schema 3, 200 values
  each) against the text exposition of the same (report).
"""

import gc
import random
from typing import Any, Callable, Optional

from .cases_scrape import time_scrapes
from .harness import Bench, Row, fmt_ms, fmt_ns
from .loops import loop_call_list
from .sides import Side, fill_vec

Runner = Callable[[], float]
SERIES = 10_000
NATIVE_CHILDREN = 1_000


def _observe(metric: Any, values: list[float]) -> Runner:
    f = metric.observe
    return lambda: loop_call_list(f, values)


def _counter_registry(dm: Any, side: Side, bench: Bench) -> Any:
    vec = dm.CounterVec(bench.uniq("bench_pb_total"), "bench counter vec", ["a", "b"])
    fill_vec(side.child_getter(vec), SERIES, "inc")
    reg = dm.Registry()
    reg.register(vec)
    return reg


def _native_registry(dm: Any, bench: Bench, rng: random.Random) -> Any:
    vec = dm.HistogramVec(bench.uniq("bench_nh"), "bench native", ["a"], native=True)
    for i in range(NATIVE_CHILDREN):
        child = vec.with_label_values(str(i))
        for _ in range(200):
            child.observe(rng.lognormvariate(-2.0, 1.0))
    reg = dm.Registry()
    reg.register(vec)
    return reg


def _scrape(fn: Callable[[], object], inner: int) -> Runner:
    return lambda: time_scrapes(fn, inner) / 1e6


def run(bench: Bench) -> None:
    dyn = next((s for s in bench.sides if s.name == "dyn_metrics"), None)
    if dyn is None:
        return
    dm: Any = dyn.dm
    n = bench.args.loops
    reps = bench.args.repeat
    bench.log(f"native histograms: {reps} repeats x {n} observations; protobuf scrapes")
    rng = random.Random(11)
    values = [rng.lognormvariate(-2.0, 1.0) for _ in range(n)]

    vs_classic = bench.row(
        "native_vs_classic",
        "Histogram(native=True).observe / OUR classic observe (right column: dyn_metrics)",
        "ns/op",
        1.5,
        fmt=fmt_ns,
        group="native",
    )
    pb_series = bench.row(
        "protobuf_10k",
        f"protobuf scrape, {SERIES // 1000}k counter series / OUR text scrape",
        "ms/scrape",
        fmt=fmt_ms,
        group="native",
    )
    pb_native = bench.row(
        "protobuf_native_1k",
        f"protobuf scrape, {NATIVE_CHILDREN // 1000}k native histograms / OUR text scrape",
        "ms/scrape",
        fmt=fmt_ms,
        group="native",
    )

    def native() -> Any:
        return dm.Histogram(bench.uniq("bench_nho"), "bench native", native=True)

    def classic() -> Any:
        return dm.Histogram(bench.uniq("bench_nhc"), "bench classic")

    makers: list[tuple[Row, str, Callable[[], Runner]]] = [
        (vs_classic, "dyn_metrics", lambda: _observe(native(), values)),
        (vs_classic, "prometheus_client", lambda: _observe(classic(), values)),
    ]
    counters = bench.guarded(pb_series, dyn, lambda: _counter_registry(dm, dyn, bench))
    if counters is not None:
        makers.append((pb_series, "dyn_metrics", lambda: _scrape(counters.protobuf_expfmt, 3)))
        makers.append(
            (pb_series, "prometheus_client", lambda: _scrape(counters.prometheus_expfmt, 3))
        )
    natives = bench.guarded(pb_native, dyn, lambda: _native_registry(dm, bench, rng))
    if natives is not None:
        makers.append((pb_native, "dyn_metrics", lambda: _scrape(natives.protobuf_expfmt, 3)))
        makers.append(
            (pb_native, "prometheus_client", lambda: _scrape(natives.prometheus_expfmt, 3))
        )

    runners: list[tuple[Row, str, Optional[Runner]]] = [
        (row, column, bench.guarded(row, dyn, make)) for row, column, make in makers
    ]
    for rep in range(reps):
        order = runners if rep % 2 == 0 else list(reversed(runners))
        for row, column, run_one in order:
            if run_one is None:
                continue
            v = bench.guarded(row, dyn, run_one)
            if v is not None:
                row.add(column, v)
        gc.collect()
