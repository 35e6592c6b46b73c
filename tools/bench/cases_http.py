"""HTTP: GET /metrics of a counter vec served by each library, idle and under contention.

Both servers run in this process; the load client (``http_client.py``) runs in
a fresh interpreter so its threads do not compete with the servers for one GIL.
It gets its plan as JSON on stdin and answers with JSON on stdout.

Two cases:

* latency and throughput of a 10k-series vec (:func:`run_latency`);
* a scrape of 100k series while 4 threads of this process call ``inc()`` on
  children of the served vec in a tight loop, against the same server's idle
  scrape (:func:`run_contended`); left out with ``--quick``, like the 100k
  scrape of the scrape phase (at 10k the few thread handoffs of a request,
  each a GIL wait under load, outweigh the render the target is about).
  Each repeat times one idle and one contended GET, in alternating order; the
  client runs with ``--serve`` so the load can be started before each
  contended GET and stopped after it. The target row's two columns are both
  dyn_metrics (contended / idle); prometheus_client's own ratio is reported
  beside it.
"""

import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
from itertools import repeat
from typing import IO, Any, Callable, Optional

from .harness import Bench, Row, fmt_ms
from .sides import DynMetricsSide, Metric, Server, Side, fill_vec, label_pair

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http_client.py")
CONCURRENCY = 8


def _record(lat_row: Row, thr_row: Row, res: dict[str, Any], n_series: int) -> dict[str, Any]:
    """Move the client's numbers into the rows; return the body summaries by side."""
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
            rate = 1000.0 / statistics.median(r["burst_ms_per_request"])
            thr_row.extra[name] = f"({rate:.1f} req/s)"
        bodies[name] = r["body"]
        if r["body"] and r["body"]["sample_lines"] != n_series:
            lines = r["body"]["sample_lines"]
            lat_row.note += f"; {name}: {lines} sample lines for {n_series} series"
    return bodies


def run(bench: Bench) -> None:
    run_latency(bench)
    run_contended(bench)


def run_latency(bench: Bench) -> None:
    n_series = bench.args.http_series
    conc = CONCURRENCY
    cfg: dict[str, Any] = {
        "latency_requests": bench.args.http_requests,
        "concurrency": conc,
        "per_thread": bench.args.http_per_thread,
        "rounds": bench.args.http_rounds,
        "targets": [],
    }
    bench.log(
        f"http: {n_series} series; client process: {cfg['latency_requests']} sequential "
        f"requests, {conc} clients x {cfg['per_thread']} requests x {cfg['rounds']} rounds"
    )
    lat_row = bench.row(
        "http_latency",
        f"HTTP /metrics, {n_series // 1000}k series: latency",
        "ms",
        0.3,
        fmt=fmt_ms,
        group="http",
    )
    thr_row = bench.row(
        "http_throughput",
        f"  {conc} clients: ms per request (aggregate)",
        "ms",
        fmt=fmt_ms,
        group="http",
    )
    lat_row.note = (
        "client in a separate interpreter; each GET on a new connection, Connection: close, no gzip"
    )
    servers: dict[str, Server] = {}
    try:
        for side in bench.sides:
            s = bench.guarded(lat_row, side, functools.partial(side.start_server, n_series))
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
        p = subprocess.run(
            [sys.executable, CLIENT], input=json.dumps(cfg).encode(), capture_output=True
        )
        if p.returncode != 0:
            err = RuntimeError(
                "HTTP client failed: " + p.stderr.decode(errors="replace").strip()[-300:]
            )
            for name in servers:
                lat_row.error(name, err)
                thr_row.error(name, err)
            return
        bench.info["http_bodies"] = _record(lat_row, thr_row, json.loads(p.stdout), n_series)
    finally:
        for side in bench.sides:
            srv = servers.get(side.name)
            if srv is not None:
                bench.guarded(lat_row, side, srv[3])


# -- scrapes under contention -----------------------------------------------------------------

LOAD_THREADS = 4
CONTENDED_SERIES = 100_000
CONTENDED_FAMILY = "bench_http_contended_total"


class IncLoad:
    """LOAD_THREADS threads calling ``inc()`` on their own child in a tight loop while entered.

    ``__enter__`` returns once every thread has started; ``__exit__`` stops and
    joins them, also when the body raised.
    """

    def __init__(self, incs: list[Callable[[], None]]) -> None:
        self._incs = incs
        self._stop = False
        self._threads: list[threading.Thread] = []

    def _spin(self, inc: Callable[[], None], started: threading.Barrier) -> None:
        started.wait()
        while not self._stop:
            for _ in repeat(None, 1000):
                inc()

    def __enter__(self) -> "IncLoad":
        self._stop = False
        started = threading.Barrier(len(self._incs) + 1)
        self._threads = [
            threading.Thread(target=self._spin, args=(inc, started), name=f"bench-inc-{i}")
            for i, inc in enumerate(self._incs)
        ]
        try:
            for t in self._threads:
                t.start()
            started.wait(10)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        started_threads = [t for t in self._threads if t.ident is not None]
        for t in started_threads:
            t.join()
        self._threads = []


