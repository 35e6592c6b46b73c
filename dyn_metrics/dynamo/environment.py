"""The ``DYN_*`` variables the system status server reads, and how each is parsed.

This is the only code in the package that reads the environment for the
server; :meth:`~dyn_metrics.dynamo.config.SystemConfig.from_env` calls
:func:`parse`. It mirrors Dynamo's ``RuntimeConfig`` (config.rs):

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
  ``dyn_metrics_scrape_*`` metrics to the exposition;
* ``DYN_METRICS_MAX_CHILDREN``: an integer >= 0, the default ``max_children`` of
  every vec created through the hierarchy (unset: unlimited);
* ``DYN_METRICS_CREATED``: boolean, default false; the hierarchy's registries
  remember creation times, written as OpenMetrics ``_created`` samples;
* ``DYN_SYSTEM_PROCESS_METRICS``: boolean, default false; registers the process,
  platform and GC collectors at the root of the runtime;
* ``DYN_METRICS_CONST_LABELS``: deployment-wide labels ``k=v,k2=v2`` that
  ``register_engine_metrics_callback`` adds to every engine sample (Dynamo's
  format, :func:`parse_const_labels`).

Boolean words are ``1/true/on/yes`` and ``0/false/off/no`` in any case. An empty
value counts as unset. Dynamo parses the port as a signed 16-bit integer, so
32768 and above silently disable its server; dyn_metrics accepts the full range.
"""

import math
import os
import re
from collections.abc import Mapping
from typing import Literal, Optional, TypedDict

from ..errors import ConfigError, LazyLogger
from ..model import LABEL_NAME_RE

_log = LazyLogger(__name__)

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
# The default max_children of every vec created through the hierarchy.
MAX_CHILDREN = "DYN_METRICS_MAX_CHILDREN"
CREATED = "DYN_METRICS_CREATED"
PROCESS_METRICS = "DYN_SYSTEM_PROCESS_METRICS"
CONST_LABELS = "DYN_METRICS_CONST_LABELS"
#: Label names a constant label may not take: the hierarchy's automatic labels
#: (Dynamo's list) and the names histograms and summaries use for their buckets.
RESERVED_CONST_LABELS = frozenset(
    ("dynamo_namespace", "dynamo_component", "dynamo_endpoint", "worker_id", "le", "quantile")
)

_TRUE = frozenset(("1", "true", "on", "yes"))
_FALSE = frozenset(("0", "false", "off", "no"))
STATUSES = ("ready", "notready")
_PORT_RE = re.compile(r"-?[0-9]+")
# A path must be usable verbatim as a route: no query, fragment or whitespace.
_PATH_RE = re.compile(r"/[^\s?#]*")


class Parsed(TypedDict, total=False):
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
    max_children: Optional[int]
    created: bool
    process_metrics: bool
    const_labels: tuple[tuple[str, str], ...]


def _get(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name)
    return value if value else None


def _bad(name: str, value: str, expected: str) -> ConfigError:
    return ConfigError(f"{name}={value!r}: expected {expected}")


def path_problem(value: object) -> Optional[str]:
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


def parse(env: Mapping[str, str]) -> Parsed:
    """Return the keyword arguments of ``SystemConfig``; raise ConfigError on a bad value."""
    out: Parsed = {}
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
            problem = path_problem(value)
            if problem:
                raise _bad(name, value, problem)
            out[field] = value
    value = _get(env, STARTING_HEALTH_STATUS)
    if value is not None:
        if value not in STATUSES:
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
    out["created"] = _parse_bool(env, CREATED)
    out["process_metrics"] = _parse_bool(env, PROCESS_METRICS)
    value = _get(env, MAX_CHILDREN)
    if value is not None:
        if not value.isascii() or not value.isdigit():
            raise _bad(MAX_CHILDREN, value, "an integer >= 0 (children per vec)")
        out["max_children"] = int(value)
    value = _get(env, SCRAPE_TIMEOUT)
    if value is not None:
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise _bad(SCRAPE_TIMEOUT, value, "a positive finite number of seconds")
        out["scrape_timeout"] = seconds
    value = _get(env, CONST_LABELS)
    if value is not None:
        try:
            out["const_labels"] = parse_const_labels(value)
        except ValueError as e:
            raise ConfigError(f"{CONST_LABELS}={value!r}: {e}") from None
    _parse_tls(env, out)
    value = _get(env, BASIC_AUTH_FILE)
    if value is not None:
        out["users"] = _read_users(value)
    return out


def const_label_problem(name: object, value: object) -> Optional[str]:
    """Why ``name=value`` cannot be a constant label; None if it can."""
    if not isinstance(name, str) or LABEL_NAME_RE.fullmatch(name) is None:
        return f"label name {name!r} is not valid (expected [a-zA-Z_][a-zA-Z0-9_]*)"
    if name.startswith("__"):
        return f"label name {name!r} starts with '__', which Prometheus reserves"
    if name in RESERVED_CONST_LABELS:
        return f"label name {name!r} is reserved (one of {sorted(RESERVED_CONST_LABELS)!r})"
    if not isinstance(value, str):
        return f"label {name!r} must have a string value, got {value!r}"
    return None


def parse_const_labels(text: str) -> tuple[tuple[str, str], ...]:
    """Dynamo's ``k=v,k2=v2`` constant labels as ``(name, value)`` pairs, in the given order.

    Items and the key and value of each are stripped of whitespace; empty
    items are skipped; only the first ``=`` splits (``k=a=b`` gives ``a=b``).
    Raises :class:`ValueError` for an item without ``=``, an invalid,
    reserved or repeated name.
    """
    pairs: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"item {item!r} has no '=' (expected name=value)")
        name, value = name.strip(), value.strip()
        problem = const_label_problem(name, value)
        if problem is not None:
            raise ValueError(problem)
        if any(name == seen for seen, _ in pairs):
            raise ValueError(f"label name {name!r} is given twice")
        pairs.append((name, value))
    return tuple(pairs)


def _parse_tls(env: Mapping[str, str], out: Parsed) -> None:
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
