"""MetricsAsgiApp under a real ASGI server (uvicorn), answer for answer against MetricsServer.

The rows are test_wsgi.py's. Besides HTTP: lifespan through uvicorn and
driven directly, websocket and unknown scopes, and a render blocked in a
callback while the event loop goes on serving (asserted with events).
"""

import asyncio
import contextlib
import logging
import socket
import threading

import pytest
import uvicorn

from dyn_metrics.errors import InvalidValueError
from dyn_metrics.server.app import MetricsServer
from dyn_metrics.server.asgi import MetricsAsgiApp
from tests.realtools import poll
from tests.server.helpers import Health, Render
from tests.server.test_wsgi import (
    REQUESTS,
    ROW_IDS,
    TIMEOUT,
    _raising,
    answer,
    check_answer,
    same_answers,
)


@contextlib.contextmanager
def asgi_server(app, lifespan="on"):
    """uvicorn serving ``app`` on 127.0.0.1 (a port-0 socket) from a thread; yields the address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan=lifespan, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True
    )
    thread.start()
    try:
        poll("uvicorn started", lambda: server.started or not thread.is_alive())
        assert thread.is_alive(), "uvicorn exited at start-up"
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module", params=[False, True], ids=["openmetrics off", "openmetrics on"])
def pair(request):
    render = Render()
    server = MetricsServer(render, Health(), host="127.0.0.1", port=0, openmetrics=request.param)
    server.start()
    try:
        with asgi_server(MetricsAsgiApp(render, openmetrics=request.param)) as address:
            yield address, server, request.param
    finally:
        server.stop()


@pytest.mark.parametrize("row", REQUESTS, ids=ROW_IDS)
def test_answers_as_the_server(pair, row):
    address, server, openmetrics = pair
    _, method, target, headers, _ = row
    check_answer(row, openmetrics, *same_answers(address, server, method, target, headers))


def test_any_path_is_the_metrics_answer(pair):
    address, server, _ = pair
    theirs = answer(server.host, server.port, "GET", "/metrics")
    for path in ("/", "/elsewhere", "/favicon.ico"):
        assert answer(*address, "GET", path) == theirs


class Recorder:
    """Wraps an ASGI app; records the messages it sends for lifespan scopes."""

    def __init__(self, app):
        self.app = app
        self.lifespan = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def recording(message):
            self.lifespan.append(message["type"])
            await send(message)

        return await self.app(scope, receive, recording)


def test_lifespan_through_uvicorn():
    recorder = Recorder(MetricsAsgiApp(Render()))
    with asgi_server(recorder, lifespan="on") as address:
        assert answer(*address, "GET", "/metrics")[0] == 200
        assert recorder.lifespan == ["lifespan.startup.complete"]
    assert recorder.lifespan == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def _dispatcher(metrics_app):
    """A tiny pure-ASGI router: ``/metrics`` to the app, ``/ping`` answered on the loop."""

    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/metrics":
            return await metrics_app(scope, receive, send)
        status, body = (200, b"pong") if scope["path"] == "/ping" else (404, b"nope")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def test_mounted_in_a_dispatcher(serve):
    render = Render()
    server = serve(render)
    with asgi_server(_dispatcher(MetricsAsgiApp(render))) as address:
        for _, method, target, headers, _ in REQUESTS:
            same_answers(address, server, method, target, headers)
        assert answer(*address, "GET", "/other")[::2] == (404, b"nope")


def test_render_that_raises_is_500_and_logged_once(serve, caplog):
    server = serve(_raising)
    with asgi_server(MetricsAsgiApp(_raising)) as address:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
            status, got, body = answer(*address, "GET", "/metrics")
        assert (status, body) == (500, b"Failed to get metrics")
        records = [r for r in caplog.records if r.getMessage() == "Failed to get metrics"]
        assert len(records) == 1 and records[0].exc_info[1].args == ("callback broke",)
        assert answer(server.host, server.port, "GET", "/metrics") == (status, got, body)


class Blocking(Render):
    """A render that blocks until ``release`` is set, telling ``entered`` when it starts."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads = []

    def __call__(self, fmt, names):
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        if not self.release.wait(TIMEOUT):
            raise RuntimeError("never released")
        return super().__call__(fmt, names)


