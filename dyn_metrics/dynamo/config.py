"""The system status server's configuration, read from ``DYN_*`` variables in one place.

:meth:`SystemConfig.from_env` is the only code in the package that reads the
environment for the server. It mirrors Dynamo's ``RuntimeConfig`` (config.rs):

* ``DYN_SYSTEM_PORT``: unset or negative (``-1``) = off, ``0`` = ephemeral, ``1..65535``;
* ``DYN_SYSTEM_HOST``: bind address, default ``0.0.0.0`` (``[::1]`` is accepted);
* ``DYN_SYSTEM_HEALTH_PATH`` / ``DYN_SYSTEM_LIVE_PATH``: default ``/health`` /
  ``/live``; must start with ``/``;
* ``DYN_SYSTEM_STARTING_HEALTH_STATUS``: exactly ``ready`` or ``notready`` (default);
* ``DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS``: JSON array of strings; deprecated
  (a warning is logged) but honoured by the health model;
* ``DYN_SYSTEM_ENABLED``: deprecated and ignored (a warning is logged);
* ``DYN_SYSTEM_OPENMETRICS``: boolean, default false; allows OpenMetrics on ``/metrics``;
* ``DYN_HEALTH_CHECK_ENABLED``: boolean, default false; canary mode of the health model;
* ``DYN_SYSTEM_TLS_CERT_FILE`` / ``DYN_SYSTEM_TLS_KEY_FILE``: serve HTTPS with this
  certificate chain and key (the key may be in the certificate file); loaded once
  here, so a file that cannot be used is a bad value;
* ``DYN_SYSTEM_TLS_CLIENT_CA_FILE``: clients must present a certificate signed by
  this CA (needs the certificate file);
* ``DYN_SYSTEM_BASIC_AUTH_FILE``: Basic auth users, one ``user:HASH`` a line (blank
  lines and ``#`` comments skipped), ``HASH`` one of ``pbkdf2_sha256$ITER$SALT$HEX``,
  ``scrypt$N$r$p$SALT$HEX`` or ``plain$PASSWORD``; read once, here;
* ``DYN_SYSTEM_AUTH_EXEMPT_PROBES``: boolean, default false; health and live answer
  without credentials (by default every route needs them);
* ``DYN_SYSTEM_SCRAPE_TIMEOUT``: seconds a scrape waits for its render before 503,
  a positive finite number, default 10;
* ``DYN_SYSTEM_SELF_METRICS``: boolean, default false; adds the server's own
  ``dyn_metrics_scrape_*`` metrics to the exposition.

Boolean words are ``1/true/on/yes`` and ``0/false/off/no`` in any case. An empty
value counts as unset. Dynamo parses the port as a signed 16-bit integer, so
32768 and above silently disable its server; dyn_metrics accepts the full range.

On a value that cannot be used Dynamo silently falls back to the default
configuration, which leaves the server off. dyn_metrics falls back the same way
but logs one ERROR line on the ``dyn_metrics.dynamo.config`` logger naming the
variable, the value and what was expected; with ``strict=True`` it raises
:class:`~dyn_metrics.errors.ConfigError` with that message instead.
"""

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Literal, NoReturn, Optional, TypedDict

from ..errors import ConfigError

_log = logging.getLogger(__name__)

PORT = "DYN_SYSTEM_PORT"
HOST = "DYN_SYSTEM_HOST"
HEALTH_PATH = "DYN_SYSTEM_HEALTH_PATH"
LIVE_PATH = "DYN_SYSTEM_LIVE_PATH"
STARTING_HEALTH_STATUS = "DYN_SYSTEM_STARTING_HEALTH_STATUS"
USE_ENDPOINT_HEALTH_STATUS = "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS"
ENABLED = "DYN_SYSTEM_ENABLED"
OPENMETRICS = "DYN_SYSTEM_OPENMETRICS"
HEALTH_CHECK_ENABLED = "DYN_HEALTH_CHECK_ENABLED"
TLS_CERT_FILE = "DYN_SYSTEM_TLS_CERT_FILE"
TLS_KEY_FILE = "DYN_SYSTEM_TLS_KEY_FILE"
TLS_CLIENT_CA_FILE = "DYN_SYSTEM_TLS_CLIENT_CA_FILE"
BASIC_AUTH_FILE = "DYN_SYSTEM_BASIC_AUTH_FILE"
AUTH_EXEMPT_PROBES = "DYN_SYSTEM_AUTH_EXEMPT_PROBES"
SCRAPE_TIMEOUT = "DYN_SYSTEM_SCRAPE_TIMEOUT"
SELF_METRICS = "DYN_SYSTEM_SELF_METRICS"

