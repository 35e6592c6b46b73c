"""Churn: the child set changing, creating children and scraping right after one appears.

Rows:

* creating 10k children of a fresh 2-label counter vec (``with_label_values``
  / ``labels``), creation only (no ``inc``), ns per child, label strings made
  once before any timing and shared by both sides (target <= 0.35x);
* a registry of one counter vec holding the scrape phase's largest size (100k
  series, 10k under ``--quick``), scraped steady (text 0.0.4) and, in turn,
  right after one new child (new label values, inc'ed once) was added:
  our first scrape after the add against **our own** steady scrape (target
  <= 2x), the same ratio for prometheus_client (report; it keeps no caches)
  and our first scrape after an add against prometheus_client's (report).

Steady and after-add samples come in pairs whose order alternates (so each
kind is as often the first scrape after the other side ran), the two sides
alternate by repeat, and medians are reported.
The added children land all over the sorted order, not only at its end.
"""

import functools
import gc
from time import perf_counter_ns
from typing import Callable, Union

from .harness import Bench, Row, Timed, fmt_ms, fmt_ns
from .loops import loop_create
from .sides import Getter, Scrape, Side, fill_vec, label_pair

CREATE_CHILDREN = 10_000
# after-add / steady pairs per repeat: ours are cheap, prometheus_client's 100k
# scrape takes over a second
PAIRS = {"dyn_metrics": 2, "prometheus_client": 1}


def _create_sample(bench: Bench, side: Side, pairs: list[tuple[str, str]]) -> float:
    """ns per child to create len(pairs) children of a fresh vec."""
    vec = side.countervec(bench.uniq("bench_cc_total"))
    ns = loop_create(side.child_getter(vec), pairs)
    del vec
    gc.collect()  # freeing the children is not part of the sample
    return ns


def _run_create(bench: Bench) -> None:
    row = bench.row(
        "create_children_10k",
        f"create {CREATE_CHILDREN // 1000}k vec children (2 labels, with_label_values / labels), "
        "no inc",
        "ns/child",
        0.35,
        fmt=fmt_ns,
        group="churn",
    )
    pairs = [label_pair(i) for i in range(CREATE_CHILDREN)]
    for side in bench.sides:  # warm-up, not recorded (also hashes the shared strings)
        bench.guarded(row, side, functools.partial(_create_sample, bench, side, pairs))
    for rep in range(bench.args.repeat):
        for side in bench.order(rep):
            v = bench.guarded(row, side, functools.partial(_create_sample, bench, side, pairs))
            if v is not None:
                row.add(side.name, v)


class _Churn:
    """One side's registry: steady scrapes and scrapes right after one new child."""

    def __init__(self, bench: Bench, side: Side, size: int) -> None:
        reg, vec = side.scrape_registry(bench.uniq("bench_churn_total"))
        self.get: Getter = side.child_getter(vec)
        fill_vec(self.get, size, "inc")
        self.scrape: Scrape = side.text_scraper(reg)
        self.scrape()  # the first scrape of all: not a sample
        self.groups = max(1, size // 100)  # distinct first label values of fill_vec
        self.children = size
        self.last: Union[str, bytes] = ""

    def _timed(self) -> float:
        fn = self.scrape
        with Timed():
            t0 = perf_counter_ns()
            body = fn()
            t1 = perf_counter_ns()
        self.last = body
        return (t1 - t0) / 1e6

    def steady(self) -> float:
        """ms of one scrape with no change since the previous one."""
        return self._timed()

    def after_add(self) -> float:
        """ms of the first scrape after one new child is added (and inc'ed once)."""
        k = self.children
        # an existing first value, a new second one: lands inside the order
        self.get(f"a{(k * 37) % self.groups}", f"n{k}").inc()
        self.children += 1
        return self._timed()

    def sample_lines(self) -> int:
        body = self.last
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return sum(1 for ln in text.split("\n") if ln and ln[0] != "#")


def _run_churn(bench: Bench) -> None:
    size = max(bench.args.sizes)
    label = f"{size // 1000}k" if size % 1000 == 0 else str(size)
    ours = bench.row(
        f"churn_text_{label}",
        f"first scrape after adding one child, {label} series / OUR steady scrape",
        "ms/scrape",
        2.0,
        fmt=fmt_ms,
        group="churn",
    )
    theirs = bench.row(
        f"churn_text_{label}_peer",
        "  same ratio for prometheus_client",
        "ms/scrape",
        fmt=fmt_ms,
        group="churn",
    )
    cross = bench.row(
        f"churn_text_{label}_vs_peer",
        "  first scrape after adding one child, vs prometheus_client's",
        "ms/scrape",
        fmt=fmt_ms,
        group="churn",
    )
    ours.note = "both columns dyn_metrics: after one new child (left), steady (right)"
    theirs.note = "both columns prometheus_client: after one new child (left), steady (right)"
    # side name -> (row, column) for each kind of sample
    after_to = {
        "dyn_metrics": [(ours, "dyn_metrics"), (cross, "dyn_metrics")],
        "prometheus_client": [(theirs, "dyn_metrics"), (cross, "prometheus_client")],
    }
    steady_to = {
        "dyn_metrics": [(ours, "prometheus_client")],
        "prometheus_client": [(theirs, "prometheus_client")],
    }
    own_row = {"dyn_metrics": ours, "prometheus_client": theirs}
    bench.log(f"churn: {label} series, steady scrapes and scrapes after one new child")

    churns: dict[str, _Churn] = {}
    for side in bench.sides:
        c = bench.guarded(own_row[side.name], side, functools.partial(_Churn, bench, side, size))
        if c is not None:
            churns[side.name] = c

    def record(side: Side, fn: Callable[[], float], to: list[tuple[Row, str]]) -> None:
        v = bench.guarded(own_row[side.name], side, fn)
        if v is not None:
            for row, column in to:
                row.add(column, v)

    big = size >= 100_000
    for rep in range(bench.args.repeat):
        for side in bench.order(rep):
            c = churns.get(side.name)
            # prometheus_client's 100k scrape is slow: as many repeats as the scrape phase
            if c is None or (big and side.name != "dyn_metrics" and rep >= bench.args.big_repeat):
                continue
            for pair in range(PAIRS[side.name]):
                steps = [(c.steady, steady_to[side.name]), (c.after_add, after_to[side.name])]
                if (rep + pair) % 2:  # either kind comes first, right after the other side
                    steps.reverse()
                for fn, to in steps:
                    record(side, fn, to)
            gc.collect()
    for side in bench.sides:
        if side.name in own_row[side.name].errors:
            cross.errors.setdefault(side.name, own_row[side.name].errors[side.name])
    for name, c in churns.items():
        lines = c.sample_lines()
        if lines != c.children:
            own_row[name].note += f"; {lines} sample lines for {c.children} series"
    churns.clear()
    gc.collect()


def run(bench: Bench) -> None:
    bench.log(
        f"churn: create {CREATE_CHILDREN} children per fresh vec, {bench.args.repeat} repeats"
    )
    _run_create(bench)
    _run_churn(bench)
