"""Scrape: text 0.0.4 and OpenMetrics exposition of one counter vec, by size.

Sizes are 1k and 10k series (--quick), plus 100k in a full run; the 100k text
scrape carries the ratio target, every size the per-series target. Before the
timing, each body is scraped once and its sample lines counted: a side that does
not emit one line per series gets a note (and its body sizes land in --json).
"""

import functools
import gc
import statistics
from time import perf_counter_ns
from typing import Any, Optional

from .harness import Bench, Row, Timed, fmt_ms, fmt_us
from .sides import Scrape, Side, fill_vec


def time_scrapes(fn: Scrape, inner: int) -> float:
    """Mean ns of one scrape over inner back-to-back scrapes."""
    with Timed():
        t0 = perf_counter_ns()
        for _ in range(inner):
            fn()
        t1 = perf_counter_ns()
    return (t1 - t0) / inner


def _build(bench: Bench, side: Side, size: int) -> Any:
    reg, vec = side.scrape_registry(bench.uniq("bench_s_total"))
    fill_vec(side.child_getter(vec), size, "inc")
    return reg


def _sanity(
    bench: Bench, side: Side, label: str, size: int, fam: str, fn: Scrape, row: Row
) -> None:
    """Scrape once; record body size and sample lines; note a line count != size."""
    body = bench.guarded(row, side, fn)
    if body is None:
        return
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    lines = [ln for ln in body.split("\n") if ln and ln[0] != "#"]
    bench.info.setdefault("scrape_bodies", {}).setdefault(f"{fam}_{label}", {})[side.name] = {
        "bytes": len(body.encode("utf-8")),
        "sample_lines": len(lines),
    }
    if len(lines) != size:
        row.note = f"{side.name}: {len(lines)} sample lines for {size} series"


def run(bench: Bench) -> None:
    sizes = bench.args.sizes
    bench.log("scrape: sizes " + ", ".join(str(s) for s in sizes))
    for size in sizes:
        _run_size(bench, size)


def _run_size(bench: Bench, size: int) -> None:
    label = f"{size // 1000}k" if size % 1000 == 0 else str(size)
    reps = bench.args.repeat if size <= 10_000 else bench.args.big_repeat
    # enough scrapes per sample to stay well above timer resolution
    inner = max(1, 20_000 // size)
    big = size >= 100_000
    t_row = bench.row(
        f"text_{label}",
        f"text 0.0.4 scrape, {label} series",
        "ms/scrape",
        0.2 if big else None,
        fmt=fmt_ms,
        group="scrape",
    )
    ps_row = bench.row(
        f"text_{label}_per_series",
        "  per series",
        "us/series",
        1.0,
        kind="abs",
        fmt=fmt_us,
        group="scrape",
    )
    om_row = bench.row(
        f"om_{label}",
        f"OpenMetrics scrape, {label} series",
        "ms/scrape",
        fmt=fmt_ms,
        group="scrape",
    )
    om_ps: dict[str, list[float]] = {}

    # side name -> (registry, text scrape, OpenMetrics scrape)
    scrapers: dict[str, tuple[Any, Optional[Scrape], Optional[Scrape]]] = {}
    for side in bench.sides:
        reg = bench.guarded(t_row, side, functools.partial(_build, bench, side, size))
        if reg is None:
            om_row.error(side.name, RuntimeError("registry build failed"))
            ps_row.error(side.name, RuntimeError("registry build failed"))
            continue
        text = bench.guarded(t_row, side, functools.partial(side.text_scraper, reg))
        om = bench.guarded(om_row, side, functools.partial(side.openmetrics_scraper, reg))
        scrapers[side.name] = (reg, text, om)
        # sanity: both bodies carry one line per series
        for fam, fn, row in (("text", text, t_row), ("openmetrics", om, om_row)):
            if fn is not None:
                _sanity(bench, side, label, size, fam, fn, row)

    for rep in range(reps):
        for row, idx in ((t_row, 1), (om_row, 2)):
            for side in bench.order(rep):
                entry = scrapers.get(side.name)
                if entry is None:
                    continue
                fn = entry[1] if idx == 1 else entry[2]
                if fn is None:
                    continue
                ns = bench.guarded(row, side, functools.partial(time_scrapes, fn, inner))
                if ns is None:
                    continue
                row.add(side.name, ns / 1e6)
                if idx == 1:
                    ps_row.add(side.name, ns / 1e3 / size)
                else:
                    om_ps.setdefault(side.name, []).append(ns / 1e3 / size)
            gc.collect()
    for name, v in om_ps.items():
        om_row.extra[name] = f"({statistics.median(v):.3f} us/series)"
    for side in bench.sides:
        if side.name in t_row.errors:
            ps_row.errors.setdefault(side.name, t_row.errors[side.name])
    scrapers.clear()
    gc.collect()
