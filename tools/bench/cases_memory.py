"""Memory: tracemalloc bytes per vec child, each child touched once.

Counted is what the library allocates for n children of one 2-label vec
(tracemalloc traces Python allocations only), optionally with one text scrape
inside the window so the caches a scrape keeps are charged too.

The first rows make the label strings inside the window (each side pays for
its own copies). The last two make them before the window and hand the same
strings to both sides, so only what each library keeps is counted: a counter
vec child before its first scrape and after 300 full text scrapes, which is
past the 256 of CPython's small-int cache (a counter kept per cell, for
example, would start allocating there). Tracing slows prometheus_client's
scrape about 6x, so those rows use fewer children and one repeat: tracemalloc
counts do not move between repeats.
"""

import functools
import gc
import tracemalloc
from typing import Optional

from .harness import Bench, Row, fmt_bytes
from .sides import Side, fill_vec, label_pair

SCRAPES = 300


def mem_per_child(bench: Bench, side: Side, kind: str, n: int, scraped: bool = False) -> float:
    """tracemalloc bytes per child over n children, each touched once.

    kind is "counter", "counter_total" (family name ending ``_total``) or
    "histogram". With ``scraped`` the vec is registered and scraped once
    (text 0.0.4) inside the measured window.
    """
    if kind == "histogram":
        vec = side.histogramvec(bench.uniq("bench_mh"))
    else:
        # prometheus_client builds a per-child string for names ending in
        # `_total` (~55 B more per child); "counter" avoids that suffix so
        # the target compares against its cheaper case.
        vec = side.countervec(
            bench.uniq("bench_mc_total" if kind == "counter_total" else "bench_mc")
        )
    get = side.child_getter(vec)
    scrape = side.text_scraper(side.registry_for(vec)) if scraped else None
    # one child first, so one-time lazy state is not charged to the n
    if kind != "histogram":
        get("warm", "up").inc()
    else:
        get("warm", "up").observe(0.3)
    if scrape is not None:
        scrape()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fill_vec(get, n, "observe" if kind == "histogram" else "inc")
        if scrape is not None:
            scrape()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del vec, scrape
    return (after - before) / n


def mem_after_scrapes(
    bench: Bench, side: Side, pairs: list[tuple[str, str]], scrapes: int
) -> tuple[float, float]:
    """tracemalloc bytes per counter vec child: (before any scrape, after ``scrapes``).

    One child and one scrape come first, outside the window, so one-time lazy
    state is not charged. In the window: one child per label pair (the
    caller's strings, made before the window), each inc'ed once; gc and the
    first figure; ``scrapes`` text 0.0.4 scrapes of a registry holding the
    vec; gc and the second figure, which includes every cache a scrape keeps.
    """
    vec = side.countervec(bench.uniq("bench_ms"))
    get = side.child_getter(vec)
    scrape = side.text_scraper(side.registry_for(vec))
    get("warm", "up").inc()
    scrape()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for a, b in pairs:
            get(a, b).inc()
        gc.collect()
        created = tracemalloc.get_traced_memory()[0]
        for _ in range(scrapes):
            scrape()
        gc.collect()
        scraped = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del vec, scrape
    n = len(pairs)
    return (created - start) / n, (scraped - start) / n


def _run_after_scrapes(bench: Bench) -> None:
    n = bench.args.mem_scrape_children
    bench.log(f"memory: {n} children per vec, {SCRAPES} scrapes, shared label strings")
    after = bench.row(
        "bytes_counter_child_300_scrapes",
        f"bytes per counter vec child after {SCRAPES} text scrapes, shared label strings",
        "bytes",
        0.35,
        fmt=fmt_bytes,
        group="memory",
    )
    before = bench.row(
        "bytes_counter_child_shared",
        "  same, before the first scrape",
        "bytes",
        fmt=fmt_bytes,
        group="memory",
    )
    after.note = (
        f"includes every cache a scrape keeps; {n} children, label strings made before "
        "the tracemalloc window and shared by both sides"
    )
    pairs = [label_pair(i) for i in range(n)]  # shared by both sides, outside every window
    for side in bench.order(0):
        v = bench.guarded(
            after, side, functools.partial(mem_after_scrapes, bench, side, pairs, SCRAPES)
        )
        if v is not None:
            before.add(side.name, v[0])
            after.add(side.name, v[1])
        elif side.name in after.errors:
            before.errors.setdefault(side.name, after.errors[side.name])
        gc.collect()


def run(bench: Bench) -> None:
    n = bench.args.mem_children
    reps = bench.args.mem_repeat
    bench.log(f"memory: {n} children per vec, {reps} repeats")
    same_scraped = "  same, after one text scrape"
    # (row key, title, target, kind, scraped), in table order
    table: list[tuple[str, str, Optional[float], str, bool]] = [
        ("bytes_counter_child", "bytes per counter vec child (2 labels)", 0.4, "counter", False),
        (
            "bytes_counter_total_child",
            "  same, family name ending `_total`",
            None,
            "counter_total",
            False,
        ),
        ("bytes_counter_child_scraped", same_scraped, None, "counter", True),
        (
            "bytes_histogram_child",
            "bytes per histogram vec child (2 labels, default buckets)",
            0.3,
            "histogram",
            False,
        ),
        ("bytes_histogram_child_scraped", same_scraped, None, "histogram", True),
    ]
    rows: list[tuple[Row, str, bool]] = [
        (bench.row(key, title, "bytes", target, fmt=fmt_bytes, group="memory"), kind, scraped)
        for key, title, target, kind, scraped in table
    ]
    for rep in range(reps):
        for row, kind, scraped in rows:
            for side in bench.order(rep):
                v = bench.guarded(
                    row,
                    side,
                    functools.partial(mem_per_child, bench, side, kind, n, scraped),
                )
                if v is not None:
                    row.add(side.name, v)
                gc.collect()
    _run_after_scrapes(bench)
