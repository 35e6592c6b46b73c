"""MetricsWsgiApp under a real WSGI server (wsgiref), answer for answer against MetricsServer.

The request table (``REQUESTS``) and the comparison helpers are shared with
test_asgi.py and tests/dynamo/test_web_apps.py: every row goes to the app and
to the built-in server with the same render, and status, the headers that
matter and the body bytes must be equal.
"""

import contextlib
import gzip
import http.client
import logging
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from dyn_metrics.errors import InvalidValueError
from dyn_metrics.server.app import MetricsServer
from dyn_metrics.server.wsgi import MetricsWsgiApp
from tests.server.helpers import TEXT_CT, Health, Render

TIMEOUT = 5.0
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
COMPARED = ("content-type", "content-encoding", "vary", "content-length", "allow", "retry-after")

# (id, method, target, request headers, expected: status, OpenMetrics when enabled, gzipped)
REQUESTS = [
    # methods
    ("get", "GET", "/metrics", {}, (200, False, False)),
    ("head", "HEAD", "/metrics", {}, (200, False, False)),
    ("post", "POST", "/metrics", {"Content-Length": "0"}, (405, False, False)),
    ("put", "PUT", "/metrics", {"Content-Length": "0"}, (405, False, False)),
    ("delete", "DELETE", "/metrics", {}, (405, False, False)),
    ("options", "OPTIONS", "/metrics", {}, (405, False, False)),
    # Accept: text, OpenMetrics preferred, q-values
    ("accept text", "GET", "/metrics", {"Accept": "text/plain;version=0.0.4"}, (200, False, False)),
    (
        "accept om",
        "GET",
        "/metrics",
        {"Accept": "application/openmetrics-text;version=1.0.0"},
        (200, True, False),
    ),
    (
        "prometheus' accept",
        "GET",
        "/metrics",
        {
            "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,"
            "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,"
            "*/*;q=0.2"
        },
        (200, True, False),
    ),
    (
        "text q wins",
        "GET",
        "/metrics",
        {"Accept": "application/openmetrics-text;q=0.5,text/*"},
        (200, False, False),
    ),
    (
        "om q=0",
        "GET",
        "/metrics",
        {"Accept": "application/openmetrics-text;q=0,text/plain"},
        (200, False, False),
    ),
    (
        "om bad version",
        "GET",
        "/metrics",
        {"Accept": "application/openmetrics-text;version=2"},
        (200, False, False),
    ),
    ("accept */*", "GET", "/metrics", {"Accept": "*/*"}, (200, False, False)),
    # gzip
    ("gzip", "GET", "/metrics", {"Accept-Encoding": "gzip"}, (200, False, True)),
    ("gzip q=0", "GET", "/metrics", {"Accept-Encoding": "gzip;q=0, identity"}, (200, False, False)),
    ("encoding *", "GET", "/metrics", {"Accept-Encoding": "*"}, (200, False, True)),
    ("head gzip", "HEAD", "/metrics", {"Accept-Encoding": "gzip"}, (200, False, True)),
    (
        "om gzip",
        "GET",
        "/metrics",
        {"Accept": "application/openmetrics-text", "Accept-Encoding": "br, gzip"},
        (200, True, True),
    ),
    # name[]
    ("name[]", "GET", "/metrics?name[]=requests_total", {}, (200, False, False)),
    ("name[] escaped", "GET", "/metrics?name%5B%5D=latency_seconds", {}, (200, False, False)),
    (
        "name[] x2",
        "GET",
        "/metrics?name[]=requests_total&name[]=latency_seconds_count",
        {},
        (200, False, False),
    ),
    ("name[] unknown", "GET", "/metrics?name[]=nothing", {}, (200, False, False)),
    ("name[] empty", "GET", "/metrics?name[]=", {}, (200, False, False)),
    ("other query", "GET", "/metrics?x=1", {}, (200, False, False)),
    (
        "head name[]",
        "HEAD",
        "/metrics?name[]=requests_total",
        {"Accept-Encoding": "gzip"},
        (200, False, True),
    ),
]
ROW_IDS = [row[0] for row in REQUESTS]


def answer(host, port, method, target, headers=None):
    """``(status, compared headers, body)`` of one request over a new connection."""
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, {k: got[k] for k in COMPARED if k in got}, body
    finally:
        conn.close()


def same_answers(app_address, server, method, target, headers):
    """Assert the app at ``app_address`` answers as ``server`` does; return the answer."""
    theirs = answer(server.host, server.port, method, target, headers)
    ours = answer(*app_address, method, target, headers)
    assert ours == theirs
    return ours


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def wsgi_server(app):
    """wsgiref serving ``app`` on 127.0.0.1 (port 0) from a thread; yields ``(host, port)``."""
    httpd = make_server("127.0.0.1", 0, app, WSGIServer, handler_class=_Quiet)
    # A short poll interval: shutdown() waits for serve_forever's next look at its flag.
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.01,), name="test-wsgiref", daemon=True
    )
    thread.start()
    try:
        yield httpd.server_address[:2]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)


