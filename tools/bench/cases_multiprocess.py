"""Multiprocess mode against prometheus_client's, in one process.

Rows:

* ``Counter.inc()`` in multiprocess mode (a value written into the process's
  memory-mapped file on every call) against prometheus_client's multiprocess
  ``Counter.inc()`` (target <= 0.3x); ``Gauge.set`` and ``Histogram.observe``
  reported;
* aggregation of 16 process files x 1,000 series each (counters, a livesum
  gauge and a histogram), ``MultiProcessCollector.collect()`` on both sides
  (target <= 0.3x).

prometheus_client picks its multiprocess value class when it is imported, so
its side here builds its metrics with ``values.MultiProcessValue`` swapped in
for the duration (the class its import would pick with
``PROMETHEUS_MULTIPROC_DIR`` set), and writes 16 processes' files by giving
that class 16 process identifiers in turn. dyn_metrics' side enables
multiprocess mode on a temporary directory and writes its 16 files with the
file layout's whole-file writer.
"""

import gc
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional

from .harness import Bench, Row, fmt_ms, fmt_ns
from .loops import loop_call0, loop_call1
from .sides import Side

PROCESSES = 16
SERIES = 1000

Runner = Callable[[], float]


@contextmanager
def _pc_multiprocess(pc: Any, path: str, pid: Callable[[], int] = os.getpid) -> Iterator[None]:
    """prometheus_client metrics made inside are multiprocess ones writing to ``path``."""
    values = pc.values
    saved, saved_env = values.ValueClass, os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = values.MultiProcessValue(process_identifier=pid)
    try:
        yield
    finally:
        values.ValueClass = saved
        if saved_env is None:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved_env


@contextmanager
def _dm_multiprocess(dm: Any, path: str) -> Iterator[None]:
    dm.multiprocess.enable(path)
    try:
        yield
    finally:
        dm.multiprocess.disable()


def _hot(bench: Bench, dyn: Side, peer: Side, tmp: str) -> list[tuple[Row, str, Runner]]:
    n = bench.args.loops
    inc = bench.row(
        "mp_counter_inc",
        "multiprocess Counter.inc()",
        "ns/op",
        0.3,
        fmt=fmt_ns,
        group="multiprocess",
    )
    setr = bench.row(
        "mp_gauge_set", "multiprocess Gauge.set(1.0)", "ns/op", fmt=fmt_ns, group="multiprocess"
    )
    obs = bench.row(
        "mp_histogram_observe",
        "multiprocess Histogram.observe(0.3)",
        "ns/op",
        fmt=fmt_ns,
        group="multiprocess",
    )
    dm, pc = dyn.dm, peer.pc  # type: ignore[union-attr]
    ours, theirs = os.path.join(tmp, "dm"), os.path.join(tmp, "pc")
    os.makedirs(ours)
    os.makedirs(theirs)
    with _dm_multiprocess(dm, ours):
        c = dm.Counter(bench.uniq("mp_c_total"), "c")
        g = dm.Gauge(bench.uniq("mp_g"), "g", multiprocess_mode="livesum")
        h = dm.Histogram(bench.uniq("mp_h"), "h")
    with _pc_multiprocess(pc, theirs):
        pc_c = pc.Counter(bench.uniq("mp_c"), "c", registry=None)
        pc_g = pc.Gauge(bench.uniq("mp_g"), "g", registry=None, multiprocess_mode="livesum")
        pc_h = pc.Histogram(bench.uniq("mp_h"), "h", registry=None)
    return [
        (inc, "dyn_metrics", lambda: loop_call0(c.inc, n)),
        (inc, "prometheus_client", lambda: loop_call0(pc_c.inc, n)),
        (setr, "dyn_metrics", lambda: loop_call1(g.set, 1.0, n)),
        (setr, "prometheus_client", lambda: loop_call1(pc_g.set, 1.0, n)),
        (obs, "dyn_metrics", lambda: loop_call1(h.observe, 0.3, n)),
        (obs, "prometheus_client", lambda: loop_call1(pc_h.observe, 0.3, n)),
    ]


