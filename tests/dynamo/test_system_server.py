"""The system status server wired to a runtime: the glue with a stub, then the public API.

The first half drives ``start_http_server`` / ``start_from_config`` with a stub
runtime (``render_exposition(fmt, names)`` and ``health``). The second half goes
through ``dm.DistributedRuntime``, which reads the ``DYN_SYSTEM_*`` variables
when it is constructed.
"""

import base64
import errno
import http.client
import json
import logging
import socket
import ssl
import urllib.request

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.dynamo.health import SystemHealth
from dyn_metrics.dynamo.system_server import resolve_source, start_from_config, start_http_server
from dyn_metrics.errors import ConfigError, InvalidValueError
from tests.server.conftest import certs  # noqa: F401  (the session fixture)

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
    "DYN_SYSTEM_TLS_CERT_FILE",
    "DYN_SYSTEM_TLS_KEY_FILE",
    "DYN_SYSTEM_TLS_CLIENT_CA_FILE",
    "DYN_SYSTEM_BASIC_AUTH_FILE",
    "DYN_SYSTEM_AUTH_EXEMPT_PROBES",
    "DYN_SYSTEM_SCRAPE_TIMEOUT",
    "DYN_SYSTEM_SELF_METRICS",
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


# -- every kind of source -------------------------------------------------------------------

ALWAYS_HEALTHY = {"endpoints": {}, "status": "ready"}


def _sources(drt):
    """(label, source, a family name it serves, whether health is the runtime's)."""
    ns = drt.namespace("ns")
    comp = ns.component("comp")
    ep = comp.endpoint("ep")
    ns.metrics().create_counter("ns_total", "In the namespace").inc()
    ep.metrics().create_gauge("ep_value", "In the endpoint").set(2)
    registry = dm.Registry()
    registry.register(dm.Gauge("plain_value", "In a plain registry")).set(3)
    return [
        ("runtime", drt, UPTIME, True),
        ("runtime facade", drt.metrics(), UPTIME, False),
        ("namespace", ns, "dynamo_component_ns_total", True),
        ("namespace facade", ns.metrics(), "dynamo_component_ns_total", False),
        ("component", comp, "dynamo_component_ep_value", True),
        ("endpoint", ep, "dynamo_component_ep_value", True),
        ("endpoint facade", ep.metrics(), "dynamo_component_ep_value", False),
        ("registry", registry, "plain_value", False),
    ]


def test_start_http_server_accepts_every_kind_of_source(env, runtimes):
    drt = runtimes()
    drt.health.set_status(False)
    for label, source, family, runtime_health in _sources(drt):
        with start_http_server(source, port=0, host="127.0.0.1") as server:
            status, headers, body = get(server)
            assert (label, status, headers["content-type"]) == (label, 200, TEXT_CT)
            assert f"# TYPE {family} " in body.decode(), label
            status, _, body = get(server, "/health")
            if runtime_health:
                assert (label, status, json.loads(body)["status"]) == (label, 503, "notready")
            else:
                assert (label, status, json.loads(body)) == (label, 200, ALWAYS_HEALTHY)


def test_source_registry_serves_openmetrics_and_name_selection(env):
    registry = dm.Registry()
    registry.register(dm.Gauge("a_value", "A")).set(1)
    registry.register(dm.Gauge("b_value", "B")).set(2)
    with start_http_server(registry, port=0, host="127.0.0.1", openmetrics=True) as server:
        status, _, body = get(server, headers={"Accept": "application/openmetrics-text"})
        assert status == 200 and body.decode().endswith("# EOF\n")
        _, _, body = get(server, "/metrics?name[]=b_value")
        assert _families(body) == {"b_value"}


BAD_SOURCES = [
    # (source, shown in the message)
    ("registry", "'registry'"),
    (42, "42"),
    (object, "<class 'object'>"),
]


@pytest.mark.parametrize("source, shown", BAD_SOURCES)
def test_start_http_server_rejects_other_sources(source, shown):
    with pytest.raises(InvalidValueError, match="^source: expected a DistributedRuntime") as info:
        start_http_server(source, port=0, host="127.0.0.1")
    assert str(info.value).endswith(f"got {shown}")


def test_source_none_serves_the_default_registry():
    gauge = dm.REGISTRY.register(dm.Gauge("source_none_probe", "Served from dm.REGISTRY"))
    try:
        gauge.set(7)
        render, health = resolve_source(None)
        assert health() == (True, ALWAYS_HEALTHY)
        assert "source_none_probe 7\n" in render("text", None)
        server = start_http_server(None, port=0, host="127.0.0.1")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as r:
                assert b"source_none_probe 7\n" in r.read()
        finally:
            server.stop()
    finally:
        dm.REGISTRY.unregister(gauge)


# -- self metrics ---------------------------------------------------------------------------

SELF = (
    "dyn_metrics_scrape_requests_total",
    "dyn_metrics_scrape_duration_seconds",
    "dyn_metrics_scrape_in_flight",
)


