"""unary_call against a real grpcio server on 127.0.0.1 (plain and TLS) and raw-socket faults."""

import random
import shutil
import socket
import ssl
import subprocess
import threading
from concurrent import futures

import grpc
import pytest

from dyn_metrics.errors import ConfigError, InvalidValueError
from dyn_metrics.export import http2
from dyn_metrics.export.grpc import (
    OTLP_METRICS_PATH,
    StatusCode,
    is_retryable,
    parse_target,
    unary_call,
)
from tests.realtools import free_port

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
# Non-ASCII and % characters, which grpc-message carries percent-encoded.
MESSAGE = "bad point: 100% wrong, température ≠ ok"


class Receiver:
    """A grpcio server whose Export handler records calls and answers as ``mode`` says."""

    def __init__(self, credentials=None):
        self.calls = []
        self.mode = "ok"
        self.release = threading.Event()
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(self.export)}
        )
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            options=[("grpc.max_receive_message_length", 32 << 20)],
        )
        self.server.add_generic_rpc_handlers((handler,))
        address = "127.0.0.1:0"
        if credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, credentials)
        self.server.start()
        self.target = f"127.0.0.1:{self.port}"

    def export(self, request, context):
        self.calls.append((request, dict(context.invocation_metadata())))
        self.time_remaining = context.time_remaining()
        if self.mode == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "collector overloaded")
        if self.mode == "invalid":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, MESSAGE)
        if self.mode == "big":
            return request * 64
        if self.mode == "hang":
            self.release.wait(10)
        return b"response:" + request[:16]

    def stop(self):
        self.release.set()
        self.server.stop(0)


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def server(receiver):
    receiver.calls.clear()
    receiver.mode = "ok"
    receiver.release.clear()
    yield receiver
    receiver.release.set()


def test_export_arrives_byte_exact_with_metadata(server):
    request = bytes(range(256)) * 3
    result = unary_call(
        server.target,
        OTLP_METRICS_PATH,
        request,
        metadata=[("authorization", "Bearer t0ken"), ("x-tenant", "team-a")],
        timeout=5,
    )
    assert result == (StatusCode.OK, "", b"response:" + request[:16])
    assert result.ok
    [(received, metadata)] = server.calls
    assert received == request
    assert metadata["authorization"] == "Bearer t0ken"
    assert metadata["x-tenant"] == "team-a"
    assert metadata["user-agent"].startswith("dyn-metrics-grpc")
    assert 0 < server.time_remaining <= 5  # grpc-timeout carried the deadline


def test_empty_request(server):
    assert unary_call(server.target, OTLP_METRICS_PATH, b"", timeout=5).response == b"response:"
    assert server.calls[0][0] == b""


@pytest.mark.parametrize(
    "mode, code, message",
    [
        ("unavailable", StatusCode.UNAVAILABLE, "collector overloaded"),
        ("invalid", StatusCode.INVALID_ARGUMENT, MESSAGE),
    ],
)
def test_server_status_and_decoded_message(server, mode, code, message):
    server.mode = mode
    result = unary_call(server.target, OTLP_METRICS_PATH, b"\x0a\x00", timeout=5)
    assert result == (code, message, b"")
    assert is_retryable(result.code) == (code == StatusCode.UNAVAILABLE)


def test_unknown_method_is_unimplemented(server):
    result = unary_call(server.target, f"/{SERVICE}/Nope", b"", timeout=5)
    assert result.code == StatusCode.UNIMPLEMENTED
    assert server.calls == []


