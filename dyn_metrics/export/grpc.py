"""gRPC unary calls over HTTP/2 (``http2``), for OTLP/gRPC export.

``unary_call`` opens one connection per call (TCP, or TLS offering ALPN
``h2`` and refusing a server that does not select it), sends one
length-prefixed message on one stream and reads the response message and the
``grpc-status`` / ``grpc-message`` trailers (or a trailers-only response).
A connection per call keeps the client stateless: an export every few
seconds does not need a pooled connection, and nothing is left open between
exports.

Whatever the server or network does, ``unary_call`` returns a ``GrpcResult``:
a failed connection, TLS handshake or a server closing mid-stream is
UNAVAILABLE, the deadline passing is DEADLINE_EXCEEDED, a malformed frame or
message is INTERNAL, all with the reason in ``.message``. Only bad arguments
raise (``ConfigError`` / ``InvalidValueError``, before anything is sent).
"""

import enum
import gzip
import re
import socket
import ssl
import time
import zlib
from collections.abc import Sequence
from typing import NamedTuple, Optional
from urllib.parse import unquote

from ..errors import ConfigError, InvalidValueError
from . import http2
from .hpack import Header

OTLP_METRICS_PATH = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
USER_AGENT = "dyn-metrics-grpc"


class StatusCode(enum.IntEnum):
    """The gRPC status codes (grpc/doc/statuscodes.md)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# The codes the OTLP specification calls retryable; every other non-OK code is permanent.
RETRYABLE_CODES = frozenset(
    {
        StatusCode.CANCELLED,
        StatusCode.DEADLINE_EXCEEDED,
        StatusCode.RESOURCE_EXHAUSTED,
        StatusCode.ABORTED,
        StatusCode.UNAVAILABLE,
    }
)


def is_retryable(code: int) -> bool:
    """Whether an export that ended with gRPC status ``code`` may be retried."""
    return code in RETRYABLE_CODES


class GrpcResult(NamedTuple):
    """The outcome of one call: ``code`` (a ``StatusCode``), ``message``, ``response`` bytes."""

    code: StatusCode
    message: str
    response: bytes

    @property
    def ok(self) -> bool:
        return self.code == StatusCode.OK


def _status(code: int) -> StatusCode:
    try:
        return StatusCode(code)
    except ValueError:
        return StatusCode.UNKNOWN  # codes beyond the table are UNKNOWN, as gRPC does


# gRPC's PROTOCOL-HTTP2.md: the status of a stream reset by the server.
_RST_STATUS = {
    http2.REFUSED_STREAM: StatusCode.UNAVAILABLE,
    http2.CANCEL: StatusCode.CANCELLED,
    http2.ENHANCE_YOUR_CALM: StatusCode.RESOURCE_EXHAUSTED,
    http2.INADEQUATE_SECURITY: StatusCode.PERMISSION_DENIED,
}
# gRPC's http-grpc-status-mapping.md: an HTTP status without grpc-status.
_HTTP_STATUS = {
    400: StatusCode.INTERNAL,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.UNIMPLEMENTED,
    429: StatusCode.UNAVAILABLE,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.UNAVAILABLE,
}
_METADATA_NAME = re.compile(r"[0-9a-z_.-]+\Z")
_RESERVED = frozenset({"content-type", "te", "host", "connection", "user-agent"})


def parse_target(target: str) -> tuple[str, int]:
    """``(host, port)`` of ``"host:port"`` or ``"[v6]:port"``; raises ``ConfigError``."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:/\[\]]+):(\d{1,5})", str(target))
    port = int(match.group(2) or match.group(4)) if match else 0
    if not match or not 0 < port < 65536:
        raise ConfigError(f"grpc target {target!r} is not host:port (port 1..65535)")
    return match.group(1) or match.group(3), port


def _validate_metadata(metadata: Sequence[tuple[str, str]]) -> list[Header]:
    out: list[Header] = []
    for item in metadata:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ConfigError(f"grpc metadata item {item!r} is not a (name, value) pair")
        name, value = item
        if not isinstance(name, str) or not _METADATA_NAME.match(name):
            raise ConfigError(f"grpc metadata name {name!r} is not lowercase [0-9a-z_.-]")
        if name.startswith("grpc-") or name in _RESERVED or name.endswith("-bin"):
            raise ConfigError(f"grpc metadata name {name!r} is reserved or binary")
        if not isinstance(value, str) or not all(" " <= c <= "~" for c in value):
            raise ConfigError(f"grpc metadata value {value!r} for {name!r} is not printable ASCII")
        out.append((name.encode(), value.encode()))
    return out


def _timeout_header(seconds: float) -> bytes:
    # At most 8 digits: milliseconds up to ~27 hours, seconds beyond.
    millis = max(1, int(seconds * 1000))
    return f"{millis}m".encode() if millis < 10**8 else f"{int(seconds)}S".encode()