def test_self_metrics_off_by_default_serves_the_source_bytes():
    drt = StubRuntime()
    registry = dm.Registry()
    registry.register(dm.Gauge("a_value", "A")).set(1)
    for source, expected in ((drt, drt.render_exposition("text")), (registry, None)):
        with start_http_server(source, port=0, host="127.0.0.1") as server:
            _, _, body = get(server)
        assert body.decode() == (expected or registry.prometheus_expfmt())
        assert "dyn_metrics_" not in body.decode()


@pytest.mark.parametrize("openmetrics", [False, True])
def test_self_metrics_count_scrapes(env, runtimes, openmetrics):
    drt = runtimes()
    headers = {"Accept": "application/openmetrics-text"} if openmetrics else {}
    with start_http_server(
        drt, port=0, host="127.0.0.1", self_metrics=True, openmetrics=openmetrics
    ) as server:
        get(server)
        get(server, "/live")  # not a scrape
        status, _, body = get(server, headers=headers)
    assert status == 200
    text = body.decode()
    result = dm.check(text)
    assert (result.ok, result.warnings) == (True, [])
    assert _families(body) >= {UPTIME, *SELF}
    # The scrape being answered is in flight; the first one is counted.
    assert 'dyn_metrics_scrape_requests_total{code="200"} 1' in text
    assert "dyn_metrics_scrape_in_flight 1" in text
    assert "dyn_metrics_scrape_duration_seconds_count 1" in text
    assert text.count("# EOF") == (1 if openmetrics else 0)


def test_self_metrics_count_refusals(env):
    class Source:
        health = SystemHealth(starting_status="ready")

        def __init__(self):
            self.fail = True

        def render_exposition(self, fmt, names=None):
            if self.fail:
                raise RuntimeError("boom")
            return ""

    source = Source()
    with start_http_server(source, port=0, host="127.0.0.1", self_metrics=True) as server:
        assert get(server)[0] == 500
        source.fail = False
        _, _, body = get(server)
    assert 'dyn_metrics_scrape_requests_total{code="500"} 1' in body.decode()


def _value(body, series):
    return float(_line(body, series).rsplit(" ", 1)[1])


def _line(body, series):
    return next(x for x in body.decode().splitlines() if x.startswith(series + " "))


def test_self_metrics_count_callback_errors_and_dropped_families(env, runtimes):
    drt = runtimes()
    failing = [False]

    def update():
        if failing[0]:
            raise RuntimeError("boom")

    drt.metrics().register_prometheus_update_callback(update)
    errors = 'dyn_metrics_callback_errors_total{kind="update"}'
    with start_http_server(drt, port=0, host="127.0.0.1", self_metrics=True) as server:
        _, _, before = get(server)
        failing[0] = True
        _, _, after = get(server)
    assert _value(after, errors) - _value(before, errors) == 1
    for kind in ("update", "expfmt", "typed", "function"):
        assert f'dyn_metrics_callback_errors_total{{kind="{kind}"}} ' in after.decode()
    assert _value(after, "dyn_metrics_dropped_families_total") >= 0


def test_self_metrics_count_overflow_children(env, runtimes):
    env.setenv("DYN_METRICS_MAX_CHILDREN", "1")
    drt = runtimes()
    vec = drt.namespace("n").metrics().create_countervec("bounded", "Bounded", ["k"])
    name = "dyn_metrics_overflow_children_total"
    with start_http_server(drt, port=0, host="127.0.0.1", self_metrics=True) as server:
        _, _, before = get(server)
        vec.with_label_values("a").inc()
        vec.with_label_values("b").inc()  # past the limit: the overflow child
        vec.with_label_values("c").inc()  # shares it
        _, _, after = get(server)
    assert _value(after, name) - _value(before, name) == 1


def test_self_metrics_from_env(env, runtimes):
    env.setenv("DYN_SYSTEM_PORT", "0")
    env.setenv("DYN_SYSTEM_SELF_METRICS", "1")
    server = runtimes().system_server
    _, _, body = get(server)
    # No scrape has finished yet: the requests counter has no child to show.
    assert _families(body) >= set(SELF) - {"dyn_metrics_scrape_requests_total"}
    _, _, body = get(server)
    assert _families(body) >= set(SELF)


# -- settings from the environment ----------------------------------------------------------


def _basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_runtime_basic_auth_file_and_probe_exemption(env, runtimes, tmp_path):
    users = tmp_path / "users"
    users.write_text("alice:plain$a-pw\nbob:plain$b-pw\n")
    env.setenv("DYN_SYSTEM_PORT", "0")
    env.setenv("DYN_SYSTEM_STARTING_HEALTH_STATUS", "ready")
    env.setenv("DYN_SYSTEM_BASIC_AUTH_FILE", str(users))
    server = runtimes().system_server
    assert get(server)[0] == 401
    assert get(server, "/live")[0] == 401  # every route needs credentials by default
    assert get(server, headers=_basic("bob", "b-pw"))[0] == 200
    env.setenv("DYN_SYSTEM_AUTH_EXEMPT_PROBES", "1")
    server = runtimes().system_server
    assert get(server, "/live")[0] == 200
    assert get(server, "/health")[0] == 200
    assert get(server)[0] == 401
    assert get(server, headers=_basic("alice", "a-pw"))[0] == 200


