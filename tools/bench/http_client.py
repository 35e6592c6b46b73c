#!/usr/bin/env python3
"""HTTP load client for the benchmark (cases_http.py), run in its own interpreter.

The servers under test live in the benchmark process; the client runs here so
that its threads do not compete with the servers for the same GIL. It imports
the standard library only and runs as a script: ``python http_client.py``.

Input: one JSON document on stdin::

    {"targets": [{"name": "...", "host": "127.0.0.1", "port": 8080, "path": "/metrics",
                  "series": "text every sample line of the benchmark family contains"}, ...],
     "latency_requests": 21, "concurrency": 8, "per_thread": 4, "rounds": 3}

Output: one JSON document on stdout with, per target name, the sequential
latencies (ms), the aggregate ms per request of each concurrent round, the
body size and the benchmark family's sample-line count of the warm-up
response, and the first error.

With ``--serve`` it runs one GET per request instead, for a caller that
changes the server's conditions between requests (cases_http's contended
scrape): each stdin line is ``{"host": ..., "port": ..., "path": ..., "series":
...}``, each answer one stdout line ``{"ms": ..., "bytes": ..., "sample_lines":
..., "error": ...}`` (``error`` None, or the first line of what failed), until
stdin closes.

Every request is the same for all targets: ``GET path`` on a new connection,
``Connection: close``, ``Accept-Encoding: identity`` (http.client's default),
body read to the end.
"""

import functools
import http.client
import json
import sys
import threading
from time import perf_counter_ns
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")
Target = dict[str, Any]  # one entry of the input's "targets"


def fetch(host: str, port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from {host}:{port}{path}")
        return body
    finally:
        conn.close()


def burst(target: Target, concurrency: int, per_thread: int) -> float:
    """Aggregate ms per request of concurrency threads x per_thread GETs, started together."""
    host, port, path = target["host"], target["port"], target["path"]
    errors: list[Exception] = []
    barrier = threading.Barrier(concurrency + 1)

    def client() -> None:
        barrier.wait()
        try:
            for _ in range(per_thread):
                fetch(host, port, path)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = perf_counter_ns()
    for t in threads:
        t.join()
    t1 = perf_counter_ns()
    if errors:
        raise errors[0]
    return (t1 - t0) / 1e6 / (concurrency * per_thread)


def count_samples(body: bytes, series: str) -> int:
    """Sample lines of ``body`` that contain ``series``."""
    needle = series.encode()
    return sum(1 for ln in body.split(b"\n") if ln and ln[:1] != b"#" and needle in ln)


def serve() -> None:
    """One timed GET per stdin line, one JSON answer per stdout line (see the docstring)."""
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        answer: dict[str, Any] = {"ms": None, "bytes": 0, "sample_lines": 0, "error": None}
        try:
            t0 = perf_counter_ns()
            body = fetch(req["host"], req["port"], req["path"])
            answer["ms"] = (perf_counter_ns() - t0) / 1e6
            answer["bytes"] = len(body)
            answer["sample_lines"] = count_samples(body, req.get("series", ""))
        except Exception as exc:
            answer["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        return serve()
    cfg = json.load(sys.stdin)
    targets: list[Target] = cfg["targets"]
    out: dict[str, dict[str, Any]] = {
        t["name"]: {"latency_ms": [], "burst_ms_per_request": [], "body": None, "error": None}
        for t in targets
    }

    def guarded(t: Target, fn: Callable[[], T]) -> Optional[T]:
        res = out[t["name"]]
        if res["error"] is not None:
            return None
        try:
            return fn()
        except Exception as exc:
            res["error"] = f"{type(exc).__name__}: {exc}"
            return None

    def ordered(rep: int) -> list[Target]:
        return targets if rep % 2 == 0 else targets[::-1]

    # warm-up and a sanity look at the body
    for t in targets:
        body = guarded(t, functools.partial(fetch, t["host"], t["port"], t["path"]))
        if body is not None:
            lines = count_samples(body, t.get("series", ""))
            out[t["name"]]["body"] = {"bytes": len(body), "sample_lines": lines}

    for rep in range(cfg["latency_requests"]):
        for t in ordered(rep):

            def one(t: Target = t) -> float:
                t0 = perf_counter_ns()
                fetch(t["host"], t["port"], t["path"])
                return (perf_counter_ns() - t0) / 1e6

            v = guarded(t, one)
            if v is not None:
                out[t["name"]]["latency_ms"].append(v)

    for rep in range(cfg["rounds"]):
        for t in ordered(rep):
            v = guarded(t, functools.partial(burst, t, cfg["concurrency"], cfg["per_thread"]))
            if v is not None:
                out[t["name"]]["burst_ms_per_request"].append(v)

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return None


if __name__ == "__main__":
    main()
