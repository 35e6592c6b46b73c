"""What the server tests share: stub callables, an HTTP client, raw-socket exchanges.

Every client call has a socket timeout; nothing sleeps to wait for the server.
"""

import errno
import http.client
import socket
import ssl
import threading

import pytest

from dyn_metrics.exposition.select import filter_text
from tests.exposition.test_select import EXPOSITION

TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
TIMEOUT = 2.0
HEALTH_BODY = {
    "endpoints": {"generate": "ready"},
    "status": "ready",
    "uptime": {"nanos": 5, "secs": 1},
}


class Render:
    """A render stub that records the formats and ``name[]`` selections asked for.

    A selection keeps the family blocks of ``text`` it names, as a registry would.
    """

    def __init__(self, text=EXPOSITION):
        self.text = text
        self.formats = []
        self.names = []

    def __call__(self, fmt, names):
        self.formats.append(fmt)
        self.names.append(names)
        return self.text if names is None else filter_text(self.text, names)


class Health:
    def __init__(self, healthy=True, body=HEALTH_BODY):
        self.healthy = healthy
        self.body = body

    def __call__(self):
        return self.healthy, self.body


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


def client_context(certs, with_cert=False):
    ctx = ssl.create_default_context(cafile=certs["ca.pem"])
    if with_cert:
        ctx.load_cert_chain(certs["client.pem"], certs["client.key"])
    return ctx


def wait_for(condition, what):
    """Poll ``condition`` on an Event-timed wait; fail naming ``what`` after ~10 s."""
    tick = threading.Event()
    for _ in range(2000):
        if condition():
            return
        tick.wait(0.005)
    pytest.fail(f"timed out waiting for {what}")
