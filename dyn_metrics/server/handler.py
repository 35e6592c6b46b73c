"""One request through http.server: its head in from memory, its whole answer out to memory.

:class:`RequestHandler` is an :class:`http.server.BaseHTTPRequestHandler` that
never touches a socket. The loop has read the head within its limits
(:mod:`dyn_metrics.server.wire`); here http.server parses the request line and
the header fields, writes status lines, headers and error responses
(``send_error``), and the app (``app(Request) -> Response``) decides the answer.
HEAD gets GET's headers, ``Content-Length`` included, and no body. Every
answer is ``Connection: close`` (one request per connection). The bytes come
back in an :class:`Answer`, which the pool thread sends under the write
deadline; or an app answers from another thread through ``Request.late``
(the answer goes to the handler's ``late`` callback) and then raises
:class:`Answered`, which passes out of :meth:`RequestHandler.run`.

Refused on top of what http.server refuses (it is lenient where a hostile
client could profit, and answers HTTP/0.9 without a status line): a request
line other than ``METHOD SP TARGET SP HTTP/d.d`` -> 400, HTTP other than 1.x
-> 505, a header line that is folded, lacks its colon or has a bad name -> 400.
No body is ever read, so no ``100 Continue`` is sent.

Logging goes to this module's DEBUG logger, never to stderr.
"""

import io
import logging
import re
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Callable, NamedTuple, Optional, Union

_log = logging.getLogger(__name__)

_REQUEST_LINE_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+ HTTP/([0-9])\.[0-9]")
_FIELD_LINE_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r]*")

TEXT_PLAIN = "text/plain; charset=utf-8"


class Request(NamedTuple):
    """What the app sees of a request.

    ``method`` and ``target`` are the request line's words as sent; ``headers``
    maps lowercase field names to values (a repeated field's values joined
    with ``", "``).
    """

    method: str
    target: str
    headers: Mapping[str, str]
    #: ``late(response)`` answers the request from another thread instead; the
    #: app then raises :class:`Answered`. None where the caller offers no such path.
    late: Optional[Callable[["Response"], None]] = None


class Response(NamedTuple):
    """The app's answer: status, ``(name, value)`` headers, and the body GET would get.

    Content-Length, Connection, Date and Server are added by the handler.
    """

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


class Answer(NamedTuple):
    """A finished exchange: the bytes to send and what the loop needs to know about them.

    ``head`` is the status line and headers (an error answer's body too),
    ``body`` the app's body, kept apart so a large exposition shared by many
    scrapes is sent from the one copy. ``linger`` is true when the client may
    still be sending (a body was announced, or the head was refused), so the
    connection is drained before it is closed and unread input cannot reset
    the answer.
    """

    status: int
    head: bytes
    body: bytes
    request_line: str
    linger: bool

    @property
    def data(self) -> bytes:
        """Every byte of the answer (a copy: the loop sends ``head`` and ``body``)."""
        return self.head + self.body


App = Callable[[Request], Response]


class Answered(Exception):
    """Raised by an app whose request ``Request.late`` answered: nothing more is sent."""


