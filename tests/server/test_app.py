"""MetricsServer's app on 127.0.0.1 with stub callables: routes, auth, responses, HEAD, gzip.

Also the server's lifecycle and properties. Connection handling and hardening
are in test_loop.py; the negotiation and ``name[]`` tables in tests/exposition.
"""

import base64
import gzip
import http.client
import json
import logging
import threading

import pytest

from dyn_metrics.errors import MetricsError
from dyn_metrics.server.app import OPENMETRICS_CONTENT_TYPE, MetricsServer, _display_host
from tests.exposition.test_negotiation import PROMETHEUS_2_42_ACCEPT
from tests.exposition.test_select import FILTER_TABLE
from tests.server.helpers import (
    EXPOSITION,
    HEALTH_BODY,
    TEXT_CT,
    TIMEOUT,
    Health,
    Render,
    assert_serves,
    request,
)

# -- routes -------------------------------------------------------------------------------------


def test_server_metrics_serves_text_with_content_type(serve):
    render = Render()
    server = serve(render)
    status, headers, body = request(server)
    assert status == 200
    assert headers["content-type"] == TEXT_CT
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    assert "accept-encoding" in headers["vary"].lower()
    assert body.decode() == EXPOSITION
    assert render.formats == ["text"]
    assert render.names == [None]


@pytest.mark.parametrize("healthy, status, word", [(True, 200, "ready"), (False, 503, "notready")])
@pytest.mark.parametrize("path", ["/health", "/live"])
def test_server_health_and_live_answer_json(serve, healthy, status, word, path):
    body = dict(HEALTH_BODY, status=word)
    server = serve(health=Health(healthy, body))
    got_status, headers, data = request(server, path)
    assert got_status == status
    assert headers["content-type"] == "application/json"
    assert json.loads(data) == body
    assert f'"status":"{word}"'.encode() in data
    assert data == json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def test_server_custom_health_paths_replace_defaults(serve):
    server = serve(health_path="/custom/health", live_path="/custom/live")
    assert request(server, "/custom/health")[0] == 200
    assert request(server, "/custom/live")[0] == 200
    for path in ("/health", "/live"):
        assert request(server, path)[:3:2] == (404, b"Route not found")


