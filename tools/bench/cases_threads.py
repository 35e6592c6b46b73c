"""Contention: 4 threads incrementing one vec child, and the updates they lost.

Two configurations: the default switch interval, and a 10 us one that makes
the interpreter switch threads inside the increment far more often, which is
where a non-atomic read-modify-write would lose updates.
"""

import functools
import gc
import itertools
import statistics
import sys
import threading
from time import perf_counter_ns
from typing import Callable, Optional

from .harness import Bench, Timed, fmt_count, fmt_ns
from .sides import Metric, Side

NTHREADS = 4


def time_threads(inc: Callable[[], object], n: int, nthreads: int) -> int:
    """Wall ns for nthreads threads to call inc() n times each, started together."""
    barrier = threading.Barrier(nthreads + 1)

    def work() -> None:
        f = inc
        it = itertools.repeat(None, n)
        barrier.wait()
        for _ in it:
            f()

    ts = [threading.Thread(target=work) for _ in range(nthreads)]
    for t in ts:
        t.start()
    with Timed():
        barrier.wait()
        t0 = perf_counter_ns()
        for t in ts:
            t.join()
        t1 = perf_counter_ns()
    return t1 - t0


def _child(bench: Bench, side: Side) -> Metric:
    vec = side.countervec(bench.uniq("bench_t_total"))
    return side.child_getter(vec)("x", "y")


def _one_repeat(side: Side, child: Metric, n: int) -> tuple[int, float]:
    """(wall ns, lost updates) of one threaded run on child."""
    before = side.counter_value(child)
    ns = time_threads(child.inc, n, NTHREADS)
    after = side.counter_value(child)
    return ns, before + NTHREADS * n - after


def run(bench: Bench) -> None:
    nthreads = NTHREADS
    n = bench.args.thread_ops
    reps = bench.args.thread_repeat
    bench.log(f"contention: {nthreads} threads x {n} ops, {reps} repeats")
    # (row key, title, switch interval, repeats, ops per thread)
    configs: list[tuple[str, str, Optional[float], int, int]] = [
        ("threads4_child_inc", "4 threads child.inc(), aggregate", None, reps, n),
        (
            "threads4_child_inc_tight",
            "4 threads child.inc(), switchinterval 10us",
            1e-5,
            max(1, reps // 2),
            max(1, n // 4),
        ),
    ]
    for key, title, interval, creps, cn in configs:
        trow = bench.row(key, title, "ns/op", fmt=fmt_ns, group="threads")
        lrow = bench.row(
            key + "_lost",
            "  lost updates (expected - final)",
            "count",
            0,
            kind="zero",
            fmt=fmt_count,
            group="threads",
        )
        children: dict[str, Optional[Metric]] = {}
        for side in bench.sides:
            children[side.name] = bench.guarded(trow, side, functools.partial(_child, bench, side))
        rates: dict[str, list[float]] = {s.name: [] for s in bench.sides}
        old = sys.getswitchinterval()
        try:
            if interval is not None:
                sys.setswitchinterval(interval)
            for rep in range(creps):
                for side in bench.order(rep):
                    child = children.get(side.name)
                    if child is None:
                        continue
                    res = bench.guarded(
                        trow,
                        side,
                        functools.partial(_one_repeat, side, child, cn),
                    )
                    if res is None:
                        continue
                    ns, lost = res
                    trow.add(side.name, ns / (nthreads * cn))
                    rates[side.name].append(nthreads * cn / (ns / 1e9))
                    lrow.add(side.name, lost)
        finally:
            sys.setswitchinterval(old)
        for name, r in rates.items():
            if r:
                trow.extra[name] = f"({statistics.median(r) / 1e6:.2f} Mops/s)"
        trow.note = f"{nthreads} threads x {cn} ops per repeat"
        gc.collect()
