"""One accepted connection, as the event loop keeps it until its request is handed on."""

import selectors

from .sockets import Sock
from .wire import HeadReader


class Conn:
    """A connection: its socket, the client's address (for the log), the reader of its
    request head, the loop's deadline for it, whether its TLS handshake is still to do,
    and the events the selector watches it for (0: not on the selector)."""

    __slots__ = ("sock", "peer", "reader", "deadline", "handshaking", "events")

    def __init__(
        self, sock: Sock, peer: str, reader: HeadReader, deadline: float, handshaking: bool
    ) -> None:
        self.sock, self.peer, self.reader, self.deadline = sock, peer, reader, deadline
        self.handshaking, self.events = handshaking, selectors.EVENT_READ
