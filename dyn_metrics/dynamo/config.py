"""The system status server's configuration: one checked, immutable record.

:meth:`SystemConfig.from_env` reads it from the ``DYN_*`` variables (the list,
and how each is parsed, is in :mod:`dyn_metrics.dynamo.environment`).

On a value that cannot be used Dynamo silently falls back to the default
configuration, which leaves the server off. dyn_metrics falls back the same way
but logs one ERROR line on the ``dyn_metrics.dynamo.config`` logger naming the
variable, the value and what was expected; with ``strict=True`` it raises
:class:`~dyn_metrics.errors.ConfigError` with that message instead.
"""

import math
import os
from collections.abc import Mapping, Sequence
from typing import NoReturn, Optional

from ..errors import ConfigError, LazyLogger
from .environment import STATUSES, const_label_problem, parse, path_problem

_log = LazyLogger(__name__)

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
    "max_children": None,
    "created": False,
    "process_metrics": False,
    "const_labels": (),
}


class SystemConfig:
    """Settings of the system status server; ``port=None`` means the server is off.

    Construct it directly (fields are validated; bad values raise
    :class:`~dyn_metrics.errors.ConfigError`) or with :meth:`from_env`.
    Immutable, so safe to share between threads. (A plain class rather than
    a dataclass: importing ``dataclasses`` alone would cost a quarter of the
    package's import time.)
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
    max_children: Optional[int]
    created: bool
    process_metrics: bool
    const_labels: tuple[tuple[str, str], ...]

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
        max_children: Optional[int] = None,
        created: bool = False,
        process_metrics: bool = False,
        const_labels: Sequence[tuple[str, str]] = (),
    ) -> None:
        if port is not None and (port.__class__ is not int or not 0 <= port <= 65535):
            raise ConfigError(f"port: expected None or an int in 0..65535, got {port!r}")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"host: expected a non-empty string, got {host!r}")
        for field, value in (("health_path", health_path), ("live_path", live_path)):
            problem = path_problem(value)
            if problem:
                raise ConfigError(f"{field}: expected {problem}, got {value!r}")
        if starting_health_status not in STATUSES:
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
        limit: object = max_children
        if limit is not None and (limit.__class__ is not int or limit < 0):
            raise ConfigError(f"max_children: expected None or an int >= 0, got {limit!r}")
        given_labels: object = const_labels
        labels = None if isinstance(given_labels, str) else tuple(const_labels)
        problem = None if labels is not None else "expected (name, value) pairs"
        pairs_given: tuple[object, ...] = labels or ()
        for pair in pairs_given:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                problem = f"expected (name, value) pairs, got {pair!r}"
            else:
                problem = const_label_problem(*pair)
            if problem is not None:
                break
        if problem is None and labels and len({n for n, _ in labels}) != len(labels):
            problem = "label names must be distinct"
        if problem is not None:
            raise ConfigError(f"const_labels: {problem}; got {const_labels!r}")
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
            limit,
            bool(created),
            bool(process_metrics),
            labels,
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
            return cls(**parse(env))
        except ConfigError as e:
            if strict:
                raise
            _log.error("%s; using the default system config (server off)", e)
            return cls()
