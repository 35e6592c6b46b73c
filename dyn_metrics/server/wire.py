"""Collecting one request head off the wire, within the byte and field limits.

No sockets and no threads: :class:`HeadReader` is fed the bytes a connection
received and answers with the bytes of the complete head once its empty line
has arrived, or raises :class:`BadRequest` naming the status to reply with.
What the head says is none of its business: http.server reads that
(:mod:`dyn_metrics.server.handler`).

Limits, checked as the bytes arrive so no head is held past them: request line
over ``max_request_line`` bytes -> 414; head over ``max_header_bytes`` bytes
or with more than ``max_headers`` fields -> 431. Empty lines before the request
line are skipped (http.server would answer nothing to them) and bare LF line
ends are tolerated.
"""

import re
from typing import Optional

from .options import ServerOptions

_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")


class BadRequest(Exception):
    """A head that gets ``status`` with the plain-text ``body`` and no further reading."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


class HeadReader:
    """Collects the bytes of one connection until its request head is complete.

    Not thread-safe: one reader per connection, fed by one thread.
    """

    __slots__ = ("_buf", "_scanned", "_max_line", "_max_head", "_max_headers")

    def __init__(self, limits: ServerOptions) -> None:
        self._buf = bytearray()
        self._scanned = 0
        self._max_line = limits.max_request_line
        self._max_head = limits.max_header_bytes
        self._max_headers = limits.max_headers

    def feed(self, data: bytes) -> Optional[bytes]:
        """Add ``data``; return the head (up to its empty line) once complete, else None.

        Raises BadRequest when a limit is exceeded. Bytes after the head are dropped.
        """
        buf = self._buf
        buf += data
        if buf.startswith((b"\r", b"\n")):  # empty lines before the request line are allowed
            del buf[: len(buf) - len(buf.lstrip(b"\r\n"))]
            self._scanned = 0
        nl = buf.find(b"\n", 0, self._max_line + 2)
        if nl < 0 and len(buf) >= self._max_line + 2:
            raise BadRequest(414, "Request line too long")
        if nl >= 0 and len(buf[:nl].rstrip(b"\r")) > self._max_line:
            raise BadRequest(414, "Request line too long")
        end = _HEAD_END_RE.search(buf, max(self._scanned - 3, 0))
        if end is None:
            self._scanned = len(buf)
            if len(buf) > self._max_head:
                raise BadRequest(431, "Request header fields too large")
            return None
        if end.start() > self._max_head or buf.count(b"\n", 0, end.start()) > self._max_headers:
            raise BadRequest(431, "Request header fields too large")
        return bytes(buf[: end.end()])