def _loaded_server(side: Side, n_series: int) -> tuple[Server, list[Callable[[], None]]]:
    """The library's own start_http_server on a filled 2-label vec, and LOAD_THREADS incs."""
    vec: Metric
    if isinstance(side, DynMetricsSide):
        dm = side.dm
        drt = dm.DistributedRuntime()
        vec = drt.metrics().create_countervec(CONTENDED_FAMILY, "bench", ["a", "b"])
        fill_vec(side.child_getter(vec), n_series, "inc")
        srv = dm.start_http_server(drt, port=0, host="127.0.0.1")

        def stop() -> None:
            srv.stop()
            drt.shutdown()

        server: Server = ("127.0.0.1", srv.port, "/metrics", stop)
    else:
        pc = side.pc
        reg = pc.CollectorRegistry()
        vec = side.countervec(CONTENDED_FAMILY, registry=reg)
        fill_vec(side.child_getter(vec), n_series, "inc")
        httpd, _thread = pc.start_http_server(0, addr="127.0.0.1", registry=reg)

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()

        server = ("127.0.0.1", httpd.server_port, "/metrics", stop)
    getter = side.child_getter(vec)
    # Spread over the vec: children far apart in the exposition order.
    step = n_series // LOAD_THREADS
    incs = [getter(*label_pair(i * step + 7)).inc for i in range(LOAD_THREADS)]
    return server, incs


class _Client:
    """The load client in ``--serve`` mode: one timed GET per :meth:`get`."""

    def __init__(self) -> None:
        self._p = subprocess.Popen(
            [sys.executable, CLIENT, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def get(self, server: Server, n_series: int) -> float:
        """ms of one GET; raises when it failed or the body lacks a series."""
        stdin: Optional[IO[bytes]] = self._p.stdin
        stdout: Optional[IO[bytes]] = self._p.stdout
        assert stdin is not None and stdout is not None
        host, port, path, _ = server
        req = {"host": host, "port": port, "path": path, "series": CONTENDED_FAMILY}
        stdin.write(json.dumps(req).encode() + b"\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            err = self._p.stderr.read() if self._p.stderr is not None else b""
            raise RuntimeError("HTTP client died: " + err.decode(errors="replace")[-300:])
        answer = json.loads(line)
        if answer["error"]:
            raise RuntimeError(answer["error"])
        if answer["sample_lines"] != n_series:
            raise RuntimeError(f"{answer['sample_lines']} sample lines for {n_series} series")
        ms: float = answer["ms"]
        return ms

    def close(self) -> None:
        if self._p.stdin is not None:
            self._p.stdin.close()
        try:
            self._p.wait(30)
        except subprocess.TimeoutExpired:
            self._p.kill()
            self._p.wait()


def run_contended(bench: Bench) -> None:
    n_series = CONTENDED_SERIES
    if n_series not in bench.args.sizes:
        bench.log(f"http contended: skipped ({n_series // 1000}k series not in this run's sizes)")
        return
    # prometheus_client's contended scrape of 100k series takes seconds: fewer repeats there.
    big = bench.args.big_repeat
    reps = {"dyn_metrics": 2 * big, "prometheus_client": min(big, 3)}
    k = n_series // 1000
    bench.log(
        f"http contended: {k}k series, {LOAD_THREADS} threads incrementing; "
        f"repeats {reps['dyn_metrics']} (dyn_metrics), {reps['prometheus_client']} (peer)"
    )
    ours = bench.row(
        "http_contended",
        f"HTTP /metrics {k}k series, {LOAD_THREADS} threads incrementing / OUR idle scrape",
        "ms",
        3.0,
        fmt=fmt_ms,
        group="http",
    )
    ours.note = "both columns dyn_metrics: left contended, right idle; one GET per repeat each"
    peers = bench.row(
        "http_contended_peer",
        f"  prometheus_client: {LOAD_THREADS} threads incrementing / ITS idle scrape",
        "ms",
        fmt=fmt_ms,
        group="http",
    )
    peers.note = "both columns prometheus_client: left contended, right idle"
    rows = {"dyn_metrics": ours, "prometheus_client": peers}
    client = _Client()
    try:
        for side in bench.sides:
            row = rows[side.name]
            started = bench.guarded(row, side, functools.partial(_loaded_server, side, n_series))
            if started is None:
                continue
            server, incs = started
            try:
                _measure(bench, side, row, client, server, incs, n_series, reps[side.name])
            finally:
                bench.guarded(row, side, server[3])
            gc.collect()
    finally:
        client.close()


def _measure(
    bench: Bench,
    side: Side,
    row: Row,
    client: _Client,
    server: Server,
    incs: list[Callable[[], None]],
    n_series: int,
    reps: int,
) -> None:
    """reps x (one idle GET, one GET under IncLoad), alternating which goes first."""

    def idle() -> None:
        gc.collect()
        row.add("prometheus_client", client.get(server, n_series))

    def contended() -> None:
        gc.collect()
        with IncLoad(incs):
            row.add("dyn_metrics", client.get(server, n_series))

    if bench.guarded(row, side, functools.partial(client.get, server, n_series)) is None:
        return  # the warm-up failed: the error is on the row
    for rep in range(reps):
        for step in (idle, contended) if rep % 2 == 0 else (contended, idle):
            if bench.guarded(row, side, step) is None and side.name in row.errors:
                return
