"""A minimal HTTP/2 client (RFC 9113): one request on one stream of one connection.

``Connection`` sends the preface and its SETTINGS, acknowledges the server's,
answers PING, honours GOAWAY and RST_STREAM, and keeps both flow-control
windows: DATA is sent within the peer's maximum frame size and the smaller of
the connection and stream windows (waiting for WINDOW_UPDATE when either is
exhausted), and every DATA frame received is credited back with
WINDOW_UPDATE. Every socket operation is bounded by one deadline
(``time.monotonic()`` seconds).

Failures raise: ``DeadlineError`` when the deadline passes,
``ConnectionClosedError`` when the peer goes away before the response is
complete (GOAWAY, EOF, a socket error), ``StreamResetError`` for RST_STREAM
(``.code`` is the HTTP/2 error code) and ``ProtocolError`` for a frame this
end cannot accept (HPACK errors included).
"""

import select
import socket
import struct
import time
from collections.abc import Sequence
from typing import NamedTuple, Optional

from ..errors import MetricsError
from .hpack import Decoder, Encoder, Header, HpackError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 1, 2, 3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 4, 5, 6
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x6, 0x7, 0x8, 0x9
ENHANCE_YOUR_CALM, INADEQUATE_SECURITY = 0xB, 0xC
DEFAULT_WINDOW, DEFAULT_MAX_FRAME, MAX_WINDOW = 65535, 16384, (1 << 31) - 1
STREAM_ID = 1  # the only stream a Connection opens

# What this end advertises (with no server push): the receive window of the
# stream and of the connection.
LOCAL_WINDOW = 1 << 24


class Http2Error(MetricsError):
    """An HTTP/2 exchange failed; the subclass says how."""


class DeadlineError(Http2Error):
    """The deadline passed before the response was complete."""


class ConnectionClosedError(Http2Error):
    """The server closed the connection (or it broke) before the response was complete."""


class ProtocolError(Http2Error):
    """The server sent something HTTP/2 does not allow."""


class StreamResetError(Http2Error):
    """The server reset the stream; ``.code`` is the HTTP/2 error code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Frame(NamedTuple):
    type: int
    flags: int
    stream_id: int
    payload: bytes


class Response(NamedTuple):
    headers: list[Header]
    body: bytes
    trailers: list[Header]  # empty for a response whose HEADERS ended the stream


def encode_frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-byte header (length, type, flags, stream id) and the payload."""
    return (
        struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream_id) + payload
    )