@pytest.fixture(scope="module", params=[False, True], ids=["openmetrics off", "openmetrics on"])
def pair(request):
    """The app under wsgiref and a MetricsServer, both over one Render stub."""
    render = Render()
    server = MetricsServer(render, Health(), host="127.0.0.1", port=0, openmetrics=request.param)
    server.start()
    try:
        with wsgi_server(MetricsWsgiApp(render, openmetrics=request.param)) as address:
            yield address, server, request.param
    finally:
        server.stop()


def check_answer(row, openmetrics, status, got, body):
    """Assert the answer is what the row expects (beyond matching the server's)."""
    _, method, _, _, (want_status, om, gzipped) = row
    assert status == want_status
    if status == 405:
        assert (got["allow"], body) == ("GET, HEAD", b"Method not allowed")
        return
    assert got["content-type"] == (OM if om and openmetrics else TEXT_CT)
    assert got["vary"] == "Accept, Accept-Encoding"
    assert got.get("content-encoding") == ("gzip" if gzipped else None)
    if method == "HEAD":
        assert body == b"" and int(got["content-length"]) > 0
    elif "content-encoding" in got:
        assert gzip.decompress(body).startswith(b"# HELP")


@pytest.mark.parametrize("row", REQUESTS, ids=ROW_IDS)
def test_answers_as_the_server(pair, row):
    address, server, openmetrics = pair
    _, method, target, headers, _ = row
    check_answer(row, openmetrics, *same_answers(address, server, method, target, headers))


def test_any_path_is_the_metrics_answer(pair):
    address, server, _ = pair
    theirs = answer(server.host, server.port, "GET", "/metrics")
    for path in ("/", "/elsewhere", "/favicon.ico", "/metrics/x?name[]=a"):
        status, _, body = answer(*address, "GET", path)
        assert status == 200
        if "?" not in path:
            assert body == theirs[2]


def _dispatcher(metrics_app):
    """A tiny WSGI router: ``/metrics`` to the app, 404 for anything else."""

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/metrics":
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"nope"]

    return app


def test_mounted_in_a_dispatcher(serve):
    render = Render()
    server = serve(render)
    with wsgi_server(_dispatcher(MetricsWsgiApp(render))) as address:
        for _, method, target, headers, _ in REQUESTS:
            same_answers(address, server, method, target, headers)
        assert answer(*address, "GET", "/other")[::2] == (404, b"nope")


def _raising(fmt, names):
    raise RuntimeError("callback broke")


def test_render_that_raises_is_500_and_logged_once(serve, caplog):
    server = serve(_raising)
    with wsgi_server(MetricsWsgiApp(_raising)) as address:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
            status, got, body = answer(*address, "GET", "/metrics")
        assert (status, body) == (500, b"Failed to get metrics")
        records = [r for r in caplog.records if r.getMessage() == "Failed to get metrics"]
        assert len(records) == 1 and records[0].exc_info[1].args == ("callback broke",)
        assert answer(server.host, server.port, "GET", "/metrics") == (status, got, body)


def _call(app, method="GET", query="", **environ):
    """The app called directly: ``(status line, headers, body)``."""
    seen = []
    env = {"REQUEST_METHOD": method, "QUERY_STRING": query, "PATH_INFO": "/", **environ}
    body = b"".join(app(env, lambda status, headers: seen.append((status, headers))))
    return seen[0][0], dict(seen[0][1]), body


def test_direct_call_status_lines_and_head():
    app = MetricsWsgiApp(Render())
    status, headers, body = _call(app)
    assert status == "200 OK" and headers["Content-Length"] == str(len(body)) and body
    assert _call(app, "HEAD") == (status, headers, b"")
    status, headers, _ = _call(app, "PATCH")
    assert (status, headers["Allow"]) == ("405 Method Not Allowed", "GET, HEAD")
    # a minimal environ (no QUERY_STRING, no HTTP_* keys) is served too
    seen = []
    assert b"".join(app({"REQUEST_METHOD": "GET"}, lambda s, h: seen.append(s))) == body


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"render": "text"}, "'text'"),
        ({"openmetrics": 1}, "openmetrics"),
        ({"scrape_timeout": 0}, "scrape_timeout"),
        ({"scrape_timeout": True}, "scrape_timeout"),
        ({"scrape_timeout": "1"}, "'1'"),
    ],
)
def test_bad_arguments(kwargs, named):
    args = {"render": Render(), **kwargs}
    render = args.pop("render")
    with pytest.raises(InvalidValueError, match=named):
        MetricsWsgiApp(render, **args)
