"""RequestHandler: http.server parsing a head from memory and writing the answer, no sockets."""

import http.client
import io

import pytest

from dyn_metrics.server.handler import (
    Answered,
    RequestHandler,
    Response,
    busy,
    plain,
    refuse,
)


class App:
    """Records the requests it gets; answers 200 with a small body."""

    def __init__(self):
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        return Response(200, [("Content-Type", "text/plain"), ("X-Route", "yes")], b"hello")


def parse(data):
    """Split a response into (status line, header dict with lowercase names, body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    headers = {}
    for field in fields:
        name, _, value = field.partition(":")
        headers[name.lower()] = value.strip()
    return line, headers, body


def run(head):
    app = App()
    answer = RequestHandler(head, "10.0.0.1", app).run()
    return app, answer


def test_handler_get_reaches_the_app_with_lowercase_headers():
    app, answer = run(b"GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\n\r\n")
    (request,) = app.requests
    assert (request.method, request.target) == ("GET", "/metrics?x=1")
    assert request.headers == {"host": "h", "accept": "a, b"}
    line, headers, body = parse(answer.data)
    assert line == "HTTP/1.1 200 OK"
    assert headers["content-length"] == "5"
    assert headers["connection"] == "close"
    assert headers["x-route"] == "yes"
    assert headers["server"] == "dyn_metrics"  # no Python version
    assert "date" in headers
    assert body == b"hello"
    assert (answer.status, answer.request_line, answer.linger) == (
        200,
        "GET /metrics?x=1 HTTP/1.1",
        False,
    )


def test_handler_head_has_get_headers_and_no_body():
    _, get = run(b"GET / HTTP/1.1\r\n\r\n")
    _, head = run(b"HEAD / HTTP/1.1\r\n\r\n")
    get_line, get_headers, _ = parse(get.data)
    head_line, head_headers, head_body = parse(head.data)
    assert head_line == get_line
    assert head_body == b""
    assert head_headers.keys() == get_headers.keys()
    assert head_headers["content-length"] == "5"


def test_handler_answer_reads_back_with_http_client():
    _, answer = run(b"GET / HTTP/1.0\r\n\r\n")

    class Sock:
        def makefile(self, mode):
            return io.BytesIO(answer.data)

    resp = http.client.HTTPResponse(Sock())
    resp.begin()
    assert (resp.status, resp.read()) == (200, b"hello")


def test_handler_target_is_kept_as_sent():
    app, _ = run(b"GET //metrics HTTP/1.1\r\n\r\n")  # http.server's path would fold the "//"
    assert app.requests[0].target == "//metrics"


@pytest.mark.parametrize(
    "head, linger",
    [
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\n\r\n", False),
        (b"GET / HTTP/3.0\r\n\r\n", True),  # refused: the client may still be sending
    ],
)
def test_handler_lingers_when_input_may_be_unread(head, linger):
    assert run(head)[1].linger is linger


REFUSALS = [
    # (head, status): the app is never asked
    (b"junk\r\n\r\n", 400),  # http.server: bad syntax
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),  # http.server: bad version word
    (b"GET / HTTP/x.1\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),  # http.server
    (b"GET / HTTP/0.9\r\n\r\n", 505),  # ours, with a status line http.server would leave out
    (b"GET /\r\n\r\n", 400),  # HTTP/0.9: http.server would serve it
    (b"POST /\r\n\r\n", 400),
    (b"GET  / HTTP/1.1\r\n\r\n", 400),  # two spaces
    (b"GET / HTTP/1.10\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\n\r\n", 400),  # not a token
    (b"GET /\x7f HTTP/1.1\r\n\r\n", 400),
    (b"\t\r\n\r\n", 400),  # blank: http.server answers nothing
    (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400),  # obs-fold
    (b"GET / HTTP/1.1\r\nA b: c\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n: c\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nA: b\rC: d\r\n\r\n", 400),  # a bare CR
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
]


@pytest.mark.parametrize("head, status", REFUSALS)
def test_handler_refusals(head, status):
    app, answer = run(head)
    assert app.requests == []
    line, headers, body = parse(answer.data)
    assert line.startswith(f"HTTP/1.1 {status} ")
    assert answer.status == status
    assert headers["connection"] == "close"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == str(len(body))
    assert b"<" not in body  # plain text, not http.server's HTML page


def test_handler_refusal_keeps_the_standard_reason_phrase():
    _, answer = run(b"GET / FTP/1.0\r\n\r\n")
    line, _, body = parse(answer.data)
    assert line == "HTTP/1.1 400 Bad Request"
    assert b"FTP/1.0" in body  # http.server's own words go to the body


def test_handler_sends_no_100_continue():
    _, answer = run(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
    assert answer.data.startswith(b"HTTP/1.1 200 ")
    assert b"100 Continue" not in answer.data


def test_handler_head_of_a_refusal_has_no_body():
    _, answer = run(b"HEAD / HTTP/1.1\r\nno colon\r\n\r\n")
    line, headers, body = parse(answer.data)
    assert line.startswith("HTTP/1.1 400 ")
    assert body == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_handler_late_answer_is_written_as_reply_would_and_run_sends_nothing(method):
    late = []

    def app(request):
        request.late(plain(503, "late", [("Retry-After", "1")]))
        raise Answered()

    handler = RequestHandler(f"{method} /metrics HTTP/1.1\r\n\r\n".encode(), "p", app, late.append)
    with pytest.raises(Answered):
        handler.run()
    assert handler.output() == b""  # nothing written for this thread to send
    (answer,) = late
    line, headers, _ = parse(answer.head)
    assert (answer.status, line, answer.body) == (
        503,
        "HTTP/1.1 503 Service Unavailable",
        b"late" if method == "GET" else b"",
    )
    assert (headers["retry-after"], headers["content-length"]) == ("1", "4")
    assert (answer.request_line, answer.linger) == (f"{method} /metrics HTTP/1.1", False)


def test_handler_offers_no_late_answer_without_a_late_callback():
    app, _ = run(b"GET / HTTP/1.1\r\n\r\n")
    assert app.requests[0].late is None


def test_plain_response():
    assert plain(404, "Route not found", [("A", "b")]) == Response(
        404, [("Content-Type", "text/plain; charset=utf-8"), ("A", "b")], b"Route not found"
    )


@pytest.mark.parametrize("status", [414, 431])
def test_refuse_bytes(status):
    line, headers, body = parse(refuse(status, "Too long"))
    assert line.startswith(f"HTTP/1.1 {status} ")
    assert headers["connection"] == "close"
    assert body == b"Too long"


def test_busy_bytes():
    line, headers, body = parse(busy())
    assert line == "HTTP/1.1 503 Service Unavailable"
    assert headers["retry-after"] == "1"
    assert headers["connection"] == "close"
    assert body == b"Server busy"
