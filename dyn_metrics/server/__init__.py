"""The HTTP stack of the system status server: it knows nothing of metrics but a render callable.

What is the standard library's: :mod:`http.server` parses each request line
and its header fields, writes the status lines, headers and error responses,
and answers HEAD (:mod:`~dyn_metrics.server.handler`, a
``BaseHTTPRequestHandler`` run over the request head in memory).

What is ours, and why. http.server's own servers (``HTTPServer``,
``ThreadingHTTPServer``, and prometheus_client's exporter built on them) give
every connection a thread from ``accept()`` on, with no read or write timeout,
and do the TLS handshake inside ``accept()``: a few idle or slow clients pin
every thread, and one idle TLS client stops every scrape. So:

* :mod:`~dyn_metrics.server.loop` -- an event loop accepts, does the
  TLS handshake (non-blocking) and reads the request head
  (:mod:`~dyn_metrics.server.wire`), so a connection costs no thread until its
  head is complete. Handshake and head must be done within ``read_timeout``
  seconds of the accept; a response must be sent within ``write_timeout``.
  Oversized heads get 414 or 431 before http.server sees a byte of them.
* :mod:`~dyn_metrics.server.turns` -- two loop threads take turns running the
  loop; a turn may end with one request to serve on its own thread.
* :mod:`~dyn_metrics.server.pool` -- complete requests run on at most
  ``max_connections`` handler threads, made on demand. At most ``max_pending``
  connections may still be sending their head (past that the oldest is
  dropped) and at most ``max_queued`` requests wait for a thread (past that:
  503 with ``Retry-After: 1``). A flood costs descriptors up to those bounds,
  never threads. Every route but ``/metrics`` (health and live probes) runs on
  a second small pool, so probes never queue behind scrapes.
* :mod:`~dyn_metrics.server.sockets` -- the listening socket, and each answer
  sent in one blocking call whose ``write_timeout`` deadline the loop keeps
  (it shuts a late connection down).
* :mod:`~dyn_metrics.server.flight` -- concurrent scrapes of the same format
  and ``name[]`` set share one render in progress, one render at a time, run
  by the scrape that started it on its own thread; a scrape gets 503
  after ``scrape_timeout`` seconds (a watchdog thread answers for the one whose
  render overran) and a hung render pins that one thread only.
* :mod:`~dyn_metrics.server.auth` -- Basic auth users with hashed passwords
  (PBKDF2-SHA256, scrypt, plain), successful checks cached.
* :mod:`~dyn_metrics.server.app` -- :class:`MetricsServer`: the routes,
  Basic auth and the ``/metrics`` response (negotiation, gzip, ``name[]``
  handed to the render callable).
* :mod:`~dyn_metrics.server.options` -- :class:`ServerOptions`, every setting
  checked once.

Few GIL releases per request. In a process whose other threads are busy,
a thread that releases the GIL (a blocking call, a wait, a handoff to another
thread) waits about ``sys.getswitchinterval()`` per busy thread to run again.
So a plain request that has arrived by its accept is read at once, without a
selector round; the loop thread that read it serves it, handing the loop to
the other loop thread instead of the request to a handler; the render runs on
the thread that sends the answer, with no handoff to a render thread and back;
and the answer leaves in one blocking send.

One request per connection (``Connection: close``). Every request is logged at
DEBUG on the ``dyn_metrics.server`` loggers; nothing is written to stderr.
"""

from .app import MetricsServer
from .options import ServerOptions

__all__ = ["MetricsServer", "ServerOptions"]