def _dm_files(dm: Any, path: str) -> None:
    """16 process files of SERIES series: a counter vec, a livesum gauge vec, a histogram."""
    from dyn_metrics.multiprocess import layout

    bounds = (
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "+Inf",
    )
    for p in range(PROCESSES):
        entries = []
        for i in range(SERIES):
            lab = (("route", f"/r{i}"),)
            entries.append(
                (layout.Key("req_total", "counter", "r", "", "req_total", lab), 3.0, 0.0)
            )
            entries.append(
                (layout.Key("inflight", "gauge", "g", "", "inflight", lab, "livesum"), 1.0, 0.0)
            )
        for i in range(SERIES // 50):
            lab = (("route", f"/r{i}"),)
            for le in bounds:
                key = layout.Key("lat", "histogram", "l", "", "lat_bucket", lab + (("le", le),))
                entries.append((key, 1.0, 0.0))
            entries.append((layout.Key("lat", "histogram", "l", "", "lat_sum", lab), 0.5, 0.0))
        layout.write_file(os.path.join(path, layout.process_file_name(100000 + p)), entries)


def _pc_files(pc: Any, bench: Bench, path: str) -> None:
    """The same series in prometheus_client's files, one process identifier per file set."""
    for p in range(PROCESSES):
        with _pc_multiprocess(pc, path, pid=lambda p=p: 100000 + p):
            c = pc.Counter("req", "r", ["route"], registry=None)
            g = pc.Gauge("inflight", "g", ["route"], registry=None, multiprocess_mode="livesum")
            h = pc.Histogram("lat", "l", ["route"], registry=None)
            for i in range(SERIES):
                c.labels(f"/r{i}").inc(3)
                g.labels(f"/r{i}").set(1)
            for i in range(SERIES // 50):
                h.labels(f"/r{i}").observe(0.3)


def _aggregation(bench: Bench, dyn: Side, peer: Side, tmp: str) -> list[tuple[Row, str, Runner]]:
    row = bench.row(
        "mp_aggregate",
        f"MultiProcessCollector.collect(), {PROCESSES} files x {SERIES} series",
        "ms/collect",
        0.3,
        fmt=fmt_ms,
        group="multiprocess",
    )
    dm, pc = dyn.dm, peer.pc  # type: ignore[union-attr]
    ours, theirs = os.path.join(tmp, "agg_dm"), os.path.join(tmp, "agg_pc")
    os.makedirs(ours)
    os.makedirs(theirs)
    _dm_files(dm, ours)
    _pc_files(pc, bench, theirs)
    from prometheus_client import multiprocess as pc_mp

    ours_c = dm.multiprocess.MultiProcessCollector(ours)
    theirs_c = pc_mp.MultiProcessCollector(None, path=theirs)

    def timed(fn: Callable[[], object]) -> Runner:
        from .cases_scrape import time_scrapes

        return lambda: time_scrapes(fn, 2) / 1e6

    return [
        (row, "dyn_metrics", timed(lambda: list(ours_c.collect()))),
        (row, "prometheus_client", timed(lambda: list(theirs_c.collect()))),
    ]


def run(bench: Bench) -> None:
    dyn = next((s for s in bench.sides if s.name == "dyn_metrics"), None)
    peer = next((s for s in bench.sides if s.name == "prometheus_client"), None)
    if dyn is None or peer is None:
        return
    bench.log(f"multiprocess: hot paths, aggregation of {PROCESSES} x {SERIES}")
    tmp = tempfile.mkdtemp(prefix="dyn-metrics-bench-mp-")
    try:
        runners: list[tuple[Row, str, Optional[Runner]]] = []
        for build in (_hot, _aggregation):
            try:
                runners.extend(build(bench, dyn, peer, tmp))
            except Exception as exc:  # a broken case must not stop the run
                bench.log(f"multiprocess: {build.__name__} failed: {exc!r}")
        for rep in range(bench.args.repeat):
            order = runners if rep % 2 == 0 else list(reversed(runners))
            for row, column, run_one in order:
                if run_one is None:
                    continue
                side = dyn if column == "dyn_metrics" else peer
                v = bench.guarded(row, side, run_one)
                if v is not None:
                    row.add(column, v)
            gc.collect()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
