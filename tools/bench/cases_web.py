"""Web apps: one ``/metrics`` request at 10k series to each library's ASGI and WSGI app.

Measured in process, calling the apps directly, so no server's noise dominates:
ASGI through a minimal driver (a scope, a ``receive`` coroutine giving one
empty ``http.request``, a ``send`` coroutine keeping the body) on one event
loop made for the phase; WSGI with a plain environ and a ``start_response``.
dyn_metrics' ASGI app hands the request to its waiter thread and render
thread, prometheus_client's renders on the loop: each side is timed as a
user would run it. No gzip (no ``Accept-Encoding``), text 0.0.4 on both.
"""

import asyncio
import functools
import gc
import importlib
from collections.abc import Iterable
from time import perf_counter_ns
from typing import Any, Callable

from .harness import Bench, Row, Timed, fmt_ms
from .sides import DynMetricsSide, Side, fill_vec

SERIES = 10_000
INNER = 5  # requests per sample

App = Callable[..., Any]


def _apps(bench: Bench, side: Side) -> tuple[App, App]:
    """``(asgi_app, wsgi_app)`` of one side, serving a fresh 10k-series counter vec."""
    reg, vec = side.scrape_registry(bench.uniq("bench_web_total"))
    fill_vec(side.child_getter(vec), SERIES, "inc")
    if isinstance(side, DynMetricsSide):
        mod = side.dm
        if not hasattr(mod, "make_asgi_app"):  # not exported yet: the glue module
            mod = importlib.import_module(f"{mod.__name__}.dynamo.web_apps")
        return mod.make_asgi_app(reg), mod.make_wsgi_app(reg)
    return side.pc.make_asgi_app(reg), side.pc.make_wsgi_app(reg)


_SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/metrics",
    "raw_path": b"/metrics",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def _asgi_request(app: App) -> bytes:
    """One GET request to ``app``; its body."""
    parts: list[bytes] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        else:
            parts.append(message.get("body", b""))

    await app(dict(_SCOPE), receive, send)
    if status != [200]:
        raise RuntimeError(f"ASGI app answered {status!r}")
    return b"".join(parts)


async def _asgi_requests(app: App, n: int) -> bytes:
    """``n`` GET requests to ``app``, one after the other; the last body."""
    body = b""
    for _ in range(n):
        body = await _asgi_request(app)
    return body


def _wsgi_request(app: App) -> bytes:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_ACCEPT": "*/*",
        "wsgi.url_scheme": "http",
    }
    status: list[str] = []
    result: Iterable[bytes] = app(environ, lambda s, h, e=None: status.append(s))
    body = b"".join(result)
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"WSGI app answered {status!r}")
    return body


def _wsgi_requests(app: App, n: int) -> bytes:
    body = b""
    for _ in range(n):
        body = _wsgi_request(app)
    return body


def _over_asgi(loop: asyncio.AbstractEventLoop, app: App, n: int) -> bytes:
    return loop.run_until_complete(_asgi_requests(app, n))


def _timed(fn: Callable[[], bytes], n: int) -> float:
    """Mean ms of one request over ``n`` back to back."""
    with Timed():
        t0 = perf_counter_ns()
        fn()
        t1 = perf_counter_ns()
    return (t1 - t0) / n / 1e6


def _check_body(row: Row, side: Side, body: bytes) -> None:
    lines = [ln for ln in body.split(b"\n") if ln and not ln.startswith(b"#")]
    if len(lines) != SERIES:
        row.note += f"; {side.name}: {len(lines)} sample lines for {SERIES} series"


def run(bench: Bench) -> None:
    bench.log(f"web: ASGI and WSGI apps called in process, {SERIES // 1000}k series")
    label = f"{SERIES // 1000}k"
    asgi_row = bench.row(
        "asgi_10k", f"ASGI app /metrics, {label} series", "ms", 0.2, fmt=fmt_ms, group="web"
    )
    wsgi_row = bench.row(
        "wsgi_10k", f"WSGI app /metrics, {label} series", "ms", 0.2, fmt=fmt_ms, group="web"
    )
    asgi_row.note = "in process: a minimal ASGI driver on one event loop, no gzip"
    wsgi_row.note = "in process: the app called with a plain environ, no gzip"
    loop = asyncio.new_event_loop()
    apps: dict[str, tuple[App, App]] = {}
    try:
        for side in bench.sides:
            pair = bench.guarded(asgi_row, side, functools.partial(_apps, bench, side))
            if pair is None:
                wsgi_row.error(side.name, RuntimeError("apps not built"))
                continue
            apps[side.name] = pair
        drivers: dict[str, tuple[Callable[[int], bytes], Callable[[int], bytes]]] = {}
        for side in bench.sides:
            if side.name not in apps:
                continue
            asgi, wsgi = apps[side.name]

            over_asgi = functools.partial(_over_asgi, loop, asgi)
            over_wsgi = functools.partial(_wsgi_requests, wsgi)
            drivers[side.name] = (over_asgi, over_wsgi)
            for row, first in ((asgi_row, over_asgi), (wsgi_row, over_wsgi)):
                body = bench.guarded(row, side, functools.partial(first, 1))
                if body is not None:
                    _check_body(row, side, body)
        for rep in range(bench.args.repeat):
            for row, idx in ((asgi_row, 0), (wsgi_row, 1)):
                for side in bench.order(rep):
                    if side.name not in drivers:
                        continue
                    drive = drivers[side.name][idx]
                    ms = bench.guarded(
                        row, side, functools.partial(_timed, functools.partial(drive, INNER), INNER)
                    )
                    if ms is not None:
                        row.add(side.name, ms)
                gc.collect()
    finally:
        loop.close()
        apps.clear()
        gc.collect()
