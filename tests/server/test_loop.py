"""The connection loop under hostile clients: limits, timeouts, floods, malformed heads, TLS.

End to end on 127.0.0.1 with stub callables. The handler-thread bounds (503,
thread counts) are in test_pool.py.
"""

import logging
import socket
import ssl
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dyn_metrics.server.app import MetricsServer
from tests.server.helpers import (
    EXPOSITION,
    TEXT_CT,
    TIMEOUT,
    Health,
    Render,
    assert_serves,
    client_context,
    exchange,
    request,
    status_of,
)

# -- slow and idle clients -----------------------------------------------------------------------


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


# -- head limits and malformed heads -------------------------------------------------------------


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


def test_server_max_headers_is_configurable(serve):
    server = serve(max_headers=3)
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(4))
    assert status_of(exchange(server, b"GET /metrics HTTP/1.1\r\n" + fields + b"\r\n")) == 431
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(3))
    assert status_of(exchange(server, b"GET /metrics HTTP/1.1\r\n" + fields + b"\r\n")) == 200


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
        (b"GET /metrics HTTP/0.9\r\n\r\n", 505),
        (b" \r\n\r\n", 400),  # a blank request line, which http.server leaves unanswered
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


def test_server_expect_continue_gets_no_interim_answer(serve):
    head = b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    raw = exchange(serve(), head)
    assert status_of(raw) == 405
    assert b"100 Continue" not in raw


# -- clients that go away, logging ---------------------------------------------------------------


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


def _stalled_reader(server, context=None):
    """A client that asks for /metrics and reads nothing (a small receive buffer)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(TIMEOUT)
    raw.connect((server.host, server.port))
    sock = raw if context is None else context.wrap_socket(raw, server_hostname="127.0.0.1")
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def _read_to_the_end(sock):
    got = 0
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    except (ConnectionResetError, ssl.SSLError):
        pass
    return got


@pytest.mark.parametrize("tls", [False, True])
def test_server_write_timeout_frees_the_handler_of_a_client_that_stops_reading(serve, certs, tls):
    big = "x 1\n" * 4_000_000  # 16 MB: far more than the socket buffers hold
    options = {"certfile": certs["server.pem"], "keyfile": certs["server.key"]} if tls else {}
    context = client_context(certs) if tls else None
    server = serve(Render(big), max_connections=1, write_timeout=0.3, **options)
    stalled = [_stalled_reader(server, context) for _ in range(2)]
    try:
        # The one handler thread and the loop thread that served the first block
        # sending to the stalled clients until the loop shuts those connections
        # down at the write deadline: then the handler serves.
        status, _, body = request(server, method="HEAD", context=context)
        assert (status, body) == (200, b"")
        for sock in stalled:
            assert _read_to_the_end(sock) < len(big)  # cut short, not completed
    finally:
        for sock in stalled:
            sock.close()
    assert server.thread.is_alive()


def test_server_head_split_over_packets_is_read_through_the_selector(serve):
    server = serve()
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        assert request(server)[0] == 200  # the first connection is accepted by now
        sock.sendall(b"Host: x\r\n\r\n")
        raw = b""
        while not raw.endswith(EXPOSITION.encode()):
            chunk = sock.recv(65536)
            assert chunk
            raw += chunk
    assert status_of(raw) == 200


def test_server_logs_requests_at_debug_only(serve, caplog, capfd):
    server = serve()
    with caplog.at_level(logging.DEBUG, logger="dyn_metrics"):
        request(server)
        request(server, "/nope")
        exchange(server, b"junk\r\n\r\n")
        exchange(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("dyn_metrics.server")]
    assert any('"GET /metrics HTTP/1.1" 200' in line for line in lines)
    assert any('"GET /nope HTTP/1.1" 404' in line for line in lines)
    assert any('"junk" 400' in line for line in lines)
    assert any("rejected with 414" in line for line in lines)
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


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


# -- TLS -----------------------------------------------------------------------------------------


def test_server_tls_scrape(serve, certs):
    server = serve(certfile=certs["server.pem"], keyfile=certs["server.key"])
    assert server.url == f"https://127.0.0.1:{server.port}/metrics"
    status, headers, body = request(server, context=client_context(certs))
    assert (status, body.decode()) == (200, EXPOSITION)
    assert headers["content-type"] == TEXT_CT


def test_server_idle_tls_clients_do_not_block_a_tls_scrape(serve, certs):
    server = serve(certfile=certs["server.pem"], keyfile=certs["server.key"])
    idle = [
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) for _ in range(3)
    ]  # TCP connected, no ClientHello ever
    try:
        status, _, body = request(server, context=client_context(certs))
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
    status, _, _ = request(server, context=client_context(certs))
    assert status == 200


def test_server_tls_client_certificate_required(serve, certs, caplog):
    server = serve(
        certfile=certs["server.pem"], keyfile=certs["server.key"], client_cafile=certs["ca.pem"]
    )
    status, _, body = request(server, context=client_context(certs, with_cert=True))
    assert (status, body.decode()) == (200, EXPOSITION)
    with pytest.raises(OSError) as info:
        request(server, context=client_context(certs, with_cert=False))
    assert not isinstance(info.value, socket.timeout)  # refused, not hung
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


def test_server_tls_with_a_ready_ssl_context(serve, certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["server.pem"], certs["server.key"])
    server = serve(ssl_context=ctx)
    assert server.url.startswith("https://")
    assert request(server, context=client_context(certs))[0] == 200
