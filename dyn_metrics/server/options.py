"""ServerOptions: every setting of the HTTP server in one checked, immutable record.

The address and routes, TLS, Basic auth, and the limits that keep the server up
under hostile clients. :class:`~dyn_metrics.server.app.MetricsServer` builds
one out of its keyword arguments; the loop and the head reader read their limits
there.
"""

import os
import ssl
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional, Union

from ..errors import InvalidValueError
from .auth import Credentials, Password, parse_password

METRICS_PATH = "/metrics"

# What ssl.SSLContext.load_cert_chain accepts as a file name.
FilePath = Union[str, "os.PathLike[str]"]

# Limits that count things: ints only (a float or a bool is refused).
_COUNTS = (
    "max_connections",
    "max_pending",
    "max_queued",
    "max_request_line",
    "max_header_bytes",
    "max_headers",
)


def _check_path(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.startswith("/") or value == METRICS_PATH:
        raise InvalidValueError(
            f"{name}: expected a path starting with '/' other than '/metrics', got {value!r}"
        )


def _check_positive(name: str, value: object, integral: bool) -> None:
    kind = int if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise InvalidValueError(f"{name}: expected a positive number, got {value!r}")


@dataclass(frozen=True)
class ServerOptions:
    """The settings of one :class:`~dyn_metrics.server.app.MetricsServer`.

    Address: ``host`` and ``port`` (0 = an ephemeral port). Routes:
    ``health_path`` and ``live_path`` (``/metrics`` and ``/`` are fixed);
    ``openmetrics`` allows OpenMetrics when the client prefers it.

    TLS: ``certfile``/``keyfile`` (or a ready ``ssl_context``, not both); with
    ``client_cafile`` clients must present a certificate signed by that CA.
    ``basic_auth=(user, password)`` protects every path (left out of ``repr``);
    ``users`` maps further user names to hashed passwords
    (``pbkdf2_sha256$ITER$SALT$HEX``, ``scrypt$N$r$p$SALT$HEX`` or
    ``plain$PASSWORD``, see :mod:`dyn_metrics.server.auth`). With
    ``auth_exempt_probes`` the health and live paths answer without credentials.

    ``scrape_timeout``: seconds a ``/metrics`` request waits for its render
    before it answers 503.

    Limits: at most ``max_connections`` handler threads (and one request at a
    time on an event-loop thread), ``max_pending`` connections still sending
    their request head, ``max_queued`` complete
    requests waiting for a handler thread; a client has ``read_timeout``
    seconds from accept to a complete head (TLS handshake included), a
    response ``write_timeout`` seconds to be sent. A request line over
    ``max_request_line`` bytes gets 414, a head over ``max_header_bytes``
    bytes or with more than ``max_headers`` fields 431 (http.server refuses
    more than 99 fields whatever ``max_headers`` says).

    Checked once, here: a bad value raises InvalidValueError naming the field.
    """

    host: str = "0.0.0.0"
    port: int = 0
    health_path: str = "/health"
    live_path: str = "/live"
    openmetrics: bool = False
    certfile: Optional[FilePath] = None
    keyfile: Optional[FilePath] = None
    client_cafile: Optional[FilePath] = None
    ssl_context: Optional[ssl.SSLContext] = None
    basic_auth: Optional[tuple[str, str]] = field(default=None, repr=False)
    users: Optional[Mapping[str, str]] = field(default=None, repr=False)
    auth_exempt_probes: bool = False
    scrape_timeout: float = 10.0
    max_connections: int = 64
    max_pending: int = 1024
    max_queued: int = 256
    read_timeout: float = 5.0
    write_timeout: float = 10.0
    max_request_line: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.host, str):
            raise InvalidValueError(f"host: expected a string, got {self.host!r}")
        port: object = self.port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidValueError(f"port: expected an int in 0..65535, got {port!r}")
        _check_path("health_path", self.health_path)
        _check_path("live_path", self.live_path)
        _check_positive("read_timeout", self.read_timeout, integral=False)
        _check_positive("write_timeout", self.write_timeout, integral=False)
        _check_positive("scrape_timeout", self.scrape_timeout, integral=False)
        for name in _COUNTS:
            _check_positive(name, getattr(self, name), integral=True)
        auth: object = self.basic_auth
        if auth is not None:
            if (
                not isinstance(auth, (tuple, list))
                or len(auth) != 2
                or not all(isinstance(x, str) for x in auth)
                or ":" in auth[0]
            ):
                raise InvalidValueError(
                    f"basic_auth: expected (user, password) strings, user without ':', got {auth!r}"
                )
            # frozen: the dataclass way to normalise a field once
            object.__setattr__(self, "basic_auth", (auth[0], auth[1]))
        users: object = self.users
        if users is not None:
            if not isinstance(users, Mapping):
                raise InvalidValueError(
                    f"users: expected a mapping of user name to hashed password, got {users!r}"
                )
            for user, spec in users.items():
                if not isinstance(user, str) or not user or ":" in user:
                    raise InvalidValueError(f"users: expected user names without ':', got {user!r}")
                if self.basic_auth is not None and user == self.basic_auth[0]:
                    raise InvalidValueError(f"users: {user!r} is also the basic_auth user")
                try:
                    parse_password(spec)
                except InvalidValueError as e:
                    raise InvalidValueError(f"users[{user!r}]: {e}") from None
            object.__setattr__(self, "users", types.MappingProxyType(dict(users)))
        object.__setattr__(self, "auth_exempt_probes", bool(self.auth_exempt_probes))
        if (self.keyfile or self.client_cafile) and not self.certfile:
            raise InvalidValueError("keyfile and client_cafile need certfile")
        if self.certfile and self.ssl_context is not None:
            raise InvalidValueError("give either certfile or ssl_context, not both")
        object.__setattr__(self, "openmetrics", bool(self.openmetrics))

    def tls_context(self) -> Optional[ssl.SSLContext]:
        """The server's TLS context: ``ssl_context``, one built from the files, or None.

        Built afresh on each call; file errors (OSError, ssl.SSLError) propagate.
        """
        if not self.certfile:
            return self.ssl_context
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.certfile, self.keyfile)
        if self.client_cafile:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=self.client_cafile)
        return ctx

    def credentials(self) -> Optional[Credentials]:
        """The users of ``basic_auth`` and ``users`` together, or None when there is no auth."""
        if self.basic_auth is None and not self.users:
            return None
        users: dict[str, Password] = {}
        if self.basic_auth is not None:
            users[self.basic_auth[0]] = Password("plain", (), b"", self.basic_auth[1].encode())
        for user, spec in (self.users or {}).items():
            users[user] = parse_password(spec)
        return Credentials(users)