def unary_call(
    target: str,
    path: str,
    request: bytes,
    *,
    tls_context: Optional[ssl.SSLContext] = None,
    authority: Optional[str] = None,
    metadata: Sequence[tuple[str, str]] = (),
    timeout: float,
) -> GrpcResult:
    """Call ``path`` on ``target`` ("host:port") with the serialized message ``request``.

    With ``tls_context`` the connection is TLS and the context is set to offer
    ALPN ``h2`` only; the certificate is checked against ``authority``'s host
    (default: the target's host). ``authority`` is the ``:authority`` header
    (default ``target``). ``metadata`` pairs are sent as headers (lowercase
    ASCII names, printable ASCII values). The whole call, connecting
    included, ends within ``timeout`` seconds.
    """
    host, port = parse_target(target)
    if authority is None:
        authority = target
    if not isinstance(path, str) or not path.startswith("/") or not path.isprintable():
        raise ConfigError(f"grpc path {path!r} is not an absolute /service/method path")
    if not isinstance(authority, str) or not authority or not authority.isprintable():
        raise ConfigError(f"grpc authority {authority!r} is not a host[:port]")
    if not isinstance(request, (bytes, bytearray, memoryview)):
        raise InvalidValueError(f"grpc request {request!r} is not bytes")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InvalidValueError(f"grpc timeout {timeout!r} is not a positive number of seconds")
    extra = _validate_metadata(metadata)
    deadline = time.monotonic() + timeout
    headers: list[Header] = [
        (b":method", b"POST"),
        (b":scheme", b"https" if tls_context is not None else b"http"),
        (b":path", path.encode()),
        (b":authority", authority.encode()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"grpc-timeout", _timeout_header(timeout)),
        (b"user-agent", USER_AGENT.encode()),
        *extra,
    ]
    body = b"\x00" + len(request).to_bytes(4, "big") + bytes(request)
    server_name = parse_target(authority)[0] if ":" in authority else authority
    try:
        sock = _connect(host, port, tls_context, server_name, deadline)
    except http2.DeadlineError:
        return GrpcResult(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded while connecting", b"")
    except (OSError, ConfigError, ValueError) as exc:
        return GrpcResult(StatusCode.UNAVAILABLE, f"connecting to {target} failed: {exc}", b"")
    conn = http2.Connection(sock, deadline)
    cancel = False
    try:
        response = conn.request(headers, body)
    except http2.DeadlineError as exc:
        cancel = True
        return GrpcResult(StatusCode.DEADLINE_EXCEEDED, str(exc), b"")
    except http2.StreamResetError as exc:
        return GrpcResult(_RST_STATUS.get(exc.code, StatusCode.INTERNAL), str(exc), b"")
    except http2.ConnectionClosedError as exc:
        return GrpcResult(StatusCode.UNAVAILABLE, str(exc), b"")
    except http2.ProtocolError as exc:
        return GrpcResult(StatusCode.INTERNAL, f"protocol error: {exc}", b"")
    except Exception as exc:  # a result, never an exception, whatever the server sends
        return GrpcResult(StatusCode.INTERNAL, f"unexpected error: {exc!r}", b"")
    finally:
        conn.close(cancel)
    try:
        return _result(response)
    except Exception as exc:  # as above: malformed headers are the server's fault
        return GrpcResult(StatusCode.INTERNAL, f"unexpected error: {exc!r}", b"")


def _connect(
    host: str,
    port: int,
    tls_context: Optional[ssl.SSLContext],
    server_name: str,
    deadline: float,
) -> socket.socket:
    left = deadline - time.monotonic()
    if left <= 0:
        raise http2.DeadlineError("deadline exceeded")
    try:
        sock = socket.create_connection((host, port), timeout=left)
    except socket.timeout:
        raise http2.DeadlineError("deadline exceeded while connecting") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_context is None:
        return sock
    try:
        tls_context.set_alpn_protocols(["h2"])
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        tls = tls_context.wrap_socket(sock, server_hostname=server_name)
    except socket.timeout:
        sock.close()
        raise http2.DeadlineError("deadline exceeded during the TLS handshake") from None
    except BaseException:
        sock.close()
        raise
    if tls.selected_alpn_protocol() != "h2":
        tls.close()
        raise ConfigError(f"the server selected ALPN {tls.selected_alpn_protocol()!r}, not 'h2'")
    return tls


def _header(headers: list[Header], name: bytes) -> Optional[str]:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _result(response: http2.Response) -> GrpcResult:
    headers, body, trailers = response
    # A trailers-only response carries the status in its only header block.
    status_block = trailers if trailers else headers
    http_status = _header(headers, b":status")
    grpc_status = _header(status_block, b"grpc-status")
    message = unquote(_header(status_block, b"grpc-message") or "", errors="replace")
    if grpc_status is None:
        if http_status != "200":
            number = int(http_status) if http_status and http_status.isdigit() else 0
            code = _HTTP_STATUS.get(number, StatusCode.UNKNOWN)
            return GrpcResult(code, f"HTTP status {http_status} without grpc-status", b"")
        return GrpcResult(StatusCode.INTERNAL, "the server sent no grpc-status", b"")
    if not grpc_status.isdigit():
        return GrpcResult(StatusCode.UNKNOWN, f"grpc-status {grpc_status!r} is not a code", b"")
    code = _status(int(grpc_status))
    if code != StatusCode.OK:
        return GrpcResult(code, message, b"")
    try:
        message_bytes = _unframe(body, _header(headers, b"grpc-encoding"))
    except ValueError as exc:
        return GrpcResult(StatusCode.INTERNAL, f"malformed response message: {exc}", b"")
    return GrpcResult(code, message, message_bytes)


def _unframe(body: bytes, encoding: Optional[str]) -> bytes:
    """The one message of a unary response body (5-byte prefix: flag, length)."""
    if len(body) < 5:
        raise ValueError(f"{len(body)} bytes, shorter than a message prefix")
    flag, length = body[0], int.from_bytes(body[1:5], "big")
    if len(body) != 5 + length:
        raise ValueError(f"a {length}-byte message in a {len(body)}-byte body")
    payload = body[5:]
    if flag == 0:
        return payload
    if flag == 1 and encoding in ("gzip", "deflate"):
        try:
            return gzip.decompress(payload) if encoding == "gzip" else zlib.decompress(payload)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{encoding} message does not decompress: {exc}") from exc
    raise ValueError(f"message flag {flag} with grpc-encoding {encoding!r}")
