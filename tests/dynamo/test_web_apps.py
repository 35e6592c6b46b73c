"""make_wsgi_app / make_asgi_app over real sources, against dm.start_http_server of the same source.

Each app runs under its real server (wsgiref, uvicorn); every row of the
shared request table (tests/server/test_wsgi.py) must get the same status,
headers and body bytes from the app as from the built-in server.
"""

import gzip
import logging
import threading

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.web_apps import make_asgi_app, make_wsgi_app
from dyn_metrics.errors import InvalidValueError
from tests.server.test_asgi import asgi_server
from tests.server.test_wsgi import REQUESTS, ROW_IDS, TIMEOUT, answer, same_answers, wsgi_server

KINDS = {"wsgi": (make_wsgi_app, wsgi_server), "asgi": (make_asgi_app, asgi_server)}


def _registry():
    reg = dm.Registry()
    requests = reg.register(dm.Counter("requests_total", "Requests served"))
    latency = reg.register(dm.HistogramVec("latency_seconds", "Latency", ["route"]))
    reg.register(dm.Gauge("temperature_celsius", "Heat", unit="celsius")).set(21.5)
    requests.inc(3)
    latency.with_label_values("/v1").observe(0.2)
    return reg


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def kind(request):
    return request.param


@pytest.fixture(scope="module", params=[False, True], ids=["openmetrics off", "openmetrics on"])
def served(request, kind):
    """``(app address, built-in server)`` serving one registry."""
    make, run = KINDS[kind]
    reg = _registry()
    server = dm.start_http_server(reg, port=0, host="127.0.0.1", openmetrics=request.param)
    try:
        with run(make(reg, openmetrics=request.param)) as address:
            yield address, server
    finally:
        server.stop()


@pytest.mark.parametrize("row", REQUESTS, ids=ROW_IDS)
def test_answers_as_the_built_in_server(served, row):
    _, method, target, headers, (status, _, _) = row
    assert same_answers(*served, method, target, headers)[0] == status


def test_openmetrics_switch_reaches_the_body(kind):
    make, run = KINDS[kind]
    reg = _registry()
    om = {"Accept": "application/openmetrics-text; version=1.0.0"}
    for switch, last_line in [(False, b"temperature_celsius 21.5\n"), (True, b"# EOF\n")]:
        server = dm.start_http_server(reg, port=0, host="127.0.0.1", openmetrics=switch)
        try:
            with run(make(reg, openmetrics=switch)) as address:
                body = same_answers(address, server, "GET", "/metrics", om)[2]
        finally:
            server.stop()
        assert body.endswith(last_line)


def test_none_serves_the_default_registry(kind):
    make, run = KINDS[kind]
    gauge = dm.REGISTRY.register(dm.Gauge("web_apps_test_marker", "Test marker"))
    try:
        gauge.set(7)
        server = dm.start_http_server(port=0, host="127.0.0.1")
        try:
            with run(make()) as address:
                body = same_answers(
                    address, server, "GET", "/metrics?name[]=web_apps_test_marker", {}
                )[2]
        finally:
            server.stop()
    finally:
        dm.REGISTRY.unregister(gauge)
    assert body == (
        b"# HELP web_apps_test_marker Test marker\n"
        b"# TYPE web_apps_test_marker gauge\nweb_apps_test_marker 7\n"
    )


def test_hierarchy_node_source(kind):
    make, run = KINDS[kind]
    drt = dm.DistributedRuntime(worker_id=255)
    endpoint = drt.namespace("dynamo").component("backend").endpoint("generate")
    endpoint.metrics().create_intcounter("requests_total", "Requests").inc()
    server = dm.start_http_server(endpoint, port=0, host="127.0.0.1")
    try:
        with run(make(endpoint)) as address:
            body = same_answers(address, server, "GET", "/metrics", {"Accept-Encoding": "gzip"})[2]
    finally:
        server.stop()
    assert gzip.decompress(body) == endpoint.metrics().prometheus_expfmt().encode()


class RaisingRuntime:
    """A runtime-like source whose render raises."""

    class health:
        @staticmethod
        def snapshot():
            return True, {"status": "ready"}

    def render_exposition(self, fmt, names):
        raise RuntimeError("engine gone")


def test_render_that_raises(kind, caplog):
    make, run = KINDS[kind]
    server = dm.start_http_server(RaisingRuntime(), port=0, host="127.0.0.1")
    try:
        with run(make(RaisingRuntime())) as address:
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
                ours = answer(*address, "GET", "/metrics")
            logged = [r for r in caplog.records if r.getMessage() == "Failed to get metrics"]
            assert answer(server.host, server.port, "GET", "/metrics") == ours
    finally:
        server.stop()
    assert (ours[0], ours[2]) == (500, b"Failed to get metrics")
    assert len(logged) == 1 and str(logged[0].exc_info[1]) == "engine gone"


def test_slow_update_callback_does_not_stall_the_event_loop():
    reg = _registry()
    entered, release = threading.Event(), threading.Event()

    def slow():
        entered.set()
        release.wait(TIMEOUT)

    reg.add_update_callback(slow)
    metrics = make_asgi_app(reg)

    async def app(scope, receive, send):  # /metrics to the app, /ping answered on the loop
        if scope["type"] != "http" or scope["path"] == "/metrics":
            return await metrics(scope, receive, send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"pong"})

    with asgi_server(app) as address:
        results = []
        scrape = threading.Thread(
            target=lambda: results.append(answer(*address, "GET", "/metrics")), daemon=True
        )
        scrape.start()
        try:
            assert entered.wait(TIMEOUT)
            assert answer(*address, "GET", "/ping")[::2] == (200, b"pong")
            assert not results
        finally:
            release.set()
            scrape.join(TIMEOUT)
    assert results[0][0] == 200 and b"requests_total 3\n" in results[0][2]


@pytest.mark.parametrize("make", [make_wsgi_app, make_asgi_app])
def test_bad_arguments(make):
    with pytest.raises(InvalidValueError, match="42"):
        make(42)
    with pytest.raises(InvalidValueError, match="openmetrics"):
        make(None, openmetrics="on")


def test_the_apps_are_public_names_imported_on_first_use():
    import dyn_metrics
    import dyn_metrics.dynamo.web_apps as web_apps

    assert dm.make_wsgi_app is web_apps.make_wsgi_app
    assert dm.make_asgi_app is web_apps.make_asgi_app
    assert {"make_wsgi_app", "make_asgi_app"} <= set(dyn_metrics.__all__)
