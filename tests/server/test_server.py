"""MetricsServer end to end on 127.0.0.1 with stub callables: routes, negotiation, hardening, TLS.

Every client call has a socket timeout; nothing sleeps to wait for the server.
"""

import base64
import errno
import gzip
import http.client
import json
import logging
import selectors
import shutil
import socket
import ssl
import struct
import subprocess
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dyn_metrics.errors import InvalidValueError, MetricsError
from dyn_metrics.exposition.select import filter_text as filter_families
from dyn_metrics.server import app as server_module
from dyn_metrics.server.app import (
    OPENMETRICS_CONTENT_TYPE,
    MetricsServer,
    _display_host,
    accepts_gzip,
    negotiate,
)

TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
TIMEOUT = 2.0
PROMETHEUS_2_42_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_NATIVE_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
EXPOSITION = """\
# HELP a_total A counter
# TYPE a_total counter
a_total 1
# HELP h Latency
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 1
h_sum 0.5
h_count 1
# HELP c A gauge
# TYPE c gauge
c{x="1"} 3
"""
HEALTH_BODY = {
    "endpoints": {"generate": "ready"},
    "status": "ready",
    "uptime": {"nanos": 5, "secs": 1},
}


class Render:
    """A render stub that records the formats asked for."""

    def __init__(self, text=EXPOSITION):
        self.text = text
        self.formats = []

    def __call__(self, fmt):
        self.formats.append(fmt)
        return self.text


class Health:
    def __init__(self, healthy=True, body=HEALTH_BODY):
        self.healthy = healthy
        self.body = body

    def __call__(self):
        return self.healthy, self.body