def test_large_request_exercises_flow_control(server, monkeypatch):
    # 6 MiB: ~100 times the initial 64 KiB windows, so WINDOW_UPDATEs must arrive.
    updates = []
    original = http2.Connection._on_window_update

    def counting(self, stream_id, payload):
        updates.append(stream_id)
        original(self, stream_id, payload)

    monkeypatch.setattr(http2.Connection, "_on_window_update", counting)
    request = bytes(range(251)) * (6 * 1024 * 1024 // 251)
    result = unary_call(server.target, OTLP_METRICS_PATH, request, timeout=20)
    assert result.code == StatusCode.OK
    assert server.calls[0][0] == request
    assert 0 in updates and 1 in updates  # both windows were replenished


def test_large_response_is_credited_back(server, monkeypatch):
    # With a 64 KiB receive window the server can send 3 MiB only if our
    # WINDOW_UPDATEs for what arrived reach it.
    monkeypatch.setattr(http2, "LOCAL_WINDOW", http2.DEFAULT_WINDOW)
    server.mode = "big"
    request = bytes(range(256)) * 192  # 48 KiB, answered 64 times over
    result = unary_call(server.target, OTLP_METRICS_PATH, request, timeout=20)
    assert result == (StatusCode.OK, "", request * 64)


def test_server_that_never_answers_is_deadline_exceeded(server):
    server.mode = "hang"
    result = unary_call(server.target, OTLP_METRICS_PATH, b"x", timeout=0.3)
    assert result.code == StatusCode.DEADLINE_EXCEEDED
    assert "deadline" in result.message.lower()
    assert is_retryable(result.code)
    assert len(server.calls) == 1  # the request did arrive; the answer never came


def test_closed_port_is_unavailable():
    result = unary_call(f"127.0.0.1:{free_port()}", OTLP_METRICS_PATH, b"x", timeout=2)
    assert result.code == StatusCode.UNAVAILABLE
    assert "connecting to 127.0.0.1:" in result.message


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 / localhost, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make the TLS test certificate")
    d = tmp_path_factory.mktemp("grpc-tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        + ["-addext", "basicConstraints=critical,CA:TRUE"]
        + ["-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        cwd=d,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return (d / "cert.pem").read_bytes(), (d / "key.pem").read_bytes(), str(d / "cert.pem")


@pytest.fixture(scope="module")
def tls_server(tls_files):
    cert, key, _ = tls_files
    r = Receiver(grpc.ssl_server_credentials([(key, cert)]))
    yield r
    r.stop()


def test_tls_with_alpn_h2(tls_server, tls_files):
    context = ssl.create_default_context(cafile=tls_files[2])
    result = unary_call(
        tls_server.target,
        OTLP_METRICS_PATH,
        b"\x01secure",
        tls_context=context,
        metadata=[("authorization", "Basic dXNlcjpwdw==")],
        timeout=5,
    )
    assert result == (StatusCode.OK, "", b"response:\x01secure")
    assert tls_server.calls[-1] == (
        b"\x01secure",
        {
            "authorization": "Basic dXNlcjpwdw==",
            "user-agent": tls_server.calls[-1][1]["user-agent"],
        },
    )
    # The certificate names localhost too: the authority picks what is checked.
    by_name = unary_call(
        tls_server.target,
        OTLP_METRICS_PATH,
        b"",
        tls_context=ssl.create_default_context(cafile=tls_files[2]),
        authority=f"localhost:{tls_server.port}",
        timeout=5,
    )
    assert by_name.code == StatusCode.OK


def test_tls_untrusted_certificate_is_unavailable(tls_server):
    before = len(tls_server.calls)
    result = unary_call(
        tls_server.target,
        OTLP_METRICS_PATH,
        b"x",
        tls_context=ssl.create_default_context(),
        timeout=5,
    )
    assert result.code == StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in result.message
    assert len(tls_server.calls) == before


def test_tls_server_not_selecting_h2_is_refused(tls_files):
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tls_files[2], tls_files[2].replace("cert.pem", "key.pem"))
    server_context.set_alpn_protocols(["http/1.1"])
    raw = RawServer(lambda conn: None, tls=server_context)
    try:
        result = unary_call(
            raw.target,
            OTLP_METRICS_PATH,
            b"x",
            tls_context=ssl.create_default_context(cafile=tls_files[2]),
            timeout=5,
        )
    finally:
        raw.close()
    assert result.code == StatusCode.UNAVAILABLE
    assert "the server selected ALPN None, not 'h2'" in result.message
    assert raw.received == b""  # nothing was sent over the refused connection


class RawServer:
    """A TCP server on 127.0.0.1 answering one connection with ``script(conn)``."""

    def __init__(self, script, tls=None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.received = b""
        self.tls = tls
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script):
        conn, _ = self.listener.accept()
        with conn:
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    return
            conn.settimeout(5)
            try:
                # Preface + SETTINGS + WINDOW_UPDATE + HEADERS arrive before any answer.
                while b"grpc" not in self.received:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    self.received += chunk
                script(conn)
                # Half-close, then read to EOF: closing with unread data would reset
                # the connection instead of closing it.
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    def close(self):
        self.thread.join(5)
        self.listener.close()


SETTINGS_FRAME = http2.encode_frame(http2.SETTINGS, 0, 0)


@pytest.mark.parametrize(
    "answer, code, text",
    [
        # closing mid-stream, after SETTINGS
        (SETTINGS_FRAME, StatusCode.UNAVAILABLE, "closed the connection"),
        # GOAWAY before our stream was processed
        (
            http2.encode_frame(http2.GOAWAY, 0, 0, b"\0\0\0\0\0\0\0\x0bcalm"),
            StatusCode.UNAVAILABLE,
            "refused the stream",
        ),
        # RST_STREAM REFUSED_STREAM and CANCEL
        (http2.encode_frame(http2.RST_STREAM, 0, 1, b"\0\0\0\x07"), StatusCode.UNAVAILABLE, "7"),
        (http2.encode_frame(http2.RST_STREAM, 0, 1, b"\0\0\0\x08"), StatusCode.CANCELLED, "8"),
        # malformed: a SETTINGS payload that is not a multiple of 6, a 1-byte PING
        (http2.encode_frame(http2.SETTINGS, 0, 0, b"\0\0\0"), StatusCode.INTERNAL, "SETTINGS"),
        (http2.encode_frame(http2.PING, 0, 0, b"\0"), StatusCode.INTERNAL, "PING"),
        # an undecodable header block (index 0)
        (
            http2.encode_frame(http2.HEADERS, http2.END_HEADERS | http2.END_STREAM, 1, b"\x80"),
            StatusCode.INTERNAL,
            "header block",
        ),
        # not HTTP/2 at all
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", StatusCode.INTERNAL, "protocol error"),
    ],
)
def test_faults_from_a_raw_server(answer, code, text):
    raw = RawServer(lambda conn: conn.sendall(answer))
    try:
        result = unary_call(raw.target, OTLP_METRICS_PATH, b"abc", timeout=5)
    finally:
        raw.close()
    assert result.code == code
    assert text in result.message
    assert raw.received.startswith(http2.PREFACE)


def test_random_frames_always_give_a_result():
    rng = random.Random(13)
    codes = set()
    for _ in range(30):
        # A valid frame header of a random type and flags on stream 0 or 1, random payload.
        payload = rng.randbytes(rng.randrange(0, 40))
        frame = http2.encode_frame(
            rng.randrange(0, 11), rng.randrange(256), rng.randrange(2), payload
        )
        raw = RawServer(lambda conn, data=SETTINGS_FRAME + frame: conn.sendall(data))
        try:
            result = unary_call(raw.target, OTLP_METRICS_PATH, b"abc", timeout=2)
        finally:
            raw.close()
        assert isinstance(result.code, StatusCode) and result.code != StatusCode.OK
        codes.add(result.code)
    assert codes <= {StatusCode.UNAVAILABLE, StatusCode.INTERNAL, StatusCode.CANCELLED}


def test_ping_is_answered_and_trailers_only_read():
    from dyn_metrics.export.hpack import Encoder

    def script(conn):
        conn.sendall(SETTINGS_FRAME + http2.encode_frame(http2.PING, 0, 0, b"12345678"))
        data = b""
        while b"12345678" not in data:
            data += conn.recv(65536)
        block = Encoder(huffman=True).encode(
            [
                (b":status", b"200"),
                (b"grpc-status", b"8"),
                (b"grpc-message", b"quota %25 %E2%89%A0"),
            ]
        )
        conn.sendall(
            http2.encode_frame(http2.HEADERS, http2.END_STREAM, 1, block[:3])
            + http2.encode_frame(http2.CONTINUATION, http2.END_HEADERS, 1, block[3:])
        )
        script.reply = data

    raw = RawServer(script)
    try:
        result = unary_call(raw.target, OTLP_METRICS_PATH, b"abc", timeout=5)
    finally:
        raw.close()
    assert result == (StatusCode.RESOURCE_EXHAUSTED, "quota % ≠", b"")
    # Our PING ACK (type 6, flag 1) with the same payload, and the SETTINGS ACK.
    assert http2.encode_frame(http2.PING, http2.ACK, 0, b"12345678") in script.reply
    assert http2.encode_frame(http2.SETTINGS, http2.ACK, 0) in script.reply


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"target": "localhost"}, ConfigError),
        ({"target": "127.0.0.1:0"}, ConfigError),
        ({"target": "http://127.0.0.1:4317"}, ConfigError),
        ({"path": "no-slash"}, ConfigError),
        ({"metadata": [("Authorization", "x")]}, ConfigError),
        ({"metadata": [("grpc-timeout", "1S")]}, ConfigError),
        ({"metadata": [("x-a", "line\nbreak")]}, ConfigError),
        ({"timeout": 0}, InvalidValueError),
        ({"request": "text"}, InvalidValueError),
    ],
)
def test_bad_arguments_raise_before_connecting(kwargs, error):
    call = {"target": "127.0.0.1:4317", "path": OTLP_METRICS_PATH, "request": b"", "timeout": 1}
    call.update(kwargs)
    target, path, request = call.pop("target"), call.pop("path"), call.pop("request")
    with pytest.raises(error, match=r"grpc \w+ "):
        unary_call(target, path, request, **call)


def test_status_table_and_retryable_codes():
    assert [c.name for c in StatusCode][:3] == ["OK", "CANCELLED", "UNKNOWN"]
    assert StatusCode(16).name == "UNAUTHENTICATED"
    retryable = {c.name for c in StatusCode if is_retryable(c)}
    assert retryable == {
        "CANCELLED",
        "DEADLINE_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
        "UNAVAILABLE",
    }
    assert parse_target("[::1]:4317") == ("::1", 4317)
    assert parse_target("collector.local:4317") == ("collector.local", 4317)