def test_server_landing_page_links_routes(serve):
    server = serve(health_path="/custom/health")
    status, headers, body = request(server, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    for link in (b'href="metrics"', b'href="custom/health"', b'href="live"'):
        assert link in body


@pytest.mark.parametrize(
    "path", ["/nope", "/metrics/", "/metricsx", "/health/x", "/favicon.ico", "//metrics"]
)
def test_server_unknown_route_is_404(serve, path):
    status, headers, body = request(serve(), path)
    assert (status, body) == (404, b"Route not found")
    assert headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", ["/metrics", "/health", "/live", "/", "/nope"])
def test_server_head_has_get_headers_and_no_body(serve, path):
    server = serve()
    get_status, get_headers, get_body = request(server, path)
    head_status, head_headers, head_body = request(server, path, method="HEAD")
    assert head_status == get_status
    assert head_body == b""
    for name in ("content-type", "content-length", "vary", "content-encoding"):
        assert head_headers.get(name) == get_headers.get(name)
    assert int(head_headers["content-length"]) == len(get_body)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/metrics", "/health", "/"])
def test_server_other_methods_are_405_with_allow(serve, method, path):
    status, headers, _ = request(serve(), path, method=method, body=b"x" * 100)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


def test_server_metrics_query_string_is_not_part_of_the_route(serve):
    assert request(serve(), "/metrics?foo=bar")[0] == 200


# -- gzip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header, gzipped", [("gzip", True), ("gzip;q=0", False), (None, False)])
def test_server_gzip_when_accept_encoding_allows(serve, header, gzipped):
    server = serve()
    headers = {"Accept-Encoding": header} if header else {"Accept-Encoding": "identity"}
    status, got, body = request(server, headers=headers)
    assert status == 200
    # Accept always matters: a client may ask for protobuf.
    assert got["vary"] == "Accept, Accept-Encoding"
    if gzipped:
        assert got["content-encoding"] == "gzip"
        assert gzip.decompress(body).decode() == EXPOSITION
    else:
        assert "content-encoding" not in got
        assert body.decode() == EXPOSITION


# -- name[]: parsed here, applied by render ------------------------------------------------------


@pytest.mark.parametrize(
    "query, names, expected",
    [
        ("name[]=c", {"c"}, FILTER_TABLE[1][1]),
        ("name%5B%5D=c", {"c"}, FILTER_TABLE[1][1]),  # what Prometheus' params send
        ("name[]=a_total&name[]=c", {"a_total", "c"}, FILTER_TABLE[0][1] + FILTER_TABLE[1][1]),
        ("name[]=c&name[]=c", {"c"}, FILTER_TABLE[1][1]),
        ("name[]=nope", {"nope"}, ""),
        ("name[]=", {""}, ""),
        ("other=1", None, EXPOSITION),
        ("other=1&name[]=c", {"c"}, FILTER_TABLE[1][1]),
    ],
)
def test_server_name_filter(serve, query, names, expected):
    render = Render()
    status, _, body = request(serve(render), f"/metrics?{query}")
    assert status == 200
    assert render.names == [None if names is None else frozenset(names)]
    assert body.decode() == expected


def test_server_name_filter_in_absolute_form_target(serve):
    render = Render()
    server = serve(render)
    assert request(server, f"http://127.0.0.1:{server.port}/metrics?name[]=c")[0] == 200
    assert render.names == [frozenset({"c"})]


# -- content negotiation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "enabled, fmt, ctype",
    [
        (False, "text", TEXT_CT),
        (True, "openmetrics", OPENMETRICS_CONTENT_TYPE),
    ],
)
def test_server_prometheus_accept_header(serve, enabled, fmt, ctype):
    render = Render()
    server = serve(render, openmetrics=enabled)
    status, headers, _ = request(
        server, headers={"Accept": PROMETHEUS_2_42_ACCEPT, "Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers["content-type"] == ctype
    assert headers["content-encoding"] == "gzip"
    assert render.formats == [fmt]
    if enabled:
        assert headers["vary"] == "Accept, Accept-Encoding"


def test_server_repeated_accept_fields_are_read_as_one_list(serve):
    render = Render()
    server = serve(render, openmetrics=True)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        conn.putrequest("GET", "/metrics")
        conn.putheader("Accept", "text/plain;q=0.1")
        conn.putheader("Accept", "application/openmetrics-text")
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert (resp.status, resp.getheader("content-type")) == (200, OPENMETRICS_CONTENT_TYPE)


# -- failures of the callables -------------------------------------------------------------------


def test_server_render_error_is_500_and_one_log_line(serve, caplog):
    def render(fmt, names):
        raise RuntimeError("collector broke")

    server = serve(render)
    with caplog.at_level(logging.DEBUG, logger="dyn_metrics"):
        status, headers, body = request(server)
        assert_serves_health = request(server, "/health")[0]
    assert (status, body) == (500, b"Failed to get metrics")
    assert assert_serves_health == 200
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert errors[0].name.startswith("dyn_metrics.server")
    assert errors[0].getMessage() == "Failed to get metrics"
    assert "collector broke" in str(errors[0].exc_info[1])


def test_server_health_error_is_500(serve, caplog):
    def health():
        raise RuntimeError("health broke")

    status, _, body = request(serve(health=health), "/health")
    assert (status, body) == (500, b"Failed to get health status")
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


# -- basic auth ----------------------------------------------------------------------------------


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "authorization, status",
    [
        (None, 401),
        (_basic("prom", "wrong"), 401),
        (_basic("other", "s3cret"), 401),
        ("Basic !!!notbase64", 401),
        ("Bearer abc", 401),
        (_basic("prom", "s3cret"), 200),
        ("basic " + _basic("prom", "s3cret").split()[1], 200),  # the scheme is case-insensitive
    ],
)
@pytest.mark.parametrize("path", ["/metrics", "/health", "/nope"])
def test_server_basic_auth(serve, authorization, status, path):
    server = serve(basic_auth=("prom", "s3cret"))
    headers = {"Authorization": authorization} if authorization else {}
    got, got_headers, _ = request(server, path, headers=headers)
    if status == 401:
        assert got == 401
        assert got_headers["www-authenticate"] == 'Basic realm="dyn_metrics"'
    else:
        assert got == (404 if path == "/nope" else 200)


# -- lifecycle -----------------------------------------------------------------------------------


def test_server_stop_frees_port_and_ends_threads(serve):
    server = serve()
    assert request(server)[0] == 200
    port = server.port
    server.stop()
    assert not server.thread.is_alive()
    name = server.thread.name
    assert not [t for t in threading.enumerate() if t.name == name or t.name.startswith(name + "-")]
    with pytest.raises(OSError):
        request(server)
    again = MetricsServer(Render(), Health(), host="127.0.0.1", port=port)
    assert again.start() == ("127.0.0.1", port)
    try:
        assert_serves(again)
    finally:
        again.stop()


def test_server_stop_is_idempotent_and_start_once():
    server = MetricsServer(Render(), Health(), host="127.0.0.1")
    server.stop()  # never started: harmless
    with pytest.raises(MetricsError, match="^metrics server already stopped"):
        server.start()
    server = MetricsServer(Render(), Health(), host="127.0.0.1")
    server.start()
    with pytest.raises(MetricsError, match="^metrics server already running"):
        server.start()
    server.stop()
    server.stop()
    assert not server.running


def test_server_context_manager_and_properties():
    with MetricsServer(Render(), Health(), host="127.0.0.1") as server:
        assert server.running
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.address == ("127.0.0.1", server.port)
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        assert server.thread.daemon
        assert server.options.host == "127.0.0.1"
        assert server.options.port == 0  # what was asked; server.port is what was bound
        assert_serves(server)
    assert not server.thread.is_alive()


def test_server_wildcard_bind_shows_loopback_url():
    with MetricsServer(Render(), Health(), host="0.0.0.0") as server:
        assert server.host == "0.0.0.0"
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        conn.request("GET", "/metrics")
        assert conn.getresponse().status == 200
        conn.close()


@pytest.mark.parametrize(
    "host, shown",
    [
        ("0.0.0.0", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("::", "[::1]"),
        ("::1", "[::1]"),
        ("fe80::1", "[fe80::1]"),
        ("10.0.0.5", "10.0.0.5"),
        ("example.com", "example.com"),
    ],
)
def test_server_display_host(host, shown):
    assert _display_host(host) == shown


def test_server_bind_failure_raises_oserror():
    with MetricsServer(Render(), Health(), host="127.0.0.1") as first:
        second = MetricsServer(Render(), Health(), host="127.0.0.1", port=first.port)
        with pytest.raises(OSError):
            second.start()
        assert not second.running