@pytest.fixture
def serve():
    servers = []

    def start(render=None, health=None, **kwargs):
        kwargs.setdefault("host", "127.0.0.1")
        server = MetricsServer(render or Render(), health or Health(), **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def request(server, path="/metrics", method="GET", headers=None, body=None, context=None):
    """One request through http.client; returns (status, headers with lowercase names, body)."""
    if context is None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    else:
        conn = http.client.HTTPSConnection(
            server.host, server.port, timeout=TIMEOUT, context=context
        )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def exchange(server, data, half_close=True):
    """Send raw bytes, half-close, read until EOF; returns the raw answer (b"" if closed)."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may reject and close before all was sent
        except OSError as e:
            if e.errno != errno.ENOTCONN:  # shutdown after the server reset the connection
                raise
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw else None


def assert_serves(server):
    assert server.thread.is_alive()
    assert request(server)[0] == 200


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


@pytest.mark.parametrize("path", ["/nope", "/metrics/", "/metricsx", "/health/x", "/favicon.ico"])
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

GZIP_TABLE = [
    (None, False),
    ("", False),
    ("gzip", True),
    ("GZIP", True),
    ("x-gzip", True),
    ("gzip;q=0", False),
    ("gzip; q=0.000", False),
    ("gzip;q=0.001", True),
    ("deflate, gzip;q=0.5", True),
    ("identity", False),
    ("deflate, br", False),
    ("*", True),
    ("*;q=0", False),
    ("gzip;q=0, *", False),  # an explicit refusal beats the wildcard
    ("br, *;q=0.1", True),
    ("gzip;q=abc", False),  # an invalid q-value is not acceptance
]


@pytest.mark.parametrize("header, expected", GZIP_TABLE)
def test_accepts_gzip_table(header, expected):
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize("header, gzipped", [("gzip", True), ("gzip;q=0", False), (None, False)])
def test_server_gzip_when_accept_encoding_allows(serve, header, gzipped):
    server = serve()
    headers = {"Accept-Encoding": header} if header else {"Accept-Encoding": "identity"}
    status, got, body = request(server, headers=headers)
    assert status == 200
    assert got["vary"] == "Accept-Encoding"
    if gzipped:
        assert got["content-encoding"] == "gzip"
        assert gzip.decompress(body).decode() == EXPOSITION
    else:
        assert "content-encoding" not in got
        assert body.decode() == EXPOSITION


# -- name[] filter -------------------------------------------------------------------------------

FILTER_TABLE = [
    (["a_total"], "# HELP a_total A counter\n# TYPE a_total counter\na_total 1\n"),
    (["c"], '# HELP c A gauge\n# TYPE c gauge\nc{x="1"} 3\n'),
    (["h_bucket"], EXPOSITION.split("# HELP c")[0].split("a_total 1\n")[1]),  # a sample name
    (["h_count", "c"], EXPOSITION.split("a_total 1\n")[1]),
    (["nope"], ""),
    ([""], ""),
    (["a_total", "h", "c"], EXPOSITION),
]


@pytest.mark.parametrize("names, expected", FILTER_TABLE)
def test_filter_families_table(names, expected):
    assert filter_families(EXPOSITION, names) == expected


def test_filter_families_openmetrics_keeps_eof_and_unit():
    text = (
        "# TYPE a counter\n# UNIT a seconds\n# HELP a x\na_total 1\na_created 2\n"
        "# TYPE b gauge\nb 1\n# EOF\n"
    )
    assert filter_families(text, ["a"]) == (
        "# TYPE a counter\n# UNIT a seconds\n# HELP a x\na_total 1\na_created 2\n# EOF\n"
    )
    assert filter_families(text, ["b"]) == "# TYPE b gauge\nb 1\n# EOF\n"


def test_filter_families_untyped_samples_form_their_own_blocks():
    text = 'x 1\ny{a="b"} 2\ny{a="c"} 3\n# TYPE z gauge\nz 4\n'
    assert filter_families(text, ["y"]) == 'y{a="b"} 2\ny{a="c"} 3\n'
    assert filter_families(text, ["x", "z"]) == "x 1\n# TYPE z gauge\nz 4\n"


@pytest.mark.parametrize(
    "query, expected",
    [
        ("name[]=c", FILTER_TABLE[1][1]),
        ("name%5B%5D=c", FILTER_TABLE[1][1]),  # what Prometheus' params send
        ("name[]=a_total&name[]=c", FILTER_TABLE[0][1] + FILTER_TABLE[1][1]),
        ("name[]=nope", ""),
        ("other=1", EXPOSITION),
    ],
)
def test_server_name_filter(serve, query, expected):
    status, _, body = request(serve(), f"/metrics?{query}")
    assert status == 200
    assert body.decode() == expected


# -- content negotiation -----------------------------------------------------------------------

NEGOTIATION = [
    # (Accept, openmetrics enabled, expected)
    (PROMETHEUS_2_42_ACCEPT, False, "text"),
    (PROMETHEUS_2_42_ACCEPT, True, "openmetrics"),
    (PROMETHEUS_NATIVE_ACCEPT, True, "openmetrics"),
    (PROMETHEUS_NATIVE_ACCEPT, False, "text"),
    (None, True, "text"),
    ("", True, "text"),
    ("*/*", True, "text"),
    ("application/*", True, "text"),  # wildcards never pick OpenMetrics
    ("text/plain", True, "text"),
    ("text/plain;version=0.0.4", True, "text"),
    ("application/json", True, "text"),  # nothing we have: text, not 406
    ("application/openmetrics-text", True, "openmetrics"),
    ("application/openmetrics-text", False, "text"),
    ("application/openmetrics-text;version=1.0.0", True, "openmetrics"),
    ("application/openmetrics-text; version=0.0.1", True, "openmetrics"),
    ('application/openmetrics-text; version="1.0.0"', True, "openmetrics"),
    ("Application/OpenMetrics-Text; Version=1.0.0", True, "openmetrics"),
    ("application/openmetrics-text;version=2.0.0", True, "text"),
    ("application/openmetrics-text;q=0", True, "text"),
    ("application/openmetrics-text;q=abc", True, "text"),
    ("text/plain, application/openmetrics-text;q=0.5", True, "text"),
    ("text/plain;q=0.5, application/openmetrics-text;q=0.5", True, "openmetrics"),  # equal q
    ("text/plain;q=0.4, application/openmetrics-text;q=0.5", True, "openmetrics"),
    ("*/*;q=1, application/openmetrics-text;q=0.9", True, "text"),
    ("text/*, application/openmetrics-text;q=0.9", True, "text"),
    (
        "text/plain;version=0.0.4;q=0.2, text/plain;q=1, application/openmetrics-text;q=0.5",
        True,
        "openmetrics",
    ),  # the more specific text range decides text's q
    (
        "text/plain;version=1.0.0;escaping=underscores, application/openmetrics-text;q=0.9",
        True,
        "openmetrics",
    ),  # text 1.0.0 is not what we serve
    (
        "application/openmetrics-text;version=2.0.0, "
        "application/openmetrics-text;version=1.0.0;q=0.1,"
        "text/plain;q=0.2",
        True,
        "text",
    ),
]


@pytest.mark.parametrize("accept, enabled, expected", NEGOTIATION)
def test_negotiate_table(accept, enabled, expected):
    assert negotiate(accept, enabled) == expected


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


# -- failures of the callables -------------------------------------------------------------------


def test_server_render_error_is_500_and_one_log_line(serve, caplog):
    def render(fmt):
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


# -- hardening -----------------------------------------------------------------------------------


def test_server_idle_connections_do_not_delay_a_scrape(serve):
    server = serve()
    idle = []
    try:
        for i in range(200):
            sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
            if i % 2:
                sock.sendall(b"GET /metr")  # slowloris: a request that never ends
            idle.append(sock)
        # Completes well inside the client's 2 s socket timeout, with 200 idle peers.
        assert request(server)[0] == 200
    finally:
        for sock in idle:
            sock.close()


def test_server_idle_connection_is_closed_after_read_timeout(serve):
    server = serve(read_timeout=0.2)
    for data in (b"", b"GET / HTTP/1.1\r\nHost: x\r\n"):
        with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
            sock.sendall(data)
            assert sock.recv(100) == b""  # closed by the server, not a client timeout


def test_server_pending_overflow_drops_the_oldest_connection(serve):
    server = serve(max_pending=2)
    socks = [
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) for _ in range(3)
    ]
    try:
        assert request(server)[0] == 200  # a fourth connection, served
        # Accepting the third and the fourth dropped the first two; the third waits.
        for sock in socks[:2]:
            assert sock.recv(100) == b""
        socks[2].sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        assert status_of(socks[2].recv(4096)) == 200
    finally:
        for sock in socks:
            sock.close()


def test_server_connection_flood_keeps_threads_bounded(serve):
    # max_queued covers the flood, so every request is answered 200, not 503.
    server = serve(max_connections=4, max_queued=300)
    base = threading.active_count()
    peak = base
    socks = []
    try:
        for i in range(300):
            sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(sock)
            if i % 10 == 0:
                peak = max(peak, threading.active_count())
        answers = []
        for sock in socks:
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            answers.append(b"".join(chunks))
            peak = max(peak, threading.active_count())
    finally:
        for sock in socks:
            sock.close()
    assert peak <= base + 4
    assert all(status_of(a) == 200 for a in answers)


def test_server_idle_handler_threads_exit(serve, monkeypatch):
    monkeypatch.setattr(server_module, "_WORKER_IDLE", 0.05)
    server = serve()
    assert request(server)[0] == 200
    workers = [t for t in threading.enumerate() if t.name.startswith(server.thread.name + "-")]
    assert workers
    for worker in workers:
        worker.join(TIMEOUT)
        assert not worker.is_alive()
    assert request(server)[0] == 200  # a new handler is made on demand


def test_server_busy_queue_answers_503(serve):
    started, release = threading.Event(), threading.Event()

    def render(fmt):
        started.set()
        release.wait(TIMEOUT)
        return "x 1\n"

    server = serve(render, max_connections=1, max_queued=1)
    first = threading.Thread(target=request, args=(server,))
    first.start()
    try:
        assert started.wait(TIMEOUT)
        # The only handler is busy: one request may queue, the next is refused at once.
        socks = [
            socket.create_connection((server.host, server.port), timeout=TIMEOUT) for _ in range(2)
        ]
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
                sel.register(sock, selectors.EVENT_READ)
            ready = [key.fileobj for key, _ in sel.select(TIMEOUT)]
        assert len(ready) == 1
        refused = ready[0]
        raw = refused.recv(4096)
        assert status_of(raw) == 503
        assert b"\r\nRetry-After: 1\r\n" in raw
        release.set()
        queued = socks[1] if refused is socks[0] else socks[0]
        assert status_of(queued.recv(4096)) == 200
    finally:
        release.set()
        first.join(TIMEOUT)
        for sock in socks:
            sock.close()


def test_server_oversize_request_line_is_414(serve):
    server = serve(max_request_line=1024)
    raw = exchange(server, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 414
    assert_serves(server)


@pytest.mark.parametrize(
    "headers",
    [
        b"".join(b"X-%d: v\r\n" % i for i in range(101)),  # too many fields
        b"X-Big: " + b"v" * 20000 + b"\r\n",  # too many bytes
    ],
)
def test_server_oversize_headers_are_431(serve, headers):
    server = serve()
    raw = exchange(server, b"GET /metrics HTTP/1.1\r\n" + headers + b"\r\n")
    assert status_of(raw) == 431
    assert_serves(server)


@pytest.mark.parametrize(
    "data, status",
    [
        (b"\x00\xff\xfe\x01garbage\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),  # HTTP/0.9 is not served
        (b"GET /metrics HTTP/1.1 extra\r\n\r\n", 400),
        (b"GET /metrics FTP/1.0\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400),
        (b"G\xc3\xa9T /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
        (b"\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n", 200),  # leading empty lines are allowed
        (b"GET /metrics HTTP/1.0\n\n", 200),  # bare LF line ends are tolerated
        (b"GET http://example/metrics HTTP/1.1\r\n\r\n", 200),  # absolute form
        (b"GET http://[/ HTTP/1.1\r\n\r\n", 400),  # absolute form urlsplit() refuses
        (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
            None,
        ),  # a TLS hello on plain HTTP: closed
    ],
)
def test_server_malformed_requests(serve, data, status):
    server = serve()
    assert status_of(exchange(server, data)) == status
    assert_serves(server)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_server_survives_arbitrary_bytes(data):
    with MetricsServer(Render(), Health(), host="127.0.0.1") as server:
        raw = exchange(server, data)
        assert raw == b"" or raw.startswith(b"HTTP/1.1 ")
        assert_serves(server)


def test_server_client_disconnect_mid_response_is_not_an_error(serve, caplog):
    big = "x 1\n" * 4_000_000  # 16 MB: far more than the socket buffers hold
    server = serve(Render(big), max_connections=1)
    with caplog.at_level(logging.DEBUG, logger="dyn_metrics"):
        sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        # Reset the connection with most of the body unsent.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        # One handler thread: this answer comes after the broken one was handled.
        status, _, body = request(server, method="HEAD")
    assert (status, body) == (200, b"")
    assert server.thread.is_alive()
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    assert any("client went away" in r.getMessage() for r in caplog.records)


def test_server_logs_requests_at_debug_only(serve, caplog, capfd):
    server = serve()
    with caplog.at_level(logging.DEBUG, logger="dyn_metrics"):
        request(server)
        request(server, "/nope")
        exchange(server, b"junk\r\n\r\n")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("dyn_metrics.server")]
    assert any('"GET /metrics HTTP/1.1" 200' in line for line in lines)
    assert any('"GET /nope HTTP/1.1" 404' in line for line in lines)
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


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


def test_server_stop_closes_lingering_connections(serve):
    server = serve()
    idle = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    partial = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    partial.sendall(b"GET /metrics HTTP/1.1\r\n")
    assert request(server)[0] == 200  # both are accepted by now
    server.stop()
    for sock in (idle, partial):
        with sock:
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass


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


@pytest.mark.parametrize(
    "kwargs, prefix",
    [
        ({"port": -1}, "port: expected"),
        ({"port": 65536}, "port: expected"),
        ({"port": "80"}, "port: expected"),
        ({"host": None}, "host: expected"),
        ({"health_path": "health"}, "health_path: expected"),
        ({"live_path": "/metrics"}, "live_path: expected"),
        ({"read_timeout": 0}, "read_timeout: expected"),
        ({"max_connections": 0}, "max_connections: expected"),
        ({"max_pending": 1.5}, "max_pending: expected"),
        ({"max_queued": -1}, "max_queued: expected"),
        ({"basic_auth": ("user",)}, "basic_auth: expected"),
        ({"basic_auth": ("us:er", "pw")}, "basic_auth: expected"),
        ({"keyfile": "k.pem"}, "keyfile and client_cafile need certfile"),
    ],
)
def test_server_constructor_rejects_bad_arguments(kwargs, prefix):
    with pytest.raises(InvalidValueError, match="^" + prefix):
        MetricsServer(Render(), Health(), **kwargs)


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


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make the TLS test certificates")
    d = tmp_path_factory.mktemp("certs")

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=60)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    # Key usages spelled out: Python 3.13's default strict X.509 checks refuse
    # a CA certificate without them.
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dyn_metrics test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for serial, (name, usage, extra) in enumerate(
        [
            ("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
            ("client", "clientAuth", ""),
        ],
        start=2,
    ):
        (d / f"{name}.ext").write_text(
            f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={usage}\n{extra}"
        )
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            str(serial),
            "-days",
            "2",
            "-out",
            f"{name}.pem",
            "-extfile",
            f"{name}.ext",
        )
    return {
        n: str(d / n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }


def _client_context(certs, with_cert=False):
    ctx = ssl.create_default_context(cafile=certs["ca.pem"])
    if with_cert:
        ctx.load_cert_chain(certs["client.pem"], certs["client.key"])
    return ctx


def test_server_tls_scrape(serve, certs):
    server = serve(certfile=certs["server.pem"], keyfile=certs["server.key"])
    assert server.url == f"https://127.0.0.1:{server.port}/metrics"
    status, headers, body = request(server, context=_client_context(certs))
    assert (status, body.decode()) == (200, EXPOSITION)
    assert headers["content-type"] == TEXT_CT


def test_server_idle_tls_clients_do_not_block_a_tls_scrape(serve, certs):
    server = serve(certfile=certs["server.pem"], keyfile=certs["server.key"])
    idle = [
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) for _ in range(3)
    ]  # TCP connected, no ClientHello ever
    try:
        status, _, body = request(server, context=_client_context(certs))
        assert (status, body.decode()) == (200, EXPOSITION)
    finally:
        for sock in idle:
            sock.close()


def test_server_tls_handshake_is_under_the_read_timeout(serve, certs):
    server = serve(certfile=certs["server.pem"], keyfile=certs["server.key"], read_timeout=0.2)
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        assert sock.recv(100) == b""  # closed by the server


def test_server_plain_http_to_tls_port_is_dropped(serve, certs):
    server = serve(certfile=certs["server.pem"], keyfile=certs["server.key"])
    assert exchange(server, b"GET /metrics HTTP/1.1\r\n\r\n") == b""
    status, _, _ = request(server, context=_client_context(certs))
    assert status == 200


def test_server_tls_client_certificate_required(serve, certs, caplog):
    server = serve(
        certfile=certs["server.pem"], keyfile=certs["server.key"], client_cafile=certs["ca.pem"]
    )
    status, _, body = request(server, context=_client_context(certs, with_cert=True))
    assert (status, body.decode()) == (200, EXPOSITION)
    with pytest.raises(OSError) as info:
        request(server, context=_client_context(certs, with_cert=False))
    assert not isinstance(info.value, socket.timeout)  # refused, not hung
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
