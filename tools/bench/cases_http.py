"""HTTP: GET /metrics of a 10k-series counter vec, served by each library.

Both servers run in this process; the load client (``http_client.py``) runs in
a fresh interpreter so its threads do not compete with the servers for one GIL.
It gets its plan as JSON on stdin and answers with JSON on stdout.
"""

import functools
import gc
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from .harness import Bench, Row, fmt_ms
from .sides import Server

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
