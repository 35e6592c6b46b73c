"""The metric types and helpers of the second release: Summary, exemplars, set_function.

Rows:

* ``Summary.observe`` with three objectives against **our own**
  ``Histogram.observe`` (target <= 3x: the right-hand column of that row is
  dyn_metrics' histogram, not prometheus_client), and against
  prometheus_client's ``Summary.observe`` (which keeps no quantiles: report);
* ``Counter.inc(exemplar=...)`` against prometheus_client's (target <= 0.5x);
* the scrape cost per gauge of ``Gauge.set_function`` (1,000 function gauges
  in one registry, text 0.0.4) against prometheus_client's (target <= 1x);
* ``Info.info`` and ``Enum.state`` updates (report).
"""

import functools
import gc
import itertools
import random
from typing import Any, Callable, Optional

from .cases_scrape import time_scrapes
from .harness import Bench, Row, fmt_ns, fmt_us
from .loops import loop_call0, loop_call1, loop_call_list
from .sides import Side

OBJECTIVES = {0.5: 0.05, 0.9: 0.01, 0.99: 0.001}
EXEMPLAR = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
FUNCTION_GAUGES = 1000

Runner = Callable[[], float]


def lib(side: Side) -> Any:
    """The library module behind a side."""
    return side.dm if side.name == "dyn_metrics" else side.pc  # type: ignore[union-attr]


def _summary(side: Side, name: str) -> Any:
    if side.name == "dyn_metrics":
        return lib(side).Summary(name, "bench summary", objectives=OBJECTIVES)
    return lib(side).Summary(name, "bench summary", registry=None)


def _function_gauges(side: Side, bench: Bench) -> Callable[[], object]:
    """A registry of FUNCTION_GAUGES gauges, each reading a function: its text scrape."""
    value = functools.partial(float, 1.5)
    if side.name == "dyn_metrics":
        dm: Any = lib(side)
        reg = dm.Registry()
        for i in range(FUNCTION_GAUGES):
            reg.register(dm.Gauge(bench.uniq(f"bench_fg{i}"), "function gauge")).set_function(value)
        scrape: Callable[[], object] = reg.prometheus_expfmt
        return scrape
    pc: Any = lib(side)
    reg = pc.CollectorRegistry()
    for i in range(FUNCTION_GAUGES):
        pc.Gauge(bench.uniq(f"bench_fg{i}"), "function gauge", registry=reg).set_function(value)
    return functools.partial(pc.generate_latest, reg)


def run(bench: Bench) -> None:
    n = bench.args.loops
    reps = bench.args.repeat
    bench.log(f"metric types: {reps} repeats x {n} calls")
    rng = random.Random(7)
    values = [rng.lognormvariate(-2.0, 1.0) for _ in range(n)]

    vs_hist = bench.row(
        "summary_vs_histogram",
        "Summary.observe, 3 objectives / OUR Histogram.observe (right column: dyn_metrics)",
        "ns/op",
        3.0,
        fmt=fmt_ns,
        group="types",
    )
    summary = bench.row(
        "summary_observe",
        "Summary.observe (ours: 3 objectives; prometheus_client: none)",
        "ns/op",
        fmt=fmt_ns,
        group="types",
    )
    exemplar = bench.row(
        "counter_inc_exemplar",
        "Counter.inc(exemplar={trace_id})",
        "ns/op",
        0.5,
        fmt=fmt_ns,
        group="types",
    )
    function = bench.row(
        "set_function_scrape",
        f"Gauge.set_function scrape, per gauge ({FUNCTION_GAUGES} gauges)",
        "us/gauge",
        1.0,
        fmt=fmt_us,
        group="types",
    )
    info = bench.row(
        "info_update", "Info.info({version, commit})", "ns/op", fmt=fmt_ns, group="types"
    )
    enum = bench.row("enum_state", "Enum.state(...)", "ns/op", fmt=fmt_ns, group="types")

    dyn = next(s for s in bench.sides if s.name == "dyn_metrics")
    labels = {"version": "1.2.3", "commit": "abc"}
    makers: list[tuple[Row, Side, str, Callable[[], Runner]]] = []
    for side in bench.sides:
        makers.append(
            (
                summary,
                side,
                side.name,
                lambda s=side: _observe(_summary(s, bench.uniq("bs")), values),
            )
        )
        makers.append((exemplar, side, side.name, lambda s=side: _inc_exemplar(s, bench, n)))
        makers.append((function, side, side.name, lambda s=side: _scrape_per_gauge(s, bench)))
        makers.append((info, side, side.name, lambda s=side: _info(s, bench, labels, n)))
        makers.append((enum, side, side.name, lambda s=side: _enum(s, bench, n)))
    hist = functools.partial(dyn.histogram, bench.uniq("bench_th"))
    makers.append(
        (vs_hist, dyn, "dyn_metrics", lambda: _observe(_summary(dyn, bench.uniq("bs")), values))
    )
    makers.append((vs_hist, dyn, "prometheus_client", lambda: _observe(hist(), values)))

    runners: list[tuple[Row, Side, str, Optional[Runner]]] = [
        (row, side, column, bench.guarded(row, side, make)) for row, side, column, make in makers
    ]
    for rep in range(reps):
        order = runners if rep % 2 == 0 else list(reversed(runners))
        for row, side, column, run_one in order:
            if run_one is None:
                continue
            v = bench.guarded(row, side, run_one)
            if v is not None:
                row.add(column, v)
        gc.collect()


def _observe(metric: Any, values: list[float]) -> Runner:
    f = metric.observe
    return lambda: loop_call_list(f, values)


def _inc_exemplar(side: Side, bench: Bench, n: int) -> Runner:
    c = side.counter(bench.uniq("bench_ex_total"))
    f = functools.partial(c.inc, 1, EXEMPLAR)  # both libraries: inc(amount, exemplar)
    return lambda: loop_call0(f, n // 4)


def _scrape_per_gauge(side: Side, bench: Bench) -> Runner:
    scrape = _function_gauges(side, bench)
    return lambda: time_scrapes(scrape, 5) / 1e3 / FUNCTION_GAUGES


def _info(side: Side, bench: Bench, labels: dict[str, str], n: int) -> Runner:
    name = bench.uniq("bench_info")
    if side.name == "dyn_metrics":
        metric: Any = lib(side).Info(name, "bench info")
    else:
        metric = lib(side).Info(name, "bench info", registry=None)
    return lambda: loop_call1(metric.info, labels, n // 4)


def _enum(side: Side, bench: Bench, n: int) -> Runner:
    name = bench.uniq("bench_enum")
    states = ["starting", "ready", "draining"]
    if side.name == "dyn_metrics":
        metric: Any = lib(side).Enum(name, "bench enum", states=states)
    else:
        metric = lib(side).Enum(name, "bench enum", states=states, registry=None)
    cycle = list(itertools.islice(itertools.cycle(states), n // 4))
    return lambda: loop_call_list(metric.state, cycle)