_TRUE = frozenset(("1", "true", "on", "yes"))
_FALSE = frozenset(("0", "false", "off", "no"))
_STATUSES = ("ready", "notready")
_PORT_RE = re.compile(r"-?[0-9]+")
# A path must be usable verbatim as a route: no query, fragment or whitespace.
_PATH_RE = re.compile(r"/[^\s?#]*")


# Field names and defaults, in the order of SystemConfig's parameters.
_FIELDS: dict[str, object] = {
    "port": None,
    "host": "0.0.0.0",
    "health_path": "/health",
    "live_path": "/live",
    "starting_health_status": "notready",
    "use_endpoint_health_status": (),
    "openmetrics": False,
    "health_check_enabled": False,
    "tls_cert_file": None,
    "tls_key_file": None,
    "tls_client_ca_file": None,
    "users": (),
    "auth_exempt_probes": False,
    "scrape_timeout": 10.0,
    "self_metrics": False,
}


class SystemConfig:
    """Settings of the system status server; ``port=None`` means the server is off.

    Construct it directly (fields are validated; bad values raise
    :class:`~dyn_metrics.errors.ConfigError`) or with :meth:`from_env`.
    Immutable, so safe to share between threads. (A plain class rather than
    a dataclass: ``dataclasses`` alone would cost a quarter of the package's
    import time.)
    """

    __slots__ = tuple(_FIELDS)

    port: Optional[int]
    host: str
    health_path: str
    live_path: str
    starting_health_status: str
    use_endpoint_health_status: tuple[str, ...]
    openmetrics: bool
    health_check_enabled: bool
    tls_cert_file: Optional[str]
    tls_key_file: Optional[str]
    tls_client_ca_file: Optional[str]
    users: tuple[tuple[str, str], ...]
    auth_exempt_probes: bool
    scrape_timeout: float
    self_metrics: bool

    def __init__(
        self,
        port: Optional[int] = None,
        host: str = "0.0.0.0",
        health_path: str = "/health",
        live_path: str = "/live",
        starting_health_status: str = "notready",
        use_endpoint_health_status: Sequence[str] = (),
        openmetrics: bool = False,
        health_check_enabled: bool = False,
        tls_cert_file: Optional[str] = None,
        tls_key_file: Optional[str] = None,
        tls_client_ca_file: Optional[str] = None,
        users: Sequence[tuple[str, str]] = (),
        auth_exempt_probes: bool = False,
        scrape_timeout: float = 10.0,
        self_metrics: bool = False,
    ) -> None:
        if port is not None and (port.__class__ is not int or not 0 <= port <= 65535):
            raise ConfigError(f"port: expected None or an int in 0..65535, got {port!r}")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"host: expected a non-empty string, got {host!r}")
        for field, value in (("health_path", health_path), ("live_path", live_path)):
            problem = _path_problem(value)
            if problem:
                raise ConfigError(f"{field}: expected {problem}, got {value!r}")
        if starting_health_status not in _STATUSES:
            raise ConfigError(
                "starting_health_status: expected 'ready' or 'notready', "
                f"got {starting_health_status!r}"
            )
        names = use_endpoint_health_status
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ConfigError(
                f"use_endpoint_health_status: expected a sequence of strings, got {names!r}"
            )
        files = (
            ("tls_cert_file", tls_cert_file),
            ("tls_key_file", tls_key_file),
            ("tls_client_ca_file", tls_client_ca_file),
        )
        for attr, file in files:
            if file is not None and (not isinstance(file, str) or not file):
                raise ConfigError(f"{attr}: expected None or a file name, got {file!r}")
        if (tls_key_file or tls_client_ca_file) and not tls_cert_file:
            raise ConfigError("tls_key_file and tls_client_ca_file: expected tls_cert_file too")
        given: object = users
        pairs = None if isinstance(given, str) else tuple(users)
        if pairs is None or not all(
            isinstance(p, tuple)
            and len(p) == 2
            and isinstance(p[0], str)
            and isinstance(p[1], str)
            and p[0]
            and ":" not in p[0]
            for p in pairs
        ):
            shown = [u[0] if isinstance(u, tuple) and u else u for u in users]
            raise ConfigError(
                "users: expected (user, hashed password) string pairs, user without ':', "
                f"got users {shown!r}"
            )
        if len({u for u, _ in pairs}) != len(pairs):
            raise ConfigError(f"users: expected distinct user names, got {[u for u, _ in pairs]!r}")
        if pairs:
            from ..server.auth import parse_password  # only when auth is configured

            for user, spec in pairs:
                try:
                    parse_password(spec)
                except ValueError as e:
                    raise ConfigError(f"users[{user!r}]: {e}") from None
        timeout: object = scrape_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ConfigError(
                f"scrape_timeout: expected a positive finite number of seconds, got {timeout!r}"
            )
        values: tuple[object, ...] = (
            port,
            host,
            health_path,
            live_path,
            starting_health_status,
            tuple(names),
            bool(openmetrics),
            bool(health_check_enabled),
            tls_cert_file,
            tls_key_file,
            tls_client_ca_file,
            pairs,
            bool(auth_exempt_probes),
            float(timeout),
            bool(self_metrics),
        )
        for attr, stored in zip(_FIELDS, values):
            object.__setattr__(self, attr, stored)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"SystemConfig is immutable; cannot set {name!r}")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, field) for field in _FIELDS)

    def as_dict(self) -> dict[str, object]:
        """The fields as a ``{name: value}`` dict."""
        return dict(zip(_FIELDS, self._values()))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        # Users by name only: a password may be stored as plain$PASSWORD.
        shown = {f: getattr(self, f) for f in _FIELDS}
        shown["users"] = tuple(user for user, _ in self.users)
        fields = ", ".join(f"{f}={v!r}" for f, v in shown.items())
        return f"SystemConfig({fields})"

    @property
    def enabled(self) -> bool:
        """True when the server should run, i.e. a port is configured."""
        return self.port is not None

    @classmethod
    def from_env(
        cls, environ: Optional[Mapping[str, str]] = None, *, strict: bool = False
    ) -> "SystemConfig":
        """Read the ``DYN_*`` variables (``os.environ`` by default) into a config.

        A bad value logs one ERROR line and returns ``SystemConfig()`` (server
        off), as Dynamo falls back to its defaults; ``strict=True`` raises
        :class:`~dyn_metrics.errors.ConfigError` with the same message instead.
        Deprecated variables that are set log a WARNING.
        """
        env = os.environ if environ is None else environ
        try:
            return cls(**_parse(env))
        except ConfigError as e:
            if strict:
                raise
            _log.error("%s; using the default system config (server off)", e)
            return cls()