def test_runtime_tls_from_env(env, runtimes, certs):  # noqa: F811
    env.setenv("DYN_SYSTEM_PORT", "0")
    env.setenv("DYN_SYSTEM_TLS_CERT_FILE", certs["server.pem"])
    env.setenv("DYN_SYSTEM_TLS_KEY_FILE", certs["server.key"])
    env.setenv("DYN_SYSTEM_TLS_CLIENT_CA_FILE", certs["ca.pem"])
    server = runtimes().system_server
    assert server.url.startswith("https://")
    ctx = ssl.create_default_context(cafile=certs["ca.pem"])
    ctx.load_cert_chain(certs["client.pem"], certs["client.key"])
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=TIMEOUT, context=ctx)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert (resp.status, UPTIME in resp.read().decode()) == (200, True)
    finally:
        conn.close()


def test_runtime_scrape_timeout_from_env(env, runtimes):
    import threading

    env.setenv("DYN_SYSTEM_PORT", "0")
    env.setenv("DYN_SYSTEM_SCRAPE_TIMEOUT", "0.1")
    drt = runtimes()
    release = threading.Event()
    drt.metrics().register_prometheus_update_callback(lambda: release.wait(30))
    try:
        status, _, body = get(drt.system_server)
        assert (status, body) == (503, b"Scrape timed out after 0.1 s")
    finally:
        release.set()


def test_runtime_bad_auth_file_logs_one_error_and_runs_without_server(env, runtimes, caplog):
    env.setenv("DYN_SYSTEM_PORT", "0")
    env.setenv("DYN_SYSTEM_BASIC_AUTH_FILE", "/nonexistent/users")
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        drt = runtimes()
    assert drt.system_server is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage().startswith("DYN_SYSTEM_BASIC_AUTH_FILE='/nonexistent/users'")
    with pytest.raises(ConfigError, match="^DYN_SYSTEM_BASIC_AUTH_FILE="):
        runtimes(strict_config=True)


def test_runtime_strict_config_raises_when_the_port_cannot_be_bound(env, runtimes, occupied_port):
    env.setenv("DYN_SYSTEM_PORT", str(occupied_port))
    with pytest.raises(ConfigError) as info:
        runtimes(strict_config=True)
    assert str(info.value).startswith(f"cannot bind 127.0.0.1:{occupied_port}: ")
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.EADDRINUSE


def test_start_from_config_strict_bind_failure(occupied_port):
    config = SystemConfig(port=occupied_port, host="127.0.0.1")
    with pytest.raises(ConfigError, match=f"^cannot bind 127.0.0.1:{occupied_port}: "):
        start_from_config(StubRuntime(), config, strict=True)


def test_start_from_config_tls_files_that_do_not_load(caplog, tmp_path):
    config = SystemConfig(port=0, host="127.0.0.1", tls_cert_file=str(tmp_path / "gone.pem"))
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        assert start_from_config(StubRuntime(), config) is None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert errors[0].startswith("Failed to start the system server: cannot load the TLS files: ")
    with pytest.raises(ConfigError, match="^cannot load the TLS files: ") as info:
        start_from_config(StubRuntime(), config, strict=True)
    assert isinstance(info.value.__cause__, OSError)


PROTOBUF_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "text/plain;version=0.0.4;q=0.5"
)


def _delimited_names(body):
    """The MetricFamily names of a delimited protobuf body (field 1 of each message)."""
    from dyn_metrics.exposition.protowire import iter_fields

    names, pos = [], 0
    while pos < len(body):
        length, shift = 0, 0
        while True:
            byte = body[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        message, pos = body[pos : pos + length], pos + length
        names += [v.decode() for f, _, v in iter_fields(message) if f == 1]
    return names


@pytest.mark.parametrize("self_metrics", [False, True])
def test_system_server_answers_protobuf_with_native_histograms(env, runtimes, self_metrics):
    env.setenv("DYN_SYSTEM_PORT", "0")
    drt = runtimes()
    ep = drt.namespace("ns").component("comp").endpoint("ep")
    ep.metrics.create_histogram("ttft_seconds", "TTFT", native=True).observe(0.25)
    if self_metrics:
        server = start_http_server(drt, port=0, host="127.0.0.1", self_metrics=True)
    else:
        server = drt.system_server
    try:
        status, headers, body = get(server, headers={"Accept": PROTOBUF_ACCEPT})
        assert status == 200
        assert headers["content-type"].startswith("application/vnd.google.protobuf;")
        names = _delimited_names(body)
        assert "dynamo_component_ttft_seconds" in names
        assert UPTIME in names
        assert ("dyn_metrics_scrape_in_flight" in names) is self_metrics
        own = drt.render_exposition("protobuf")
        assert isinstance(own, bytes) and set(_delimited_names(own)) <= set(names)
        status, headers, text = get(server)  # without the header: text, as before
        assert headers["content-type"] == TEXT_CT
        assert 'dynamo_component_ttft_seconds_bucket{dynamo_component="comp"' in text.decode()
    finally:
        if self_metrics:
            server.stop()
