#!/usr/bin/env python3
"""Side-by-side benchmark: dyn_metrics against prometheus_client, in one process.

Run from a clone (no install needed for dyn_metrics)::

    pip install -e '.[bench]'        # brings prometheus_client
    python tools/bench.py            # full run, a few minutes on 2 cores
    python tools/bench.py --quick    # fewer repeats and sizes
    python tools/bench.py --json out.json --check

Method
------
* Both libraries live in this process. Every repeat runs each case once per
  library, alternating which one goes first (A B, B A, A B, ...), so slow drift
  and noise hit both sides alike. Reported: median and [min..max] over
  repeats, raw ns/op with nothing subtracted.
* Hot loops call a bound method held in a local (``f = c.inc``; ``for _ in
  repeat(None, n): f()``), the same loop shape on both sides. The garbage
  collector is disabled while a timed region runs.
* The floors of this machine (empty loop, ``x += 1``, ``with lock: x += 1``, an
  empty Python call) are measured in the same interleaved repeats and printed
  below the table, so absolute numbers can be put in context.
* prometheus_client runs with private ``CollectorRegistry`` objects and with
  ``_created`` series disabled, so both sides expose the same lines per series.
* The HTTP load client runs in its own interpreter (tools/_bench_http.py) so
  its threads do not share a GIL with the servers under test.
* ratio = dyn_metrics / prometheus_client, lower is better. Cases with a target
  get PASS/FAIL; ``--check`` turns any FAIL (or a case that raised) into exit 1.
"""

import argparse
import gc
import itertools
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from time import perf_counter_ns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's dyn_metrics wins over an installed one

_repeat = itertools.repeat

LABELS = ["a", "b"]
# Observed in a cycle by both sides: one value per prometheus_client default
# bucket, +Inf included, which also covers every dyn_metrics default bucket.
OBSERVE_VALUES = [
    0.001,
    0.007,
    0.02,
    0.04,
    0.06,
    0.09,
    0.2,
    0.4,
    0.6,
    0.9,
    2.0,
    4.0,
    6.0,
    9.0,
    20.0,
]


# ---------------------------------------------------------------------------
# Library adapters. Every call into either library goes through one of these
# two classes, so an API rename is fixed here and nowhere else.
# ---------------------------------------------------------------------------


class DynMetricsSide:
    """dyn_metrics calls used by the benchmark (see spec/api.md)."""

    name = "dyn_metrics"
    module_name = "dyn_metrics"

    def __init__(self, dm):
        self.dm = dm

    def version(self):
        return getattr(self.dm, "__version__", "(tree)")

    # metrics, standalone (no registry needed for the hot path)
    def counter(self, name):
        return self.dm.Counter(name, "bench counter")

    def gauge(self, name):
        return self.dm.Gauge(name, "bench gauge")

    def histogram(self, name):
        return self.dm.Histogram(name, "bench histogram")  # default buckets

    def countervec(self, name):
        return self.dm.CounterVec(name, "bench counter vec", LABELS)

    def histogramvec(self, name):
        return self.dm.HistogramVec(name, "bench histogram vec", LABELS)

    @staticmethod
    def child_getter(vec):
        """Bound positional label lookup: getter(a, b) -> child."""
        return vec.with_label_values

    @staticmethod
    def counter_value(metric):
        return metric.get()

    def bucket_count(self):
        """Number of buckets of a default histogram, +Inf included."""
        default = getattr(self.dm, "DEFAULT_BUCKETS", None)
        if default is None:
            h = self.histogram("bench_bucket_probe")
            default = getattr(getattr(h, "desc", None), "buckets", None)
        if default is None:
            return None
        b = list(default)
        return len(b) if b and math.isinf(b[-1]) else len(b) + 1

    # registry and scrapes
    def registry_for(self, metric):
        reg = self.dm.Registry()
        reg.register(metric)
        return reg

    def scrape_registry(self, name):
        """A registry holding one 2-label counter vec: (registry, vec)."""
        vec = self.countervec(name)
        reg = self.dm.Registry()
        reg.register(vec)
        return reg, vec

    @staticmethod
    def text_scraper(reg):
        return reg.prometheus_expfmt

    @staticmethod
    def openmetrics_scraper(reg):
        from dyn_metrics.exposition import openmetrics as omfmt

        encode = omfmt.encode_to_string
        collect = reg.collect
        return lambda: encode(collect())

    # HTTP: returns (host, port, path, stop)
    def start_server(self, n_series):
        dm = self.dm
        os.environ.pop("DYN_SYSTEM_PORT", None)
        drt = dm.DistributedRuntime()
        cv = drt.metrics().create_countervec("bench_http_total", "bench", LABELS)
        fill_vec(self.child_getter(cv), n_series, "inc")
        srv = dm.start_http_server(drt, port=0, host="127.0.0.1")

        def stop():
            srv.stop()
            shutdown = getattr(drt, "shutdown", None)
            if shutdown is not None:
                shutdown()

        return "127.0.0.1", srv.port, "/metrics", stop