class Connection:
    """One HTTP/2 connection over ``sock`` (connected; TLS already negotiated)."""

    def __init__(self, sock: socket.socket, deadline: float, max_body: int = 64 << 20) -> None:
        self.sock = sock
        self.deadline = deadline
        self.max_body = max_body
        self._buf = bytearray()
        self._decoder = Decoder()
        self._encoder = Encoder()
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.peer_initial_window = DEFAULT_WINDOW
        self.send_window = DEFAULT_WINDOW  # connection level
        self.stream_send_window = DEFAULT_WINDOW
        self.goaway: Optional[tuple[int, int, bytes]] = None  # last stream, code, debug
        self.settings_acked = False
        self._headers: list[list[Header]] = []
        self._body = bytearray()
        self._ended = False

    # --- socket I/O, bounded by the deadline -------------------------------

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineError("deadline exceeded")
        return left

    def _send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(self._remaining())
            self.sock.sendall(data)
        except socket.timeout:
            raise DeadlineError("deadline exceeded while sending") from None
        except OSError as exc:
            raise ConnectionClosedError(f"sending failed: {exc}") from exc

    def _recv_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                self.sock.settimeout(self._remaining())
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except socket.timeout:
                raise DeadlineError("deadline exceeded while waiting for the server") from None
            except OSError as exc:
                raise ConnectionClosedError(f"receiving failed: {exc}") from exc
            if not chunk:
                raise ConnectionClosedError(self._closed_text("the server closed the connection"))
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _closed_text(self, text: str) -> str:
        if self.goaway is not None:
            last, code, debug = self.goaway
            text += f" after GOAWAY (error code {code}, last stream {last}"
            text += f", {debug.decode('utf-8', 'replace')!r})" if debug else ")"
        return text

    def _readable(self) -> bool:
        """Whether a frame (or part of one) is waiting, without blocking."""
        if self._buf:
            return True
        pending = getattr(self.sock, "pending", None)
        if pending is not None and pending():
            return True
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True  # let the next read report the failure

    def read_frame(self) -> Frame:
        """The next frame; refuses one larger than this end's maximum (16384)."""
        header = self._recv_exact(9)
        length = int.from_bytes(header[:3], "big")
        ftype, flags, stream_id = struct.unpack(">BBI", header[3:])
        if length > DEFAULT_MAX_FRAME:
            raise ProtocolError(f"frame of {length} bytes exceeds the {DEFAULT_MAX_FRAME} allowed")
        return Frame(ftype, flags, stream_id & MAX_WINDOW, self._recv_exact(length))

    # --- the exchange -------------------------------------------------------

    def request(self, headers: Sequence[Header], body: bytes) -> Response:
        """Send one request (HEADERS, then ``body`` as DATA) and read its whole response."""
        opening = PREFACE + encode_frame(SETTINGS, 0, 0, self._settings_payload())
        if LOCAL_WINDOW > DEFAULT_WINDOW:  # open the connection window as wide as the stream's
            opening += self._window_update(0, LOCAL_WINDOW - DEFAULT_WINDOW)
        self._send(opening)
        self._send_headers(self._encoder.encode(headers), end_stream=not body)
        view = memoryview(body)
        while view and not self._ended:
            window = min(self.send_window, self.stream_send_window, self.peer_max_frame)
            if window <= 0 or self._readable():
                self._handle(self.read_frame())
                continue
            chunk = bytes(view[:window])
            view = view[window:]
            self.send_window -= len(chunk)
            self.stream_send_window -= len(chunk)
            self._send(encode_frame(DATA, 0 if view else END_STREAM, STREAM_ID, chunk))
        while not self._ended:
            self._handle(self.read_frame())
        if not self._headers:
            raise ProtocolError("the stream ended without response headers")
        trailers = self._headers[1] if len(self._headers) > 1 else []
        return Response(self._headers[0], bytes(self._body), trailers)

    def close(self, cancel: bool = False) -> None:
        """Send GOAWAY (best effort; RST_STREAM CANCEL first if ``cancel``) and close."""
        frames = (
            encode_frame(RST_STREAM, 0, STREAM_ID, struct.pack(">I", CANCEL)) if cancel else b""
        )
        frames += encode_frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR))
        try:
            self.sock.settimeout(0.5)
            self.sock.sendall(frames)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def _settings_payload() -> bytes:
        settings = ((SETTINGS_ENABLE_PUSH, 0), (SETTINGS_INITIAL_WINDOW_SIZE, LOCAL_WINDOW))
        return b"".join(struct.pack(">HI", key, value) for key, value in settings)

    @staticmethod
    def _window_update(stream_id: int, increment: int) -> bytes:
        return encode_frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))

    def _send_headers(self, block: bytes, end_stream: bool) -> None:
        size = self.peer_max_frame
        fragments = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
        out = bytearray()
        for i, fragment in enumerate(fragments):
            flags = END_HEADERS if i == len(fragments) - 1 else 0
            if i == 0:
                out += encode_frame(HEADERS, flags | (END_STREAM if end_stream else 0), 1, fragment)
            else:
                out += encode_frame(CONTINUATION, flags, STREAM_ID, fragment)
        self._send(bytes(out))

    # --- frames from the server --------------------------------------------

    def _handle(self, frame: Frame) -> None:
        ftype, flags, stream_id, payload = frame
        if stream_id not in (0, STREAM_ID) and ftype in (DATA, HEADERS, CONTINUATION):
            raise ProtocolError(f"frame type {ftype} on stream {stream_id}, never opened")
        if ftype == DATA:
            self._on_data(flags, stream_id, payload)
        elif ftype == HEADERS:
            self._on_headers(frame)
        elif ftype == SETTINGS:
            self._on_settings(flags, stream_id, payload)
        elif ftype == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif ftype == PING:
            if stream_id != 0 or len(payload) != 8:
                raise ProtocolError(f"PING of {len(payload)} bytes on stream {stream_id}")
            if not flags & ACK:
                self._send(encode_frame(PING, ACK, 0, payload))
        elif ftype == RST_STREAM:
            if len(payload) != 4 or stream_id == 0:
                raise ProtocolError(f"RST_STREAM of {len(payload)} bytes on stream {stream_id}")
            if stream_id == STREAM_ID:
                code = int.from_bytes(payload, "big")
                raise StreamResetError(f"the server reset the stream (error code {code})", code)
        elif ftype == GOAWAY:
            if len(payload) < 8 or stream_id != 0:
                raise ProtocolError(f"GOAWAY of {len(payload)} bytes on stream {stream_id}")
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & MAX_WINDOW, code, payload[8:])
            if self.goaway[0] < STREAM_ID:  # our stream was never processed
                raise ConnectionClosedError(self._closed_text("the server refused the stream"))
        elif ftype == PUSH_PROMISE:
            raise ProtocolError("PUSH_PROMISE although push was disabled")
        elif ftype == CONTINUATION:
            raise ProtocolError("CONTINUATION without HEADERS before it")
        # PRIORITY and unknown frame types are ignored (RFC 9113 section 4.1).

    def _strip_padding(self, flags: int, payload: bytes, what: str) -> bytes:
        if not flags & PADDED:
            return payload
        if not payload or payload[0] >= len(payload):
            raise ProtocolError(f"{what} padding longer than the frame")
        return payload[1 : len(payload) - payload[0]]

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != STREAM_ID or not self._headers:
            raise ProtocolError("DATA before response headers")
        # The whole payload, padding included, counts against flow control.
        if payload:
            self._send(self._window_update(0, len(payload)) + self._window_update(1, len(payload)))
        self._body += self._strip_padding(flags, payload, "DATA")
        if len(self._body) > self.max_body:
            raise ProtocolError(f"response body exceeds {self.max_body} bytes")
        if flags & END_STREAM:
            self._ended = True

    def _on_headers(self, frame: Frame) -> None:
        ftype, flags, stream_id, payload = frame
        if stream_id != STREAM_ID:
            raise ProtocolError("HEADERS on stream 0")
        block = self._strip_padding(flags, payload, "HEADERS")
        if flags & PRIORITY_FLAG:
            block = block[5:]
        end_stream = bool(flags & END_STREAM)
        while not flags & END_HEADERS:  # CONTINUATION frames must follow, nothing else
            ftype, flags, stream_id, payload = self.read_frame()
            if ftype != CONTINUATION or stream_id != STREAM_ID:
                raise ProtocolError(f"frame type {ftype} interrupts a header block")
            block += payload
            if len(block) > 1 << 20:
                raise ProtocolError("header block exceeds 1 MiB")
        try:
            headers = self._decoder.decode(block)
        except HpackError as exc:
            raise ProtocolError(f"undecodable header block: {exc}") from exc
        if self._headers and not end_stream:
            raise ProtocolError("trailers without END_STREAM")
        status = [v for k, v in headers if k == b":status"]
        if not self._headers and status and status[0].startswith(b"1"):
            return  # an informational (1xx) response: the real one follows
        self._headers.append(headers)
        self._ended = end_stream

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0 or len(payload) % 6 or (flags & ACK and payload):
            raise ProtocolError(f"SETTINGS of {len(payload)} bytes on stream {stream_id}")
        if flags & ACK:
            self.settings_acked = True
            return
        for offset in range(0, len(payload), 6):
            key, value = struct.unpack(">HI", payload[offset : offset + 6])
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ProtocolError(f"initial window size {value} exceeds 2**31-1")
                # Section 6.9.2: the change applies to open streams too.
                self.stream_send_window += value - self.peer_initial_window
                self.peer_initial_window = value
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME <= value <= (1 << 24) - 1:
                    raise ProtocolError(f"max frame size {value} outside 16384..16777215")
                self.peer_max_frame = value
            elif key == SETTINGS_ENABLE_PUSH and value > 1:
                raise ProtocolError(f"enable push {value} is neither 0 nor 1")
        self._send(encode_frame(SETTINGS, ACK, 0))

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ProtocolError(f"WINDOW_UPDATE of {len(payload)} bytes")
        increment = int.from_bytes(payload, "big") & MAX_WINDOW
        if increment == 0:
            raise ProtocolError(f"WINDOW_UPDATE of 0 on stream {stream_id}")
        if stream_id == 0:
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise ProtocolError("connection window exceeds 2**31-1")
        elif stream_id == STREAM_ID:
            self.stream_send_window += increment
            if self.stream_send_window > MAX_WINDOW:
                raise ProtocolError("stream window exceeds 2**31-1")
