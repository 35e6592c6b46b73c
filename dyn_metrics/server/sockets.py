"""The loop's socket calls: the listening socket, and answers sent under a write deadline.

:func:`listen` binds the server's socket and :func:`accept` takes connections
off it. :class:`Sends` sends each answer in one blocking call, under a write
deadline another thread keeps.

Why blocking: in a busy process every GIL release costs the releasing thread
about ``sys.getswitchinterval()`` times the number of busy threads before it
runs again. A send in timeout mode releases the GIL for a readiness poll and
for each partial send; a blocking send of the whole answer releases it once,
and the client has its last byte when that send returns.

Why the deadline is kept elsewhere: a blocking send cannot time itself out.
:class:`Sends` records each send's deadline; the event loop, which wakes at
least every second anyway, asks :meth:`Sends.next_deadline` how long it may
sleep and calls :meth:`Sends.expire`, which shuts the late sockets down: that
fails their sends, so a client reading a byte at a time holds a handler
thread ``write_timeout`` seconds at most.
"""

import errno
import math
import socket
import ssl
import sys
import threading
import time
from typing import Callable, Optional, Union

Sock = Union[socket.socket, ssl.SSLSocket]
# Whether an accepted socket's file may be non-blocking while Python thinks it blocks.
_INHERITS_FLAGS = not sys.platform.startswith("linux")


def listen(host: str, port: int) -> socket.socket:
    """A non-blocking socket listening on ``host:port``. Raises OSError if the bind fails."""
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


#: Why an accept may fail for every connection alike, for a while.
SHORTAGES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def accept(listener: socket.socket) -> Optional[tuple[socket.socket, str]]:
    """The next connection on ``listener`` and its peer's address; None when none is waiting.

    Raises OSError: for one connection (it is gone), or past a shortage of
    descriptors or memory (the error's ``errno`` in :data:`SHORTAGES`).
    """
    try:
        sock, addr = listener.accept()
    except (BlockingIOError, InterruptedError):
        return None
    return sock, str(addr[0])


def shutdown_both(sock: Sock) -> None:
    """Shut ``sock`` down both ways, which fails a send blocked on it in another thread.

    ``socket.socket.shutdown`` even for TLS: SSLSocket's own would drop its TLS
    object under a thread that is sending with it.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Sends:
    """The sends in progress and their deadlines. Thread-safe.

    ``wake()`` is called when a send starts whose deadline is nearer than
    ``max_sleep``, the longest the loop sleeps without looking here.
    """

    def __init__(self, write_timeout: float, max_sleep: float, wake: Callable[[], None]) -> None:
        self._write_timeout = write_timeout
        self._wake = wake if write_timeout < max_sleep else None
        self._lock = threading.Lock()  # guards _deadlines
        self._deadlines: dict[Sock, float] = {}

    def send(self, sock: Sock, head: bytes, body: bytes) -> None:
        """Send ``head`` then ``body``, blocking; raises OSError if the client goes or is late."""
        with self._lock:
            self._deadlines[sock] = time.monotonic() + self._write_timeout
        if self._wake is not None:
            self._wake()
        try:
            # Elsewhere an accepted socket may inherit the listener's non-blocking flag
            # behind Python's back; Linux's does not. A quick call, yet a GIL release.
            if _INHERITS_FLAGS or sock.gettimeout() is not None:
                sock.settimeout(None)
            if isinstance(sock, ssl.SSLSocket) or not hasattr(sock, "sendmsg"):
                sock.sendall(head + body)
                return
            # One write of both (two would meet Nagle's delay), without copying the body.
            sent = sock.sendmsg([head, body])
            if sent < len(head):  # cut short by a signal
                sock.sendall(head[sent:])
                sent = len(head)
            if sent - len(head) < len(body):
                sock.sendall(memoryview(body)[sent - len(head) :])
        finally:
            with self._lock:
                self._deadlines.pop(sock, None)

    def next_deadline(self) -> float:
        """The nearest deadline of a send in progress (``time.monotonic()``), or infinity."""
        with self._lock:
            return min(self._deadlines.values(), default=math.inf)

    def expire(self, now: float) -> None:
        """Shut down every socket whose send is past its deadline at ``now``."""
        # Under the lock: a sender removes its socket under it before closing it,
        # so a descriptor reused by a new connection is never shut down here.
        with self._lock:
            late = [sock for sock, deadline in self._deadlines.items() if deadline <= now]
            for sock in late:
                del self._deadlines[sock]
                shutdown_both(sock)