def test_blocked_render_does_not_stall_uvicorn():
    render = Blocking()
    with asgi_server(_dispatcher(MetricsAsgiApp(render))) as address:
        results = []
        scrape = threading.Thread(
            target=lambda: results.append(answer(*address, "GET", "/metrics")), daemon=True
        )
        scrape.start()
        try:
            assert render.entered.wait(TIMEOUT)
            # The render is stuck in its callback; the same loop still answers.
            assert answer(*address, "GET", "/ping")[::2] == (200, b"pong")
            assert scrape.is_alive() and not results
        finally:
            render.release.set()
            scrape.join(TIMEOUT)
        assert results[0][0] == 200 and results[0][2] == Render().text.encode()
    assert render.threads == ["dyn-metrics-asgi-render"]


# -- driven directly, without a server ------------------------------------------------


async def _drive(app, scope, incoming=()):
    """Run ``app`` on ``scope`` with ``incoming`` messages; return the messages it sent."""
    queue = list(incoming)
    sent = []

    async def receive():
        if queue:
            return queue.pop(0)
        await asyncio.Event().wait()  # nothing more: a disconnect never comes

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _http(method="GET", query=b"", headers=()):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "method": method,
        "path": "/metrics",
        "query_string": query,
        "headers": list(headers),
    }


def test_blocked_render_leaves_the_loop_running():
    render = Blocking()
    app = MetricsAsgiApp(render)

    async def main():
        scrape = asyncio.ensure_future(_drive(app, _http()))
        turns = 0
        while not render.entered.is_set():  # this coroutine keeps running meanwhile
            turns += 1
            await asyncio.sleep(0)
        others = await asyncio.gather(*(asyncio.sleep(0, i) for i in range(3)))
        assert not scrape.done() and others == [0, 1, 2]
        render.release.set()
        return turns, await scrape

    try:
        turns, sent = asyncio.run(main())
    finally:
        render.release.set()
    assert turns >= 1 and sent[0]["status"] == 200 and sent[1]["body"] == Render().text.encode()


def test_direct_http_head_and_repeated_headers():
    app = MetricsAsgiApp(Render(), openmetrics=True)
    get = asyncio.run(_drive(app, _http()))
    head = asyncio.run(_drive(app, _http("HEAD")))
    assert head[0] == get[0] and head[1]["body"] == b""
    assert dict(get[0]["headers"])[b"content-length"] == str(len(get[1]["body"])).encode()
    # repeated Accept fields are one list, as http.server joins them
    split = [(b"accept", b"text/plain;q=0.1"), (b"Accept", b"application/openmetrics-text")]
    sent = asyncio.run(_drive(app, _http(headers=split)))
    assert dict(sent[0]["headers"])[b"content-type"].startswith(b"application/openmetrics-text")
    sent = asyncio.run(_drive(app, _http("PATCH")))
    assert (sent[0]["status"], dict(sent[0]["headers"])[b"allow"]) == (405, b"GET, HEAD")


def test_direct_lifespan():
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = asyncio.run(_drive(MetricsAsgiApp(Render()), {"type": "lifespan"}, incoming))
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_websocket_is_refused():
    scope = {"type": "websocket", "path": "/metrics", "headers": []}
    sent = asyncio.run(_drive(MetricsAsgiApp(Render()), scope, [{"type": "websocket.connect"}]))
    assert sent == [{"type": "websocket.close", "code": 1000}]


def test_unknown_scope_raises():
    with pytest.raises(InvalidValueError, match="'webtransport'"):
        asyncio.run(_drive(MetricsAsgiApp(Render()), {"type": "webtransport"}))


def test_bad_arguments():
    with pytest.raises(InvalidValueError, match="openmetrics"):
        MetricsAsgiApp(Render(), openmetrics="yes")
    with pytest.raises(InvalidValueError, match="None"):
        MetricsAsgiApp(None)