class _Parsed(TypedDict, total=False):
    """The keyword arguments of ``SystemConfig`` that the environment sets."""

    port: Optional[int]
    host: str
    health_path: str
    live_path: str
    starting_health_status: str
    use_endpoint_health_status: tuple[str, ...]
    openmetrics: bool
    health_check_enabled: bool
    tls_cert_file: Optional[str]
    tls_key_file: Optional[str]
    tls_client_ca_file: Optional[str]
    users: tuple[tuple[str, str], ...]
    auth_exempt_probes: bool
    scrape_timeout: float
    self_metrics: bool


def _get(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name)
    return value if value else None


def _bad(name: str, value: str, expected: str) -> ConfigError:
    return ConfigError(f"{name}={value!r}: expected {expected}")


def _path_problem(value: object) -> Optional[str]:
    if not isinstance(value, str) or not _PATH_RE.fullmatch(value):
        return "a path starting with '/' without whitespace, '?' or '#'"
    if value == "/metrics":
        return "a path other than '/metrics'"
    return None


def _parse_bool(env: Mapping[str, str], name: str) -> bool:
    value = _get(env, name)
    if value is None:
        return False
    word = value.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _bad(name, value, "one of 1/true/on/yes or 0/false/off/no")


def _parse(env: Mapping[str, str]) -> _Parsed:
    """Return the keyword arguments of ``SystemConfig``; raise ConfigError on a bad value."""
    out: _Parsed = {}
    value = _get(env, PORT)
    if value is not None:
        port = int(value) if _PORT_RE.fullmatch(value) else None
        if port is None or port > 65535:
            raise _bad(PORT, value, "an integer in 0..65535 (0 = ephemeral), or negative for off")
        # Any negative value turns the server off, as in Dynamo.
        out["port"] = None if port < 0 else port
    value = _get(env, HOST)
    if value is not None:
        # Accept the bracketed IPv6 spelling people copy from URLs.
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        if not value or value != value.strip():
            raise _bad(HOST, env[HOST], "a host name or IP address")
        out["host"] = value
    paths: tuple[tuple[str, Literal["health_path", "live_path"]], ...] = (
        (HEALTH_PATH, "health_path"),
        (LIVE_PATH, "live_path"),
    )
    for name, field in paths:
        value = _get(env, name)
        if value is not None:
            problem = _path_problem(value)
            if problem:
                raise _bad(name, value, problem)
            out[field] = value
    value = _get(env, STARTING_HEALTH_STATUS)
    if value is not None:
        if value not in _STATUSES:
            raise _bad(STARTING_HEALTH_STATUS, value, "'ready' or 'notready'")
        out["starting_health_status"] = value
    value = _get(env, USE_ENDPOINT_HEALTH_STATUS)
    if value is not None:
        _log.warning(
            "%s is deprecated; register health check targets instead", USE_ENDPOINT_HEALTH_STATUS
        )
        try:
            import json  # only when the deprecated variable is set

            names = json.loads(value)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _bad(
                USE_ENDPOINT_HEALTH_STATUS, value, 'a JSON array of strings, e.g. ["generate"]'
            )
        out["use_endpoint_health_status"] = tuple(names)
    if _get(env, ENABLED) is not None:
        _log.warning("%s is deprecated and ignored; the server runs when %s is set", ENABLED, PORT)
    out["openmetrics"] = _parse_bool(env, OPENMETRICS)
    out["health_check_enabled"] = _parse_bool(env, HEALTH_CHECK_ENABLED)
    out["auth_exempt_probes"] = _parse_bool(env, AUTH_EXEMPT_PROBES)
    out["self_metrics"] = _parse_bool(env, SELF_METRICS)
    value = _get(env, SCRAPE_TIMEOUT)
    if value is not None:
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise _bad(SCRAPE_TIMEOUT, value, "a positive finite number of seconds")
        out["scrape_timeout"] = seconds
    _parse_tls(env, out)
    value = _get(env, BASIC_AUTH_FILE)
    if value is not None:
        out["users"] = _read_users(value)
    return out


