"""HTTP/1.x on the wire: reading one request head, and writing whole responses.

No sockets and no threads: :class:`HeadReader` is fed the bytes a connection
received and answers with a :class:`Request` once the head is complete, or
raises :class:`BadRequest` naming the status to reply with. :func:`response`
and :func:`text_response` build the complete bytes of an answer, which is
always ``Connection: close`` (one request per connection).

Limits: request line over ``max_line`` bytes -> 414; head over ``max_head``
bytes or more than ``max_headers`` fields -> 431; malformed -> 400; HTTP other
than 1.x -> 505. Empty lines before the request line and bare LF line ends
are tolerated; folded header lines are not.
"""

import email.utils
import re
from http import HTTPStatus

_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")


class BadRequest(Exception):
    """A request that gets ``status`` with the plain-text ``body`` and no further reading."""

    def __init__(self, status, body):
        super().__init__(body)
        self.status = status
        self.body = body


class Request:
    """One parsed request head.

    ``method``, ``target`` and ``version`` are the request-line words as str;
    ``headers`` maps lowercase field names to values (repeated fields joined
    with ``", "``). ``unread_body`` is true when the head announces a body,
    which is never read.
    """

    __slots__ = ("method", "target", "version", "headers", "unread_body")

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.unread_body = (
            "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0"
        )


class HeadReader:
    """Collects the bytes of one connection until its request head is complete.

    Not thread-safe: one reader per connection, fed by one thread.
    """

    __slots__ = ("_buf", "_scanned", "_max_line", "_max_head", "_max_headers")

    def __init__(self, max_line, max_head, max_headers):
        self._buf = bytearray()
        self._scanned = 0
        self._max_line = max_line
        self._max_head = max_head
        self._max_headers = max_headers

    def feed(self, data):
        """Add ``data``; return the :class:`Request` once complete, else None. Raises BadRequest."""
        buf = self._buf
        buf += data
        if buf[:1] in (b"\r", b"\n"):  # empty lines before the request line are allowed
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
        if end.start() > self._max_head:
            raise BadRequest(431, "Request header fields too large")
        return self._parse(bytes(buf[: end.start()]).split(b"\n"))

    def _parse(self, lines):
        parts = lines[0].rstrip(b"\r").split(b" ")
        if (
            len(parts) != 3
            or not _TOKEN_RE.fullmatch(parts[0])
            or not _TARGET_RE.fullmatch(parts[1])
        ):
            raise BadRequest(400, "Bad request")
        version = _VERSION_RE.fullmatch(parts[2])
        if version is None:
            raise BadRequest(400, "Bad request")
        if version.group(1) != b"1":
            raise BadRequest(505, "HTTP version not supported")
        if len(lines) - 1 > self._max_headers:
            raise BadRequest(431, "Request header fields too large")
        headers = {}
        for raw in lines[1:]:
            raw = raw.rstrip(b"\r")
            name, sep, value = raw.partition(b":")
            if not sep or not _TOKEN_RE.fullmatch(name):  # also rejects obs-fold
                raise BadRequest(400, "Bad request")
            key = name.decode("ascii").lower()
            value = value.strip(b" \t").decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        method, target = parts[0].decode("ascii"), parts[1].decode("ascii")
        return Request(method, target, parts[2].decode("ascii"), headers)


def response(status, headers, body, head_only=False):
    """The bytes of a ``Connection: close`` response; ``head_only`` leaves the body out.

    ``headers`` is a list of ``(name, value)``; Date and Content-Length are added.
    """
    status = HTTPStatus(status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
    lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def text_response(status, text, extra=(), head_only=False):
    """A :func:`response` with a UTF-8 ``text/plain`` body and the ``extra`` headers."""
    return response(
        status, [("Content-Type", "text/plain; charset=utf-8"), *extra], text.encode(), head_only
    )