def plain(status: int, text: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
    """A :class:`Response` with a UTF-8 ``text/plain`` body and the extra ``headers``."""
    return Response(status, [("Content-Type", TEXT_PLAIN), *headers], text.encode())


def _refusal(head: bytes) -> Optional[tuple[int, str]]:
    """What is wrong with a head http.server accepted, as (status, text), or None."""
    lines = head.rstrip(b"\r\n").split(b"\n")
    line = _REQUEST_LINE_RE.fullmatch(lines[0].rstrip(b"\r"))
    if line is None:
        return 400, "Bad request"
    if line.group(1) != b"1":
        return 505, "HTTP version not supported"
    if not all(_FIELD_LINE_RE.fullmatch(raw.rstrip(b"\r")) for raw in lines[1:]):
        return 400, "Bad request"  # also an obs-fold line, which starts with a space
    return None


def _no_app(request: Request) -> Response:  # for the loop's refusals, which never reach an app
    return plain(500, "Internal error")


class RequestHandler(BaseHTTPRequestHandler):
    """Parses ``head`` with http.server, asks ``app``, and returns the answer's bytes.

    Made per request on a handler thread, used once through :meth:`run`.
    ``peer`` is the client's address, for the log only. With ``late``, the
    app's request offers ``Request.late``: ``late(answer)`` gets the bytes of
    the response given there, on the thread that gave it.
    """

    protocol_version = "HTTP/1.1"
    # Assumed for a request line without a version, so every answer has a status
    # line (http.server writes none for HTTP/0.9); such a request is refused anyway.
    default_request_version = "HTTP/1.0"
    server_version = "dyn_metrics"
    error_message_format = "%(explain)s"
    error_content_type = TEXT_PLAIN

    def __init__(
        self, head: bytes, peer: str, app: App, late: Optional[Callable[[Answer], None]] = None
    ) -> None:
        # Not BaseRequestHandler.__init__, which would handle a socket at once:
        # the head is in memory and the answer goes to memory.
        self._head = head
        self._peer = peer
        self._app = app
        self._late = late
        self._out = io.BytesIO()
        self._status = 0
        self._body = b""
        self._linger = True
        self.rfile = io.BytesIO(head)
        self.wfile = self._out
        self.raw_requestline = b""
        self.requestline = ""
        self.request_version = self.default_request_version
        self.command = ""

    def run(self) -> Answer:
        """Handle the request once; never raises for anything the client sent."""
        self.handle()
        return Answer(self._status, self.output(), self._body, self.requestline, self._linger)

    def output(self) -> bytes:
        """The bytes written so far (not the app's body, which :meth:`run` returns apart)."""
        return self._out.getvalue()

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline()
        if not self.parse_request():  # http.server has answered, except to a blank line
            if not self._status:
                self.send_error(400, "Bad request")
            return
        refusal = _refusal(self._head)
        if refusal is not None:
            self.request_version = self.default_request_version  # e.g. HTTP/0.9 gets 505
            self.send_error(*refusal)
            return
        headers: dict[str, str] = {}
        for name in self.headers.keys():
            key = name.lower()
            if key not in headers:
                headers[key] = ", ".join(self.headers.get_all(name, ()))
        # A body is never read: drain whatever the client sends after the head.
        self._linger = (
            "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0"
        )
        # The target as sent: http.server's self.path folds a leading "//".
        target = self.requestline.split(" ")[1]
        late = None if self._late is None else self._reply_late
        self.reply(self._app(Request(self.command, target, headers, late)))

    def _reply_late(self, response: Response) -> None:
        """``Request.late``: ``response`` as :meth:`reply` writes it, handed to ``late``."""
        other = RequestHandler(b"", self._peer, _no_app)
        other.command, other.requestline = self.command, self.requestline
        other.request_version = self.request_version
        other.reply(response)
        assert self._late is not None
        answer = Answer(other._status, other.output(), other._body, self.requestline, self._linger)
        self._late(answer)

    def reply(self, response: Response) -> None:
        """Write ``response`` (no body for HEAD) with Content-Length and ``Connection: close``."""
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self._body = response.body

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        self._status = code
        super().send_response(code, message)

    def send_error(
        self, code: int, message: Optional[str] = None, explain: Optional[str] = None
    ) -> None:
        # http.server's own wording quotes the client's bytes ("Bad request version
        # ('FTP/1.0')") and would put it in the status line: the standard reason
        # phrase goes there instead, the wording into the plain-text body.
        super().send_error(code, None, message or explain)

    def handle_expect_100(self) -> bool:
        return True  # the body is never read, so the client is not invited to send it

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def address_string(self) -> str:
        return self._peer

    def log_request(self, code: Union[int, str] = "-", size: Union[int, str] = "-") -> None:
        pass  # the loop logs each exchange once, with the size it sends

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("%s: " + format, self._peer, *args)


def refuse(status: int, text: str) -> bytes:
    """The bytes of an error response the loop sends itself (414 or 431 while reading)."""
    handler = RequestHandler(b"", "", _no_app)
    handler.send_error(status, text)
    return handler.output()


def busy() -> bytes:
    """The bytes of the 503 the loop sends when no handler thread can take a request."""
    handler = RequestHandler(b"", "", _no_app)
    handler.reply(plain(503, "Server busy", [("Retry-After", "1")]))
    return handler.output() + handler._body
