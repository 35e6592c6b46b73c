"""OTLP/HTTP transport against a loopback receiver that decodes with opentelemetry-proto.

The receiver (``http.server`` in a thread on 127.0.0.1) answers from a script and
records each request; protobuf bodies are read with
``ExportMetricsServiceRequest.FromString`` and JSON bodies with strict
``json_format.Parse``. Retries run on an injected clock: nothing really waits.
"""

import email.utils
import gzip
import http.server
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

import dyn_metrics as dm
from dyn_metrics.errors import ExportRejectedError, ExportUnavailableError, InvalidValueError
from dyn_metrics.export.otlp_http import MAX_BODY, parse_partial_success, post_otlp
from dyn_metrics.export.otlp_json import dumps_json, request_json
from dyn_metrics.export.otlp_model import encode_request
from dyn_metrics.export.pushgateway import Backoff
from tests.realtools import free_port

START = 1_700_000_000_000_000_000
NOW = START + 15_000_000_000
ARGS: dict[str, Any] = dict(
    resource_attributes={"service.name": "svc", "host": "w1"},
    scope_version="0.1.0",
    start_time_unix_nano=START,
    time_unix_nano=NOW,
)
CLOSE = "close"  # script entry: drop the connection without answering


class Receiver:
    """A scripted OTLP/HTTP receiver; the last script entry repeats."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self.script: list[Any] = [(200, {}, b"")]
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(size)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append((self.path, headers, body))
                index = min(len(receiver.requests), len(receiver.script)) - 1
                entry = receiver.script[index]
                if entry == CLOSE:
                    self.close_connection = True
                    self.connection.close()
                    return
                status, extra, payload = entry
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/v1/metrics"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def receiver(shared_receiver: Receiver) -> Receiver:
    """The module's receiver, its script and records reset (one server: shutdown polls)."""
    shared_receiver.script = [(200, {}, b"")]
    shared_receiver.requests = []
    return shared_receiver