class PrometheusClientSide:
    """prometheus_client calls used by the benchmark."""

    name = "prometheus_client"
    module_name = "prometheus_client"

    def __init__(self, pc):
        self.pc = pc
        # Same series per child on both sides: no `_created` samples.
        disable = getattr(pc, "disable_created_metrics", None)
        if disable is not None:
            disable()

    def version(self):
        try:
            from importlib.metadata import version

            return version("prometheus_client")
        except Exception:  # pragma: no cover - metadata missing
            return "?"

    def counter(self, name):
        return self.pc.Counter(name, "bench counter", registry=None)

    def gauge(self, name):
        return self.pc.Gauge(name, "bench gauge", registry=None)

    def histogram(self, name):
        return self.pc.Histogram(name, "bench histogram", registry=None)

    def countervec(self, name, registry=None):
        return self.pc.Counter(name, "bench counter vec", LABELS, registry=registry)

    def histogramvec(self, name):
        return self.pc.Histogram(name, "bench histogram vec", LABELS, registry=None)

    @staticmethod
    def child_getter(vec):
        return vec.labels

    @staticmethod
    def counter_value(metric):
        return metric._value.get()

    def bucket_count(self):
        return len(self.pc.Histogram.DEFAULT_BUCKETS)

    def registry_for(self, metric):
        reg = self.pc.CollectorRegistry()
        reg.register(metric)
        return reg

    def scrape_registry(self, name):
        reg = self.pc.CollectorRegistry()
        return reg, self.countervec(name, registry=reg)

    def text_scraper(self, reg):
        gen = self.pc.generate_latest
        return lambda: gen(reg)

    def openmetrics_scraper(self, reg):
        from prometheus_client.openmetrics.exposition import generate_latest as gen

        return lambda: gen(reg)

    def start_server(self, n_series):
        pc = self.pc
        reg = pc.CollectorRegistry()
        cv = self.countervec("bench_http_total", registry=reg)
        fill_vec(self.child_getter(cv), n_series, "inc")
        res = pc.start_http_server(0, addr="127.0.0.1", registry=reg)
        if isinstance(res, tuple):  # 0.20+: (server, thread)
            httpd = res[0]

            def stop():
                httpd.shutdown()
                httpd.server_close()

            return "127.0.0.1", httpd.server_port, "/metrics", stop
        # Older releases return nothing: bind a free port ourselves.
        port = free_port()
        pc.start_http_server(port, addr="127.0.0.1", registry=reg)
        return "127.0.0.1", port, "/metrics", lambda: None


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def label_pair(i):
    return "a%d" % (i // 100), "b%d" % (i % 100)


def fill_vec(getter, n, op):
    """Create n children (2 labels) and touch each once."""
    for i in range(n):
        a, b = label_pair(i)
        child = getter(a, b)
        if op == "inc":
            child.inc()
        else:
            child.observe(OBSERVE_VALUES[i % len(OBSERVE_VALUES)])


class Timed:
    """Disable the collector for the timed region; restore it afterwards."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


def stats(samples):
    if not samples:
        return None
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


# ---------------------------------------------------------------------------
# Timing loops (identical shapes for both sides)
# ---------------------------------------------------------------------------


def loop_call0(f, n):
    it = _repeat(None, n)
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            f()
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def loop_call1(f, arg, n):
    it = _repeat(arg, n)
    with Timed():
        t0 = perf_counter_ns()
        for v in it:
            f(v)
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def loop_call_list(f, values):
    with Timed():
        t0 = perf_counter_ns()
        for v in values:
            f(v)
        t1 = perf_counter_ns()
    return (t1 - t0) / len(values)


def loop_lookup_inc(get, a, b, n):
    it = _repeat(None, n)
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            get(a, b).inc()
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def floor_empty(n):
    it = _repeat(None, n)
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            pass
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def floor_incr(n):
    it = _repeat(None, n)
    x = 0
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            x += 1
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def floor_lock(n):
    it = _repeat(None, n)
    lock = threading.Lock()
    x = 0
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            with lock:
                x += 1
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def _noop():
    pass


def floor_call(n):
    return loop_call0(_noop, n)


FLOORS = [
    ("empty loop (`for _ in repeat(None, n): pass`)", floor_empty),
    ("`x += 1`", floor_incr),
    ("`with lock: x += 1` (threading.Lock)", floor_lock),
    ("empty Python call `f()`", floor_call),
]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


class Row:
    """One table line: a measurement for both sides plus its target."""

    def __init__(self, key, title, unit, target=None, kind="ratio", fmt=None, group=""):
        self.key = key
        self.title = title
        self.unit = unit
        self.target = target  # number or None (report only)
        self.kind = kind  # "ratio": dm/pc <= target; "abs": dm <= target; "zero": dm == 0
        self.fmt = fmt  # value -> str
        self.group = group
        self.samples = {"dyn_metrics": [], "prometheus_client": []}
        self.errors = {}
        self.extra = {}  # side -> str shown after the value
        self.note = ""

    def add(self, side, value):
        self.samples[side].append(value)

    def error(self, side, exc):
        self.errors.setdefault(side, "%s: %s" % (type(exc).__name__, exc))

    def median(self, side):
        s = self.samples[side]
        return statistics.median(s) if s else None

    def ratio(self):
        d, p = self.median("dyn_metrics"), self.median("prometheus_client")
        if d is None or p is None or self.kind == "zero" or p == 0:
            return None
        return d / p

    def result(self):
        if self.errors.get("dyn_metrics") or (
            self.target is not None
            and self.kind == "ratio"
            and self.errors.get("prometheus_client")
        ):
            return "ERROR"
        if self.target is None:
            return "report" if not self.errors else "ERROR"
        if self.kind == "ratio":
            r = self.ratio()
            if r is None:
                return "ERROR"
            return "PASS" if r <= self.target else "FAIL"
        d = self.median("dyn_metrics")
        if d is None:
            return "ERROR"
        if self.kind == "abs":
            return "PASS" if d <= self.target else "FAIL"
        if self.kind == "zero":
            return "PASS" if max(self.samples["dyn_metrics"]) == 0 else "FAIL"
        return "?"

    def target_text(self):
        if self.target is None:
            return "-"
        if self.kind == "ratio":
            return "<= %.2f" % self.target
        if self.kind == "abs":
            return "<= %s %s" % (self.fmt[0] % self.target, self.fmt[1])
        return "== 0"

    def cell(self, side):
        if side in self.errors:
            return "ERROR"
        s = self.samples[side]
        if not s:
            return "-"
        num, unit = self.fmt or ("%.1f", "")
        med, lo, hi = statistics.median(s), min(s), max(s)
        text = num % med
        if self.kind == "zero":
            if len(s) > 1:
                text += " (max %s)" % (num % hi)
        else:
            if len(s) > 1:
                text += " [%s..%s]" % (num % lo, num % hi)
            if unit:
                text += " " + unit
        if side in self.extra:
            text += " " + self.extra[side]
        return text

    def to_json(self):
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "group": self.group,
            "target": self.target,
            "target_kind": self.kind,
            "ratio": self.ratio(),
            "result": self.result(),
            "note": self.note,
            "errors": self.errors,
            "extra": self.extra,
            "samples": self.samples,
            "stats": {k: stats(v) for k, v in self.samples.items()},
        }


# value formats: (number format, unit)
fmt_ns = ("%.1f", "ns")
fmt_ms = ("%.2f", "ms")
fmt_us = ("%.3f", "us")
fmt_bytes = ("%.0f", "B")
fmt_count = ("%d", "")


# ---------------------------------------------------------------------------
# Benchmark phases
# ---------------------------------------------------------------------------


class Bench:
    def __init__(self, args, sides, log):
        self.args = args
        self.sides = sides  # [DynMetricsSide, PrometheusClientSide]
        self.log = log
        self.rows = []
        self.floor_rows = []
        self.info = {}
        self._uid = itertools.count()

    def uniq(self, base):
        """A fresh metric name; a ``_total`` suffix stays last."""
        n = next(self._uid)
        if base.endswith("_total"):
            return "%s%d_total" % (base[: -len("total")], n)
        return "%s_%d" % (base, n)

    def row(self, *a, **kw):
        r = Row(*a, **kw)
        self.rows.append(r)
        return r

    def order(self, rep):
        """A, B on even repeats and B, A on odd ones."""
        return self.sides if rep % 2 == 0 else self.sides[::-1]

    def guarded(self, row, side, fn):
        if side.name in row.errors:
            return None
        try:
            return fn()
        except Exception as exc:  # a broken case must not stop the run
            row.error(side.name, exc)
            return None

    # -- single-thread hot paths ------------------------------------------
    def phase_hot(self):
        n = self.args.loops
        reps = self.args.repeat
        self.log("hot paths: %d repeats x %d calls" % (reps, n))

        nb = {}
        for side in self.sides:
            try:
                nb[side.name] = side.bucket_count()
            except Exception:
                nb[side.name] = None
        self.info["default_histogram_buckets"] = nb

        values = list(itertools.islice(itertools.cycle(OBSERVE_VALUES), n))

        cases = []

        def counter_inc(side):
            f = side.counter(self.uniq("bench_c_total")).inc
            return lambda: loop_call0(f, n)

        def counter_inc_by(side):
            c = side.counter(self.uniq("bench_c_total"))
            f = c.inc_by if side.name == "dyn_metrics" else c.inc
            return lambda: loop_call1(f, 2.5, n)

        def gauge_set(side):
            f = side.gauge(self.uniq("bench_g")).set
            return lambda: loop_call1(f, 1.0, n)

        def hist_observe(side):
            f = side.histogram(self.uniq("bench_h")).observe
            return lambda: loop_call_list(f, values)

        def vec_lookup_inc(side):
            vec = side.countervec(self.uniq("bench_v_total"))
            get = side.child_getter(vec)
            get("x", "y").inc()  # the child exists: measure the lookup path
            return lambda: loop_lookup_inc(get, "x", "y", n)

        def child_inc(side):
            vec = side.countervec(self.uniq("bench_v_total"))
            f = side.child_getter(vec)("x", "y").inc
            return lambda: loop_call0(f, n)

        def hist_child_observe(side):
            vec = side.histogramvec(self.uniq("bench_hv"))
            f = side.child_getter(vec)("x", "y").observe
            return lambda: loop_call_list(f, values)

        bk = nb.get("dyn_metrics"), nb.get("prometheus_client")
        hist_title = "Histogram.observe, default buckets (%s vs %s)" % (
            bk[0] if bk[0] else "?",
            bk[1] if bk[1] else "?",
        )
        cases.append(
            (
                self.row("counter_inc", "Counter.inc()", "ns/op", 0.5, fmt=fmt_ns, group="hot"),
                counter_inc,
            )
        )
        cases.append(
            (
                self.row(
                    "counter_inc_by",
                    "Counter.inc_by(2.5) / inc(2.5)",
                    "ns/op",
                    fmt=fmt_ns,
                    group="hot",
                ),
                counter_inc_by,
            )
        )
        cases.append(
            (self.row("gauge_set", "Gauge.set(1.0)", "ns/op", fmt=fmt_ns, group="hot"), gauge_set)
        )
        cases.append(
            (
                self.row("histogram_observe", hist_title, "ns/op", 0.4, fmt=fmt_ns, group="hot"),
                hist_observe,
            )
        )
        cases.append(
            (
                self.row(
                    "vec_lookup_inc",
                    "vec with_label_values(a,b).inc() / labels(a,b).inc()",
                    "ns/op",
                    0.25,
                    fmt=fmt_ns,
                    group="hot",
                ),
                vec_lookup_inc,
            )
        )
        cases.append(
            (
                self.row(
                    "child_inc", "pre-bound vec child .inc()", "ns/op", fmt=fmt_ns, group="hot"
                ),
                child_inc,
            )
        )
        cases.append(
            (
                self.row(
                    "hist_child_observe",
                    "pre-bound histogram vec child .observe()",
                    "ns/op",
                    fmt=fmt_ns,
                    group="hot",
                ),
                hist_child_observe,
            )
        )

        floors = [
            (Row("floor_" + fn.__name__, title, "ns/op", fmt=fmt_ns), fn) for title, fn in FLOORS
        ]
        self.floor_rows = [r for r, _ in floors]

        runners = []
        for row, make in cases:
            per_side = {}
            for side in self.sides:
                per_side[side.name] = self.guarded(row, side, lambda: make(side))
            runners.append((row, per_side))

        # warm-up: one short pass of everything, not recorded
        for row, per_side in runners:
            for side in self.sides:
                run = per_side.get(side.name)
                if run is not None:
                    self.guarded(row, side, run)

        for rep in range(reps):
            for frow, fn in floors:
                frow.add("dyn_metrics", fn(n))
            for row, per_side in runners:
                for side in self.order(rep):
                    run = per_side.get(side.name)
                    if run is None:
                        continue
                    v = self.guarded(row, side, run)
                    if v is not None:
                        row.add(side.name, v)
            gc.collect()

    # -- contention --------------------------------------------------------
    def _threads(self, inc, n, nthreads):
        barrier = threading.Barrier(nthreads + 1)

        def work():
            f = inc
            it = _repeat(None, n)
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

    def phase_threads(self):
        nthreads = 4
        n = self.args.thread_ops
        reps = self.args.thread_repeat
        self.log("contention: %d threads x %d ops, %d repeats" % (nthreads, n, reps))
        configs = [
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
            trow = self.row(key, title, "ns/op", fmt=fmt_ns, group="threads")
            lrow = self.row(
                key + "_lost",
                "  lost updates (expected - final)",
                "count",
                0,
                kind="zero",
                fmt=fmt_count,
                group="threads",
            )
            children = {}
            for side in self.sides:

                def make(side=side):
                    vec = side.countervec(self.uniq("bench_t_total"))
                    return side.child_getter(vec)("x", "y")

                children[side.name] = self.guarded(trow, side, make)
            rates = {s.name: [] for s in self.sides}
            old = sys.getswitchinterval()
            try:
                if interval is not None:
                    sys.setswitchinterval(interval)
                for rep in range(creps):
                    for side in self.order(rep):
                        child = children.get(side.name)
                        if child is None:
                            continue

                        def run(side=side, child=child):
                            before = side.counter_value(child)
                            ns = self._threads(child.inc, cn, nthreads)
                            after = side.counter_value(child)
                            return ns, before + nthreads * cn - after

                        res = self.guarded(trow, side, run)
                        if res is None:
                            continue
                        ns, lost = res
                        trow.add(side.name, ns / (nthreads * cn))
                        rates[side.name].append(nthreads * cn / (ns / 1e9))
                        lrow.add(side.name, lost)
            finally:
                sys.setswitchinterval(old)
            for side, r in rates.items():
                if r:
                    trow.extra[side] = "(%.2f Mops/s)" % (statistics.median(r) / 1e6)
            trow.note = "%d threads x %d ops per repeat" % (nthreads, cn)
            gc.collect()

    # -- memory ------------------------------------------------------------
    def _mem_per_child(self, side, kind, n, scraped=False):
        """tracemalloc bytes per child over n children, each touched once.

        With ``scraped`` the vec is registered and scraped once (text 0.0.4)
        inside the measured window, so caches a scrape keeps are charged too.
        """
        if kind == "histogram":
            vec = side.histogramvec(self.uniq("bench_mh"))
        else:
            # prometheus_client builds a per-child string for names ending in
            # `_total` (~55 B more per child); "counter" avoids that suffix so
            # the target compares against its cheaper case.
            vec = side.countervec(
                self.uniq("bench_mc_total" if kind == "counter_total" else "bench_mc")
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

    def phase_memory(self):
        n = self.args.mem_children
        reps = self.args.mem_repeat
        self.log("memory: %d children per vec, %d repeats" % (n, reps))
        rows = [
            (
                self.row(
                    "bytes_counter_child",
                    "bytes per counter vec child (2 labels)",
                    "bytes",
                    0.4,
                    fmt=fmt_bytes,
                    group="memory",
                ),
                "counter",
                False,
            ),
            (
                self.row(
                    "bytes_counter_total_child",
                    "  same, family name ending `_total`",
                    "bytes",
                    fmt=fmt_bytes,
                    group="memory",
                ),
                "counter_total",
                False,
            ),
            (
                self.row(
                    "bytes_counter_child_scraped",
                    "  same, after one text scrape",
                    "bytes",
                    fmt=fmt_bytes,
                    group="memory",
                ),
                "counter",
                True,
            ),
            (
                self.row(
                    "bytes_histogram_child",
                    "bytes per histogram vec child (2 labels, default buckets)",
                    "bytes",
                    0.3,
                    fmt=fmt_bytes,
                    group="memory",
                ),
                "histogram",
                False,
            ),
            (
                self.row(
                    "bytes_histogram_child_scraped",
                    "  same, after one text scrape",
                    "bytes",
                    fmt=fmt_bytes,
                    group="memory",
                ),
                "histogram",
                True,
            ),
        ]
        for rep in range(reps):
            for row, kind, scraped in rows:
                for side in self.order(rep):
                    v = self.guarded(row, side, lambda: self._mem_per_child(side, kind, n, scraped))
                    if v is not None:
                        row.add(side.name, v)
                    gc.collect()

    # -- scrape ------------------------------------------------------------
    def phase_scrape(self):
        sizes = self.args.sizes
        self.log("scrape: sizes %s" % ", ".join(str(s) for s in sizes))
        for size in sizes:
            label = "%dk" % (size // 1000) if size % 1000 == 0 else str(size)
            reps = self.args.repeat if size <= 10_000 else self.args.big_repeat
            # enough scrapes per sample to stay well above timer resolution
            inner = max(1, 20_000 // size)
            big = size >= 100_000
            t_row = self.row(
                "text_%s" % label,
                "text 0.0.4 scrape, %s series" % label,
                "ms/scrape",
                0.2 if big else None,
                fmt=fmt_ms,
                group="scrape",
            )
            ps_row = self.row(
                "text_%s_per_series" % label,
                "  per series",
                "us/series",
                1.0,
                kind="abs",
                fmt=fmt_us,
                group="scrape",
            )
            om_row = self.row(
                "om_%s" % label,
                "OpenMetrics scrape, %s series" % label,
                "ms/scrape",
                fmt=fmt_ms,
                group="scrape",
            )
            om_ps = {}

            scrapers = {}
            for side in self.sides:

                def build(side=side):
                    reg, vec = side.scrape_registry(self.uniq("bench_s_total"))
                    fill_vec(side.child_getter(vec), size, "inc")
                    return reg

                reg = self.guarded(t_row, side, build)
                if reg is None:
                    om_row.error(side.name, RuntimeError("registry build failed"))
                    ps_row.error(side.name, RuntimeError("registry build failed"))
                    continue
                text = self.guarded(t_row, side, lambda: side.text_scraper(reg))
                om = self.guarded(om_row, side, lambda: side.openmetrics_scraper(reg))
                scrapers[side.name] = (reg, text, om)
                # sanity: both bodies carry one line per series
                for fam, fn, row in (("text", text, t_row), ("openmetrics", om, om_row)):
                    if fn is None:
                        continue
                    body = self.guarded(row, side, fn)
                    if body is None:
                        continue
                    if isinstance(body, bytes):
                        body = body.decode("utf-8")
                    lines = [ln for ln in body.split("\n") if ln and ln[0] != "#"]
                    self.info.setdefault("scrape_bodies", {}).setdefault(
                        "%s_%s" % (fam, label), {}
                    )[side.name] = {
                        "bytes": len(body.encode("utf-8")),
                        "sample_lines": len(lines),
                    }
                    if len(lines) != size:
                        row.note = "%s: %d sample lines for %d series" % (
                            side.name,
                            len(lines),
                            size,
                        )

            def timed(fn):
                with Timed():
                    t0 = perf_counter_ns()
                    for _ in range(inner):
                        fn()
                    t1 = perf_counter_ns()
                return (t1 - t0) / inner

            for rep in range(reps):
                for row, idx in ((t_row, 1), (om_row, 2)):
                    for side in self.order(rep):
                        entry = scrapers.get(side.name)
                        if entry is None or entry[idx] is None:
                            continue
                        ns = self.guarded(row, side, lambda: timed(entry[idx]))
                        if ns is None:
                            continue
                        row.add(side.name, ns / 1e6)
                        if idx == 1:
                            ps_row.add(side.name, ns / 1e3 / size)
                        else:
                            om_ps.setdefault(side.name, []).append(ns / 1e3 / size)
                    gc.collect()
            for side, v in om_ps.items():
                om_row.extra[side] = "(%.3f us/series)" % statistics.median(v)
            for side in self.sides:
                if side.name in t_row.errors:
                    ps_row.errors.setdefault(side.name, t_row.errors[side.name])
            scrapers.clear()
            gc.collect()

    # -- import time -------------------------------------------------------
    def phase_import(self):
        reps = self.args.import_repeat
        self.log("import time: %d fresh interpreters per side" % reps)
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        prologue = "import sys; sys.path.insert(0, %r)" % ROOT
        cmds = {"pass": [sys.executable, "-c", prologue]}
        for side in self.sides:
            cmds[side.name] = [sys.executable, "-c", prologue + "; import " + side.module_name]
        row = self.row(
            "import_time",
            "import in a fresh interpreter (minus `pass`)",
            "ms",
            0.5,
            fmt=fmt_ms,
            group="import",
        )
        it_row = self.row(
            "import_time_x", "  -X importtime cumulative", "ms", fmt=fmt_ms, group="import"
        )
        row.note = "prometheus_client's import registers its default collectors"

        def wall(cmd):
            t0 = perf_counter_ns()
            p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            t1 = perf_counter_ns()
            if p.returncode != 0:
                raise RuntimeError(p.stderr.decode(errors="replace").strip()[-300:])
            return (t1 - t0) / 1e6

        def importtime(side):
            cmd = cmds[side.name]
            p = subprocess.run(
                [cmd[0], "-X", "importtime"] + cmd[1:],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if p.returncode != 0:
                raise RuntimeError(p.stderr.decode(errors="replace").strip()[-300:])
            for line in p.stderr.decode().splitlines():
                parts = [x.strip() for x in line.split("|")]
                if len(parts) == 3 and parts[2] == side.module_name:
                    return int(parts[1]) / 1000.0
            raise RuntimeError("no importtime line for " + side.module_name)

        # byte-compile and warm the page cache first
        for side in self.sides:
            self.guarded(row, side, lambda: wall(cmds[side.name]))
        # Paired: each sample is (import run) - (`pass` run) of the same repeat.
        base = []
        for rep in range(reps):
            order = self.order(rep)
            b0 = wall(cmds["pass"])
            runs = {}
            for side in order:
                v = self.guarded(row, side, lambda: wall(cmds[side.name]))
                if v is not None:
                    runs[side.name] = v
            b1 = wall(cmds["pass"])
            b = (b0 + b1) / 2
            base.append(b)
            for name, v in runs.items():
                row.add(name, v - b)
            for side in order:
                v = self.guarded(it_row, side, lambda: importtime(side))
                if v is not None:
                    it_row.add(side.name, v)
        self.info["interpreter_start_ms"] = statistics.median(base)

    # -- HTTP --------------------------------------------------------------
    def phase_http(self):
        n_series = self.args.http_series
        conc = 8
        cfg = {
            "latency_requests": self.args.http_requests,
            "concurrency": conc,
            "per_thread": self.args.http_per_thread,
            "rounds": self.args.http_rounds,
            "targets": [],
        }
        self.log(
            "http: %d series; client process: %d sequential requests, "
            "%d clients x %d requests x %d rounds"
            % (n_series, cfg["latency_requests"], conc, cfg["per_thread"], cfg["rounds"])
        )
        lat_row = self.row(
            "http_latency",
            "HTTP /metrics, %dk series: latency" % (n_series // 1000),
            "ms",
            0.3,
            fmt=fmt_ms,
            group="http",
        )
        thr_row = self.row(
            "http_throughput",
            "  %d clients: ms per request (aggregate)" % conc,
            "ms",
            fmt=fmt_ms,
            group="http",
        )
        lat_row.note = (
            "client in a separate interpreter; each GET on a new "
            "connection, Connection: close, no gzip"
        )
        servers = {}
        try:
            for side in self.sides:
                s = self.guarded(lat_row, side, lambda: side.start_server(n_series))
                if s is None:
                    thr_row.error(side.name, RuntimeError("server did not start"))
                    continue
                servers[side.name] = s
                host, port, path, _ = s
                cfg["targets"].append(
                    {
                        "name": side.name,
                        "host": host,
                        "port": port,
                        "path": path,
                        "series": "bench_http_total",
                    }
                )
            if not cfg["targets"]:
                return
            gc.collect()
            helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bench_http.py")
            p = subprocess.run(
                [sys.executable, helper],
                input=json.dumps(cfg).encode(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            if p.returncode != 0:
                err = RuntimeError(
                    "HTTP client failed: " + p.stderr.decode(errors="replace").strip()[-300:]
                )
                for name in servers:
                    lat_row.error(name, err)
                    thr_row.error(name, err)
                return
            res = json.loads(p.stdout)
            bodies = {}
            for name, r in res.items():
                if r["error"]:
                    lat_row.error(name, RuntimeError(r["error"]))
                    thr_row.error(name, RuntimeError(r["error"]))
                for v in r["latency_ms"]:
                    lat_row.add(name, v)
                for v in r["burst_ms_per_request"]:
                    thr_row.add(name, v)
                if r["burst_ms_per_request"]:
                    thr_row.extra[name] = "(%.1f req/s)" % (
                        1000.0 / statistics.median(r["burst_ms_per_request"])
                    )
                bodies[name] = r["body"]
                if r["body"] and r["body"]["sample_lines"] != n_series:
                    lat_row.note += "; %s: %d sample lines for %d series" % (
                        name,
                        r["body"]["sample_lines"],
                        n_series,
                    )
            self.info["http_bodies"] = bodies
        finally:
            for side in self.sides:
                s = servers.get(side.name)
                if s is not None:
                    self.guarded(lat_row, side, s[3])


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def render_table(rows, floors):
    head = ["case", "dyn_metrics", "prometheus_client", "ratio", "target", "result"]
    body = []
    for r in rows:
        ratio = r.ratio()
        body.append(
            [
                r.title,
                r.cell("dyn_metrics"),
                r.cell("prometheus_client"),
                "%.3f" % ratio if ratio is not None else "-",
                r.target_text(),
                r.result(),
            ]
        )
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = []

    def fmt_line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if i in (0, 5) else c.rjust(widths[i]))
        return " | ".join(out).rstrip()

    lines.append(fmt_line(head))
    lines.append("-+-".join("-" * w for w in widths))
    group = None
    for r, cells in zip(rows, body):
        if group is not None and r.group != group:
            lines.append("")
        group = r.group
        lines.append(fmt_line(cells))
    lines.append("")
    if floors:
        lines.append("Floors measured in the same run (median [min..max]):")
        fw = max(len(f.title) for f in floors)
        for f in floors:
            lines.append("  %s  %s" % (f.title.ljust(fw), f.cell("dyn_metrics")))
    notes = [(r.title.strip(), r.note) for r in rows if r.note]
    errs = [(r.title.strip(), side, e) for r in rows for side, e in r.errors.items()]
    if notes:
        lines.append("")
        lines.append("Notes:")
        for t, n in notes:
            lines.append("  %s: %s" % (t, n))
    if errs:
        lines.append("")
        lines.append("Errors:")
        for t, side, e in errs:
            lines.append("  %s [%s]: %s" % (t, side, e))
    return "\n".join(lines)


def loadavg():
    try:
        return "%.2f" % os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def noise_warning(floors, info):
    """A warning when the machine was busy: the floors moved during the run."""
    spreads = []
    for f in floors:
        s = f.samples["dyn_metrics"]
        if len(s) > 1 and min(s) > 0:
            spreads.append((statistics.median(s) / min(s), f.title))
    if not spreads:
        return ""
    worst, title = max(spreads)
    if worst < 1.25:
        return ""
    return (
        "WARNING: the machine was busy during this run (median of floor %s was "
        "%.1fx its minimum; load average %s -> %s). Absolute times are inflated "
        "and the absolute targets may fail for that reason; the interleaved "
        "ratios are less affected. Re-run on an idle machine."
        % (title, worst, info.get("loadavg_start") or "?", info.get("loadavg_end") or "?")
    )


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

PHASES = ("import", "hot", "threads", "memory", "scrape", "http")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark dyn_metrics against prometheus_client side by side."
    )
    p.add_argument(
        "--quick", action="store_true", help="fewer repeats, shorter loops, no 100k-series scrape"
    )
    p.add_argument(
        "--repeat", type=int, default=None, help="repeats per case (default 9, --quick 3)"
    )
    p.add_argument("--json", metavar="FILE", help="write every number to FILE")
    p.add_argument(
        "--check", action="store_true", help="exit 1 if any target fails or a case raises"
    )
    p.add_argument(
        "--only", metavar="PHASES", help="comma-separated subset of: " + ",".join(PHASES)
    )
    p.add_argument(
        "--loops",
        type=int,
        default=None,
        help="calls per hot-path sample (default 200000, --quick 100000)",
    )
    args = p.parse_args(argv)
    q = args.quick
    if args.repeat is None:
        args.repeat = 3 if q else 9
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.loops is None:
        args.loops = 100_000 if q else 200_000
    args.thread_ops = 50_000 if q else 200_000
    args.thread_repeat = min(args.repeat, 5)
    args.mem_children = 5000
    args.mem_repeat = 1 if q else 3
    args.sizes = [1000, 10_000] if q else [1000, 10_000, 100_000]
    args.big_repeat = max(1, min(args.repeat, 3 if q else 5))
    args.import_repeat = 5 if q else max(9, args.repeat)
    args.http_series = 10_000
    args.http_requests = 7 if q else 21
    args.http_per_thread = 2 if q else 4
    args.http_rounds = 1 if q else 3
    if args.only:
        chosen = [x.strip() for x in args.only.split(",") if x.strip()]
        bad = [x for x in chosen if x not in PHASES]
        if bad:
            p.error("unknown phase(s): %s" % ", ".join(bad))
        args.phases = [x for x in PHASES if x in chosen]
    else:
        args.phases = list(PHASES)
    return args


def load_libraries():
    try:
        import prometheus_client
    except ImportError:
        sys.stderr.write(
            "bench.py needs prometheus_client to compare against.\n"
            "Install it with:  pip install -e '.[bench]'   (from the repository root)\n"
        )
        sys.exit(2)
    try:
        import dyn_metrics
    except Exception as exc:
        sys.stderr.write(
            "dyn_metrics failed to import from %s: %s: %s\n" % (ROOT, type(exc).__name__, exc)
        )
        sys.exit(2)
    return dyn_metrics, prometheus_client


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    dm, pc = load_libraries()
    sides = [DynMetricsSide(dm), PrometheusClientSide(pc)]

    def log(msg):
        sys.stderr.write("[bench] %s\n" % msg)
        sys.stderr.flush()

    bench = Bench(args, sides, log)
    bench.info.update(
        {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "dyn_metrics": sides[0].version(),
            "prometheus_client": sides[1].version(),
            "args": {k: v for k, v in vars(args).items()},
        }
    )
    bench.info["loadavg_start"] = loadavg()
    t_start = time.monotonic()
    for phase in args.phases:
        getattr(bench, "phase_" + phase)()
    elapsed = time.monotonic() - t_start
    bench.info["loadavg_end"] = loadavg()

    info = bench.info
    print(
        "dyn_metrics %s vs prometheus_client %s | Python %s (%s) | %s | %s CPUs"
        % (
            info["dyn_metrics"],
            info["prometheus_client"],
            info["python"],
            info["implementation"],
            info["platform"],
            info["cpus"],
        )
    )
    print(
        "repeats %d, %d calls per hot-path sample, interleaved; ratio = "
        "dyn_metrics / prometheus_client (lower is better); %.0f s total; "
        "load average %s at start, %s at end"
        % (
            args.repeat,
            args.loops,
            elapsed,
            info["loadavg_start"] or "?",
            info["loadavg_end"] or "?",
        )
    )
    print()
    print(render_table(bench.rows, bench.floor_rows))

    warning = noise_warning(bench.floor_rows, info)
    if warning:
        print()
        print(warning)

    failed = [r for r in bench.rows if r.result() in ("FAIL", "ERROR")]
    print()
    targets = [r for r in bench.rows if r.target is not None]
    print(
        "%d of %d targets pass%s"
        % (
            sum(1 for r in targets if r.result() == "PASS"),
            len(targets),
            "" if not failed else "; failing: " + ", ".join(r.key for r in failed),
        )
    )

    if args.json:
        doc = {
            "info": info,
            "elapsed_s": elapsed,
            "floors": [f.to_json() for f in bench.floor_rows],
            "cases": [r.to_json() for r in bench.rows],
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2, default=str)
            fh.write("\n")
    if args.check and failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
