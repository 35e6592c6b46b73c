"""Single-thread hot paths: inc, inc_by, set, observe, label lookup, bound children.

Each case is a maker: given a side it builds the metric, binds the method to a
local and returns a runner that times one sample. The floors run in the same
repeats, before the cases, so they see the same machine.
"""

import functools
import gc
import itertools
from typing import Callable, Optional

from .harness import Bench, Row, fmt_ns
from .loops import FLOORS, loop_call0, loop_call1, loop_call_list, loop_lookup_inc
from .sides import OBSERVE_VALUES, Side

Runner = Callable[[], float]
Maker = Callable[[Side], Runner]


def _makers(bench: Bench, n: int, values: list[float]) -> dict[str, Maker]:
    """The case makers by row key; n calls (or the n values) per sample."""

    def counter_inc(side: Side) -> Runner:
        f = side.counter(bench.uniq("bench_c_total")).inc
        return lambda: loop_call0(f, n)

    def counter_inc_by(side: Side) -> Runner:
        c = side.counter(bench.uniq("bench_c_total"))
        f = c.inc_by if side.name == "dyn_metrics" else c.inc
        return lambda: loop_call1(f, 2.5, n)

    def gauge_set(side: Side) -> Runner:
        f = side.gauge(bench.uniq("bench_g")).set
        return lambda: loop_call1(f, 1.0, n)

    def hist_observe(side: Side) -> Runner:
        f = side.histogram(bench.uniq("bench_h")).observe
        return lambda: loop_call_list(f, values)

    def vec_lookup_inc(side: Side) -> Runner:
        vec = side.countervec(bench.uniq("bench_v_total"))
        get = side.child_getter(vec)
        get("x", "y").inc()  # the child exists: measure the lookup path
        return lambda: loop_lookup_inc(get, "x", "y", n)

    def child_inc(side: Side) -> Runner:
        vec = side.countervec(bench.uniq("bench_v_total"))
        f = side.child_getter(vec)("x", "y").inc
        return lambda: loop_call0(f, n)

    def hist_child_observe(side: Side) -> Runner:
        vec = side.histogramvec(bench.uniq("bench_hv"))
        f = side.child_getter(vec)("x", "y").observe
        return lambda: loop_call_list(f, values)

    return {
        "counter_inc": counter_inc,
        "counter_inc_by": counter_inc_by,
        "gauge_set": gauge_set,
        "histogram_observe": hist_observe,
        "vec_lookup_inc": vec_lookup_inc,
        "child_inc": child_inc,
        "hist_child_observe": hist_child_observe,
    }


def _bucket_counts(bench: Bench) -> dict[str, Optional[int]]:
    nb: dict[str, Optional[int]] = {}
    for side in bench.sides:
        try:
            nb[side.name] = side.bucket_count()
        except Exception:
            nb[side.name] = None
    return nb


def run(bench: Bench) -> None:
    n = bench.args.loops
    reps = bench.args.repeat
    bench.log(f"hot paths: {reps} repeats x {n} calls")

    nb = _bucket_counts(bench)
    bench.info["default_histogram_buckets"] = nb
    bk = nb.get("dyn_metrics"), nb.get("prometheus_client")
    hist_title = (
        f"Histogram.observe, default buckets ({bk[0] if bk[0] else '?'} vs "
        f"{bk[1] if bk[1] else '?'})"
    )

    values = list(itertools.islice(itertools.cycle(OBSERVE_VALUES), n))
    makers = _makers(bench, n, values)
    # (row key, title, target), in table order
    table: list[tuple[str, str, Optional[float]]] = [
        ("counter_inc", "Counter.inc()", 0.5),
        ("counter_inc_by", "Counter.inc_by(2.5) / inc(2.5)", 0.25),
        ("gauge_set", "Gauge.set(1.0)", None),
        ("histogram_observe", hist_title, 0.4),
        ("vec_lookup_inc", "vec with_label_values(a,b).inc() / labels(a,b).inc()", 0.25),
        ("child_inc", "pre-bound vec child .inc()", None),
        ("hist_child_observe", "pre-bound histogram vec child .observe()", None),
    ]
    cases = [
        (bench.row(key, title, "ns/op", target, fmt=fmt_ns, group="hot"), makers[key])
        for key, title, target in table
    ]

    floors = [(Row("floor_" + fn.__name__, title, "ns/op", fmt=fmt_ns), fn) for title, fn in FLOORS]
    bench.floor_rows = [r for r, _ in floors]

    runners: list[tuple[Row, dict[str, Optional[Runner]]]] = []
    for row, make in cases:
        per_side: dict[str, Optional[Runner]] = {}
        for side in bench.sides:
            per_side[side.name] = bench.guarded(row, side, functools.partial(make, side))
        runners.append((row, per_side))

    # warm-up: one short pass of everything, not recorded
    for row, per_side in runners:
        for side in bench.sides:
            run_one = per_side.get(side.name)
            if run_one is not None:
                bench.guarded(row, side, run_one)

    for rep in range(reps):
        for frow, fn in floors:
            frow.add("dyn_metrics", fn(n))
        for row, per_side in runners:
            for side in bench.order(rep):
                run_one = per_side.get(side.name)
                if run_one is None:
                    continue
                v = bench.guarded(row, side, run_one)
                if v is not None:
                    row.add(side.name, v)
        gc.collect()