def _parse_tls(env: Mapping[str, str], out: _Parsed) -> None:
    cert, key, ca = (_get(env, n) for n in (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE))
    if cert is None:
        for name, value in ((TLS_KEY_FILE, key), (TLS_CLIENT_CA_FILE, ca)):
            if value is not None:
                raise _bad(name, value, f"to be set together with {TLS_CERT_FILE}")
        return
    import ssl  # only when TLS is configured

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        if key is not None and not os.path.isfile(key):
            raise _bad(TLS_KEY_FILE, key, f"an existing PEM key file ({e})") from None
        with_key = "" if key is None else f" with {TLS_KEY_FILE}={key!r}"
        raise ConfigError(
            f"{TLS_CERT_FILE}={cert!r}{with_key}: expected a usable PEM certificate chain "
            f"and key ({e})"
        ) from None
    if ca is not None:
        try:
            ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise _bad(TLS_CLIENT_CA_FILE, ca, f"a readable PEM CA file ({e})") from None
    out["tls_cert_file"], out["tls_key_file"], out["tls_client_ca_file"] = cert, key, ca


def _read_users(path: str) -> tuple[tuple[str, str], ...]:
    """The ``(user, HASH)`` pairs of a Basic auth file; ConfigError naming the variable."""
    from ..server.auth import parse_users  # only when auth is configured

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise _bad(BASIC_AUTH_FILE, path, f"a readable UTF-8 file ({e})") from None
    try:
        return parse_users(text)
    except ValueError as e:
        raise ConfigError(f"{BASIC_AUTH_FILE}={path!r}: {e}") from None
