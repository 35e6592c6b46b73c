"""The system status server wired to a runtime: the glue with a stub, then the public API.

The first half drives ``start_http_server`` / ``start_from_config`` with a stub
runtime (``render_exposition(fmt, names)`` and ``health``). The second half goes
through ``dm.DistributedRuntime``, which reads the ``DYN_SYSTEM_*`` variables
when it is constructed.
"""

import errno
import http.client
import json
import logging
import socket

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.dynamo.health import SystemHealth
from dyn_metrics.dynamo.system_server import start_from_config, start_http_server

TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
TIMEOUT = 2.0
UPTIME = "dynamo_component_uptime_seconds"
DYN_VARS = (
    "DYN_SYSTEM_PORT",
    "DYN_SYSTEM_HOST",
    "DYN_SYSTEM_HEALTH_PATH",
    "DYN_SYSTEM_LIVE_PATH",
    "DYN_SYSTEM_STARTING_HEALTH_STATUS",
    "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS",
    "DYN_SYSTEM_ENABLED",
    "DYN_SYSTEM_OPENMETRICS",
    "DYN_HEALTH_CHECK_ENABLED",
)


def get(server, path="/metrics", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def occupied_port():
    """A port with a listening socket on it, so binding there fails."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


class StubRuntime:
    def __init__(self, health=None):
        self.health = health or SystemHealth()
        self.formats = []
        self.names = []

    def render_exposition(self, fmt, names=None):
        self.formats.append(fmt)
        self.names.append(names)
        return f"# HELP {UPTIME} Total uptime\n# TYPE {UPTIME} gauge\n{UPTIME} 1.5\n"


# -- dyn_metrics.dynamo.system_server with a stub runtime --------------------------------


def test_start_http_server_serves_the_runtime():
    drt = StubRuntime()
    with start_http_server(drt, port=0, host="127.0.0.1") as server:
        assert server.running
        status, headers, body = get(server)
        assert (status, headers["content-type"]) == (200, TEXT_CT)
        assert UPTIME in body.decode()
        assert drt.formats == ["text"]
        assert drt.names == [None]
        status, headers, body = get(server, "/health")
        assert status == 503
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["status"] == "notready"
        drt.health.set_status(True)
        assert get(server, "/live")[0] == 200


def test_start_http_server_passes_options():
    drt = StubRuntime()
    with start_http_server(
        drt,
        0,
        "127.0.0.1",
        openmetrics=True,
        health_path="/hc",
        live_path="/lc",
        basic_auth=("u", "p"),
    ) as server:
        assert get(server, "/hc")[0] == 401
    with start_http_server(drt, 0, "127.0.0.1", openmetrics=True, health_path="/hc") as server:
        status, headers, _ = get(server, headers={"Accept": "application/openmetrics-text"})
        assert status == 200
        assert drt.formats[-1] == "openmetrics"
        assert get(server, "/hc")[0] == 503
        assert get(server, "/health")[0] == 404


def test_start_http_server_passes_the_name_selection():
    drt = StubRuntime()
    with start_http_server(drt, port=0, host="127.0.0.1") as server:
        assert get(server, f"/metrics?name[]={UPTIME}&name[]=x")[0] == 200
        assert get(server, "/metrics?other=1")[0] == 200
    assert drt.names == [frozenset({UPTIME, "x"}), None]


def test_start_http_server_bind_failure_names_the_address(occupied_port):
    with pytest.raises(OSError) as info:
        start_http_server(StubRuntime(), port=occupied_port, host="127.0.0.1")
    assert info.value.errno == errno.EADDRINUSE
    assert f"cannot bind 127.0.0.1:{occupied_port}: " in str(info.value)


def test_start_from_config_disabled_returns_none():
    assert start_from_config(StubRuntime(), SystemConfig()) is None


def test_start_from_config_starts_with_config_settings():
    config = SystemConfig(port=0, host="127.0.0.1", health_path="/custom/health")
    server = start_from_config(StubRuntime(SystemHealth(starting_status="ready")), config)
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        assert get(server, "/custom/health")[0] == 200
        assert get(server, "/health")[0] == 404
    finally:
        server.stop()


def test_start_from_config_bind_failure_logs_and_returns_none(occupied_port, caplog):
    config = SystemConfig(port=occupied_port, host="127.0.0.1")
    with caplog.at_level(logging.DEBUG, logger="dyn_metrics"):
        assert start_from_config(StubRuntime(), config) is None
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert (
        errors[0].getMessage().startswith(f"Failed to bind to address 127.0.0.1:{occupied_port}: ")
    )


# -- through the public runtime ------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch):
    for name in DYN_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DYN_SYSTEM_HOST", "127.0.0.1")
    return monkeypatch


@pytest.fixture
def runtimes():
    made = []

    def make(**kwargs):
        drt = dm.DistributedRuntime(**kwargs)
        made.append(drt)
        return drt

    yield make
    for drt in made:
        drt.shutdown()


def test_runtime_env_port_starts_the_server(env, runtimes):
    env.setenv("DYN_SYSTEM_PORT", "0")
    drt = runtimes()
    server = drt.system_server
    assert server is not None
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/metrics"
    status, headers, body = get(server)
    assert (status, headers["content-type"]) == (200, TEXT_CT)
    assert UPTIME in body.decode()
    status, headers, body = get(server, "/health")
    assert status == 503
    assert json.loads(body)["status"] == "notready"
    assert set(json.loads(body)) == {"endpoints", "status", "uptime"}


def test_runtime_without_port_has_no_server(env, runtimes):
    assert runtimes().system_server is None
    env.setenv("DYN_SYSTEM_PORT", "-1")
    assert runtimes().system_server is None


def test_runtime_bad_port_logs_one_error_and_runs_without_server(env, runtimes, caplog):
    env.setenv("DYN_SYSTEM_PORT", "abc")
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        drt = runtimes()
    assert drt.system_server is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "DYN_SYSTEM_PORT='abc'" in errors[0].getMessage()


def test_runtime_bind_failure_logs_and_runs_without_server(env, runtimes, caplog, occupied_port):
    env.setenv("DYN_SYSTEM_PORT", str(occupied_port))
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        drt = runtimes()
    assert drt.system_server is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"Failed to bind to address 127.0.0.1:{occupied_port}" in errors[0].getMessage()


def test_runtime_health_settings_from_env(env, runtimes):
    env.setenv("DYN_SYSTEM_PORT", "0")
    env.setenv("DYN_SYSTEM_STARTING_HEALTH_STATUS", "ready")
    env.setenv("DYN_SYSTEM_HEALTH_PATH", "/custom/health")
    env.setenv("DYN_SYSTEM_LIVE_PATH", "/custom/live")
    server = runtimes().system_server
    for path in ("/custom/health", "/custom/live"):
        status, _, body = get(server, path)
        assert status == 200
        assert b'"status":"ready"' in body
    for path in ("/health", "/live"):
        assert get(server, path)[::2] == (404, b"Route not found")


def test_runtime_health_is_system_health(env, runtimes):
    env.setenv("DYN_SYSTEM_PORT", "0")
    drt = runtimes()
    assert isinstance(drt.health, SystemHealth)
    assert get(drt.system_server, "/health")[0] == 503
    drt.health.register_health_check_target("generate")
    drt.health.endpoint_registered("generate")
    status, _, body = get(drt.system_server, "/health")
    assert status == 200
    assert json.loads(body)["endpoints"] == {"generate": "ready"}


def test_runtime_shutdown_stops_the_server(env):
    env.setenv("DYN_SYSTEM_PORT", "0")
    drt = dm.DistributedRuntime()
    server = drt.system_server
    assert get(server)[0] == 200
    drt.shutdown()
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        get(server)


def test_runtime_system_server_stop(env, runtimes):
    env.setenv("DYN_SYSTEM_PORT", "0")
    server = runtimes().system_server
    server.stop()
    assert not server.thread.is_alive()


def test_dm_start_http_server_explicit(env, runtimes):
    drt = runtimes()
    assert drt.system_server is None
    with dm.start_http_server(drt, port=0, host="127.0.0.1") as server:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        status, headers, body = get(server)
        assert (status, headers["content-type"]) == (200, TEXT_CT)
        assert UPTIME in body.decode()
    assert not server.thread.is_alive()


# -- name[] end to end: the runtime selects families before encoding ------------------------------

REQ = "dynamo_component_req_total"
LAT = "dynamo_component_lat_seconds"
NAME_QUERIES = [
    # (query, the families served)
    (f"name[]={UPTIME}", {UPTIME}),
    (f"name[]={REQ}", {REQ}),
    (f"name[]={LAT}_bucket", {LAT}),  # a sample name selects its family
    (f"name%5B%5D={REQ}&name[]={LAT}", {REQ, LAT}),  # what Prometheus' params send
    ("name[]=nope", set()),
    ("name[]=", set()),
    ("other=1", {UPTIME, REQ, LAT}),
]


def _families(body):
    """The families of an exposition by their text names (a counter with its _total)."""
    found = set()
    for line in body.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            found.add(
                name + "_total" if kind == "counter" and not name.endswith("_total") else name
            )
    return found


@pytest.mark.parametrize("query, served", NAME_QUERIES)
@pytest.mark.parametrize("openmetrics", [False, True])
def test_runtime_name_filter_end_to_end(env, runtimes, query, served, openmetrics):
    drt = runtimes()
    m = drt.namespace("ns").metrics()
    m.create_counter("req_total", "Requests").inc()
    m.create_histogram("lat_seconds", "Latency", buckets=[0.1]).observe(0.05)
    headers = {"Accept": "application/openmetrics-text"} if openmetrics else {}
    with dm.start_http_server(drt, port=0, host="127.0.0.1", openmetrics=openmetrics) as server:
        status, got, body = get(server, f"/metrics?{query}", headers)
    assert status == 200
    assert got["content-type"].startswith(
        "application/openmetrics-text" if openmetrics else "text/plain"
    )
    assert _families(body) == served
    assert body.decode().endswith("# EOF\n") is openmetrics