class Clock:
    """Monotonic time that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def backoff(self, **kw: Any) -> Backoff:
        return Backoff(sleep=self.sleep, clock=lambda: self.now, random=lambda: 0.5, **kw)


def families() -> list[dm.Family]:
    reg = dm.Registry()
    c = dm.CounterVec("requests_total", "Requests.", ["model"])
    g = dm.Gauge("inflight", "In flight.")
    h = dm.Histogram("latency_seconds", "Latency.", buckets=[0.1, 1.0])
    for m in (c, g, h):
        reg.register(m)
    c.labels("llama").inc(3)
    g.set(-2.5)
    h.observe(0.05)
    h.observe(4.0)
    return reg.collect()


def decode(protocol: str, headers: dict[str, str], body: bytes) -> Any:
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    if protocol == "http/protobuf":
        return ExportMetricsServiceRequest.FromString(body)
    return json_format.Parse(body.decode("utf-8"), ExportMetricsServiceRequest())


def body_for(protocol: str) -> bytes:
    if protocol == "http/protobuf":
        return encode_request(families(), **ARGS)
    return dumps_json(request_json(families(), **ARGS))


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_request_decodes_to_what_was_encoded_with_the_headers(
    receiver: Receiver, protocol: str, compression: Optional[str]
) -> None:
    body = body_for(protocol)
    result = post_otlp(
        receiver.url,
        body,
        protocol=protocol,
        compression=compression,
        headers=[("X-Scope-OrgID", "tenant-1"), ("authorization", "Bearer t")],
        timeout=10,
    )
    assert (result.success, result.status, result.attempts, result.error) == (True, 200, 1, None)
    path, headers, sent = receiver.requests[0]
    assert path == "/v1/metrics"
    expected_type = "application/x-protobuf" if protocol == "http/protobuf" else "application/json"
    assert headers["content-type"] == expected_type
    assert headers.get("content-encoding") == compression
    assert headers["user-agent"] == f"dyn_metrics/{dm.__version__}"
    assert (headers["x-scope-orgid"], headers["authorization"]) == ("tenant-1", "Bearer t")
    decoded = decode(protocol, headers, sent)
    assert decoded == ExportMetricsServiceRequest.FromString(encode_request(families(), **ARGS))
    metrics = decoded.resource_metrics[0].scope_metrics[0].metrics
    assert sorted(m.WhichOneof("data") for m in metrics) == ["gauge", "histogram", "sum"]
    if compression == "gzip":
        assert sent == gzip.compress(body, mtime=0)


def test_custom_user_agent_replaces_ours_and_mapping_headers(receiver: Receiver) -> None:
    post_otlp(
        receiver.url,
        b"",
        protocol="http/protobuf",
        headers={"User-Agent": "mine/1", "x-a": "b"},
        timeout=10,
    )
    headers = receiver.requests[0][1]
    assert (headers["user-agent"], headers["x-a"]) == ("mine/1", "b")


def partial_protobuf(count: int, message: str) -> bytes:
    part = ExportMetricsPartialSuccess(rejected_data_points=count, error_message=message)
    return ExportMetricsServiceResponse(partial_success=part).SerializeToString()


@pytest.mark.parametrize(
    "protocol, answer, expected",
    [
        ("http/json", (200, {"Content-Type": "application/json"}, b"{}"), (0, "")),
        ("http/protobuf", (200, {}, b""), (0, "")),
        ("http/json", (200, {}, b""), (0, "")),
        (
            "http/protobuf",
            (200, {"Content-Type": "application/x-protobuf"}, partial_protobuf(3, "too old")),
            (3, "too old"),
        ),
        (
            "http/json",
            (
                200,
                {"Content-Type": "application/json"},
                b'{"partialSuccess": {"rejectedDataPoints": "3", "errorMessage": "too old"}}',
            ),
            (3, "too old"),
        ),
        (
            "http/json",
            (202, {}, b'{"partialSuccess": {"rejectedDataPoints": 7}}'),
            (7, ""),
        ),
    ],
)
def test_success_and_partial_success(
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
    answer: Any,
    expected: tuple[int, str],
) -> None:
    receiver.script = [answer]
    clock = Clock()
    with caplog.at_level(logging.WARNING, logger="dyn_metrics.export.otlp_http"):
        result = post_otlp(
            receiver.url, b"{}", protocol=protocol, timeout=10, backoff=clock.backoff()
        )
    assert result.success and result.attempts == 1 and result.status == answer[0]
    assert (result.rejected_data_points, result.error_message) == expected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == (1 if expected != (0, "") else 0)
    if expected[1]:
        assert expected[1] in warnings[0].getMessage()
    assert clock.sleeps == [] and len(receiver.requests) == 1


def test_parse_partial_success_reads_both_encodings_and_refuses_junk() -> None:
    assert parse_partial_success(partial_protobuf(2**40, "x"), "http/protobuf") == (2**40, "x")
    # The response's Content-Type wins over the request's protocol.
    json_body = b'{"partial_success": {"rejected_data_points": "5"}}'
    assert parse_partial_success(json_body, "http/protobuf", "application/json") == (5, "")
    assert parse_partial_success(json_body, "http/json") == (5, "")
    for junk in (b"[1]", b'{"partialSuccess": 3}', b'{"partialSuccess": {"errorMessage": 1}}'):
        with pytest.raises(ValueError):
            parse_partial_success(junk, "http/json")
    with pytest.raises(ValueError):
        parse_partial_success(b"\x0a\x05ab", "http/protobuf")  # truncated


@pytest.mark.parametrize(
    "content_type, answer",
    [
        ("application/json", b"<html>ok</html>"),
        ("application/json", b"[" * 60000),  # deeper than json's recursion limit
        ("application/json", b'{"partialSuccess": {"rejectedDataPoints": "many"}}'),
        ("application/x-protobuf", b"\xff\xff"),
        ("text/plain", b"OK"),
    ],
)
def test_unreadable_success_body_is_still_a_success(
    receiver: Receiver, content_type: str, answer: bytes
) -> None:
    receiver.script = [(200, {"Content-Type": content_type}, answer)]
    result = post_otlp(receiver.url, b"{}", protocol="http/json", timeout=10)
    assert (result.success, result.rejected_data_points, result.error_message) == (True, 0, "")


def rpc_status(code: int, message: str) -> bytes:
    # google.rpc.Status: 1 code int32, 2 message string
    text = message.encode()
    return bytes([0x08, code, 0x12, len(text)]) + text


@pytest.mark.parametrize(
    "answer, shown",
    [
        (
            (400, {"Content-Type": "application/x-protobuf"}, rpc_status(3, "bad metric")),
            "bad metric",
        ),
        (
            (400, {"Content-Type": "application/json"}, b'{"code":3,"message":"bad json"}'),
            "bad json",
        ),
        ((413, {}, b"request entity too large"), "request entity too large"),
        ((400, {"Content-Type": "text/plain"}, b"\x12\x03bad"), "\x12\x03bad"),  # not a Status
        ((415, {}, b"unsupported media type"), "unsupported media type"),
        ((401, {}, b""), "Unauthorized"),
        ((500, {}, b"boom"), "boom"),
        ((404, {}, b"x" * 10000), "x" * 100),
        ((307, {"Location": "/elsewhere"}, b""), "Temporary Redirect"),
    ],
)
def test_permanent_refusals_are_final(receiver: Receiver, answer: Any, shown: str) -> None:
    receiver.script = [answer]
    clock = Clock()
    result = post_otlp(
        receiver.url,
        b"x",
        protocol="http/protobuf",
        timeout=10,
        backoff=clock.backoff(),
        data_points=12,
    )
    assert (result.success, result.status, result.attempts) == (False, answer[0], 1)
    assert result.rejected_data_points == 12
    assert isinstance(result.error, ExportRejectedError)
    assert result.error.status == answer[0]
    assert shown in result.error_message
    assert len(result.error.body) <= 4096
    assert result.error.body == answer[2][:4096].decode("utf-8", "replace")
    assert clock.sleeps == [] and len(receiver.requests) == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_back_off_then_succeed(receiver: Receiver, status: int) -> None:
    receiver.script = [(status, {}, b"busy"), (status, {}, b"busy"), (200, {}, b"")]
    clock = Clock()
    result = post_otlp(
        receiver.url, b"x", protocol="http/protobuf", timeout=60, backoff=clock.backoff()
    )
    assert (result.success, result.status, result.attempts) == (True, 200, 3)
    assert clock.sleeps == [1.0, 2.0]  # random 0.5: no jitter


def test_retry_after_seconds_and_http_date_replace_the_backoff(receiver: Receiver) -> None:
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    receiver.script = [
        (429, {"Retry-After": "7"}, b""),
        (503, {"Retry-After": date}, b""),
        (200, {}, b""),
    ]
    clock = Clock()
    result = post_otlp(
        receiver.url, b"x", protocol="http/json", timeout=100, backoff=clock.backoff()
    )
    assert result.success and result.attempts == 3
    assert clock.sleeps[0] == 7.0
    assert 25 < clock.sleeps[1] <= 30


def test_retries_exhausted_is_unavailable(receiver: Receiver) -> None:
    receiver.script = [(503, {}, b"down")]
    clock = Clock()
    result = post_otlp(
        receiver.url,
        b"x",
        protocol="http/protobuf",
        timeout=1000,
        backoff=clock.backoff(),
        data_points=4,
    )
    assert (result.success, result.status, result.attempts) == (False, 503, 6)
    assert isinstance(result.error, ExportUnavailableError)
    assert (result.error.attempts, result.error.last_status, result.error.body) == (6, 503, "down")
    assert result.rejected_data_points == 4
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_every_attempt_and_wait_fit_in_one_deadline(receiver: Receiver) -> None:
    receiver.script = [(503, {}, b"")]
    clock = Clock()
    result = post_otlp(
        receiver.url, b"x", protocol="http/protobuf", timeout=5, backoff=clock.backoff()
    )
    # Waits 1 and 2 fit (t=3); the next wait, 4, would end past 5.
    assert (result.success, result.attempts, clock.sleeps) == (False, 3, [1.0, 2.0])
    assert sum(clock.sleeps) < 5
    # A Retry-After longer than what is left ends the call at once.
    receiver.requests.clear()
    receiver.script = [(429, {"Retry-After": "60"}, b"")]
    clock = Clock()
    result = post_otlp(
        receiver.url, b"x", protocol="http/protobuf", timeout=5, backoff=clock.backoff()
    )
    assert (result.success, result.attempts, clock.sleeps) == (False, 1, [])
    assert isinstance(result.error, ExportUnavailableError)


def test_connection_closed_without_an_answer_is_retried(receiver: Receiver) -> None:
    receiver.script = [CLOSE, (200, {}, b"")]
    clock = Clock()
    result = post_otlp(
        receiver.url, b"x", protocol="http/protobuf", timeout=60, backoff=clock.backoff()
    )
    assert (result.success, result.attempts, clock.sleeps) == (True, 2, [1.0])
    receiver.script = [CLOSE]
    receiver.requests.clear()
    clock = Clock()
    result = post_otlp(
        receiver.url,
        b"x",
        protocol="http/protobuf",
        timeout=60,
        backoff=clock.backoff(max_attempts=2),
    )
    assert (result.success, result.status, result.attempts) == (False, None, 2)
    assert isinstance(result.error, ExportUnavailableError)
    assert "connection error" in result.error_message


def test_refused_port_is_retried_then_unavailable() -> None:
    clock = Clock()
    url = f"http://127.0.0.1:{free_port()}/v1/metrics"
    result = post_otlp(
        url, b"x", protocol="http/protobuf", timeout=60, backoff=clock.backoff(max_attempts=3)
    )
    assert (result.success, result.status, result.attempts) == (False, None, 3)
    assert isinstance(result.error, ExportUnavailableError)
    assert "Connection refused" in result.error_message or "refused" in result.error_message
    assert clock.sleeps == [1.0, 2.0]


def test_oversized_body_is_dropped_before_sending(receiver: Receiver) -> None:
    result = post_otlp(
        receiver.url,
        bytes(MAX_BODY + 1),
        protocol="http/protobuf",
        compression="gzip",
        timeout=10,
        data_points=99,
    )
    assert (result.success, result.attempts, result.rejected_data_points) == (False, 0, 99)
    assert isinstance(result.error, ExportRejectedError)
    assert "limit" in result.error_message
    assert receiver.requests == []


@pytest.mark.parametrize(
    "kw, word",
    [
        (dict(url="ftp://x/"), "url"),
        (dict(body="text"), "body"),
        (dict(protocol="grpc"), "protocol"),
        (dict(compression="zstd"), "compression"),
        (dict(timeout=0), "timeout"),
        (dict(timeout=float("inf")), "timeout"),
        (dict(timeout=True), "timeout"),
        (dict(tls_context="yes"), "tls_context"),
        (dict(backoff=3), "backoff"),
        (dict(data_points=-1), "data_points"),
        (dict(headers="a=b"), "headers"),
        (dict(headers=[("Content-Type", "text/plain")]), "reserved"),
        (dict(headers=[("bad name", "v")]), "token"),
        (dict(headers=[("x-a", "v\r\nx-b: y")]), "CR"),
        (dict(headers=[("x-a",)]), "pair"),
        (dict(headers=5), "headers"),
    ],
)
def test_bad_arguments_raise_and_send_nothing(receiver: Receiver, kw: Any, word: str) -> None:
    args: dict[str, Any] = dict(url=receiver.url, body=b"x", protocol="http/json", timeout=5)
    args.update(kw)
    url, body = args.pop("url"), args.pop("body")
    with pytest.raises(InvalidValueError, match=word):
        post_otlp(url, body, **args)
    assert receiver.requests == []


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make the TLS test certificate")
    d = tmp_path_factory.mktemp("otlp-http-tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        cwd=d,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(d / "cert.pem"), str(d / "key.pem")


def test_https_with_a_trusted_certificate_and_an_untrusted_one(
    tls_files: tuple[str, str],
) -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*tls_files)
    r = Receiver(server_context)
    try:
        trusted = ssl.create_default_context(cafile=tls_files[0])
        body = body_for("http/protobuf")
        result = post_otlp(r.url, body, protocol="http/protobuf", timeout=10, tls_context=trusted)
        assert (result.success, result.status) == (True, 200)
        assert r.requests[0][2] == body
        clock = Clock()
        result = post_otlp(
            r.url,
            body,
            protocol="http/protobuf",
            timeout=10,
            tls_context=ssl.create_default_context(),
            backoff=clock.backoff(),
        )
        assert (result.success, result.attempts, clock.sleeps) == (False, 1, [])
        assert isinstance(result.error, ExportRejectedError)
        assert "certificate" in result.error_message
    finally:
        r.close()


def test_a_receiver_that_never_answers_ends_at_the_deadline() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/metrics"
        result = post_otlp(url, b"x", protocol="http/protobuf", timeout=0.2)
    assert (result.success, result.status, result.attempts) == (False, None, 1)
    assert isinstance(result.error, ExportUnavailableError)
    assert "timed out" in result.error_message
