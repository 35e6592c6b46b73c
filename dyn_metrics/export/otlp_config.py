"""The OTLP and remote-write settings, read once from ``OTEL_*`` and ``DYN_METRICS_REMOTE_WRITE_*``.

:class:`OTLPConfig` and :class:`RemoteWriteConfig` are immutable; values given
to ``from_env`` (or a constructor, which reads nothing) win over the environment.
Empty values count as unset; a ``METRICS_`` variable wins over its generic form.
``OTEL_METRICS_EXPORTER`` holding ``otlp`` (a list, any case) enables OTLP, and
``DYN_METRICS_REMOTE_WRITE_URL`` remote write. The rules for each variable are
in :meth:`OTLPConfig.from_env` and :meth:`RemoteWriteConfig.from_env`.

A bad variable raises :class:`~dyn_metrics.errors.ConfigError` naming it and its
value (``strict=False``: logged, export off); a bad argument raises
:class:`~dyn_metrics.errors.InvalidValueError` (a label name: ``InvalidNameError``).
"""

import logging
import math
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ..errors import ConfigError, InvalidNameError, InvalidValueError
from ..model import LABEL_NAME_RE

if TYPE_CHECKING:
    import ssl

__all__ = ["OTLPConfig", "RemoteWriteConfig", "metrics_url", "parse_headers", "parse_resource"]

_log = logging.getLogger(__name__)

EXPORTER = "OTEL_METRICS_EXPORTER"
INTERVAL = "OTEL_METRIC_EXPORT_INTERVAL"
SERVICE_NAME = "OTEL_SERVICE_NAME"
RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
REMOTE_WRITE_URL = "DYN_METRICS_REMOTE_WRITE_URL"
REMOTE_WRITE_INTERVAL = "DYN_METRICS_REMOTE_WRITE_INTERVAL"
PROTOCOLS = ("grpc", "http/protobuf", "http/json")
COMPRESSIONS = ("none", "gzip")
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318/v1/metrics"
DEFAULT_INTERVAL = 60.0
UNKNOWN_SERVICE = "unknown_service"
# Headers the remote-write client sets itself.
_RW_SET = "content-encoding content-type content-length host user-agent"
RESERVED_RW_HEADERS = frozenset(_RW_SET.split() + ["x-prometheus-remote-write-version"])

Pairs = tuple[tuple[str, str], ...]
PairsIn = Union[Mapping[str, str], Iterable[tuple[str, str]]]

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_URL = "an http:// or https:// URL with a host (port 1..65535, no whitespace)"
_FLOAT_RE = re.compile(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")


def _require(ok: bool, message: str, error: type[Exception] = InvalidValueError) -> None:
    if not ok:
        raise error(message)


def otlp_var(part: str, metrics: bool = False) -> str:
    return f"OTEL_EXPORTER_OTLP_{'METRICS_' if metrics else ''}{part}"


def endpoint_problem(url: object) -> Optional[str]:
    """Why ``url`` cannot be an export URL; None if it can."""
    if not isinstance(url, str) or _CONTROL_RE.search(url) or " " in url:
        return _URL
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and port != 0
    return None if ok else _URL


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _path_end(url: str) -> int:
    ends = [i for i in (url.find("?"), url.find("#")) if i >= 0]
    return min(ends) if ends else len(url)


def metrics_url(base: str) -> str:
    """``base`` with ``v1/metrics`` appended after exactly one ``/`` (nothing else changes)."""
    end = _path_end(base)
    head = base[:end] if base[:end].endswith("/") else base[:end] + "/"
    return head + "v1/metrics" + base[end:]


def _with_root_path(url: str) -> str:
    end = _path_end(url)
    return url if urllib.parse.urlsplit(url).path else url[:end] + "/" + url[end:]


def _decode(text: str) -> str:
    if _BAD_ESCAPE_RE.search(text):
        raise ValueError(f"{text!r} has a '%' not followed by two hex digits")
    try:
        return urllib.parse.unquote(text.strip(), errors="strict")  # "%20" is meant
    except UnicodeDecodeError:
        raise ValueError(f"{text!r} does not decode to UTF-8") from None


def _split_items(text: str) -> Iterable[tuple[str, str]]:
    for item in (i.strip() for i in text.split(",") if i.strip()):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"item {item!r} has no '=' (expected key=value)")
        key, value = _decode(key), _decode(value)
        if not key:
            raise ValueError(f"item {item!r} has an empty key")
        yield key, value


def _headers(items: Iterable[tuple[str, str]], error: type[Exception]) -> Pairs:
    out: dict[str, str] = {}
    for key, value in items:
        ok = isinstance(key, str) and bool(_TOKEN_RE.fullmatch(key))
        _require(ok, f"header name {key!r} is not an HTTP token", error)
        ok = isinstance(value, str) and not _CONTROL_RE.search(value)
        _require(ok, f"header {key!r}: {value!r} is not a str without control characters", error)
        out[key.lower()] = value
    return tuple(out.items())


def parse_headers(text: str) -> Pairs:
    """OTel ``k=v,...`` headers (decoded, names lowercased, last wins); ValueError if malformed."""
    return _headers(_split_items(text), ValueError)


def parse_resource(text: str) -> Pairs:
    """OTel ``k=v,...`` resource attributes, percent-decoded; ValueError if any item fails."""
    return tuple(dict(_split_items(text)).items())


def _pairs(value: PairsIn, what: str) -> list[tuple[str, str]]:
    try:
        return [(k, v) for k, v in (value.items() if isinstance(value, Mapping) else value)]
    except (TypeError, ValueError):
        raise InvalidValueError(f"{what} must be a mapping or (name, value) pairs") from None


def _positive(name: str, value: Any, *, infinite: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    kind = "positive" if infinite else "positive finite"
    message = f"{name} must be a {kind} number of seconds, got {value!r}"
    _require(ok and (infinite or math.isfinite(value)), message)
    return float(value)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise InvalidValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value.strip().lower()


def _get(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def _pick(env: Mapping[str, str], part: str) -> Optional[tuple[str, str]]:
    """``(variable, value)`` of the ``METRICS_`` form of ``part``, else the generic one."""
    names = (otlp_var(part, True), otlp_var(part))
    return next(((n, v) for n in names if (v := _get(env, n)) is not None), None)


def _bad(name: str, value: str, expected: str) -> str:
    return f"{name}={value!r}: expected {expected}"


def _pick_choice(env: Mapping[str, str], part: str, choices: tuple[str, ...]) -> Optional[str]:
    picked = _pick(env, part)
    if picked is not None:
        ok = picked[1].lower() in choices
        _require(ok, _bad(*picked, "one of " + ", ".join(choices)), ConfigError)
    return None if picked is None else picked[1].lower()


def _millis(name: str, value: Optional[str]) -> Optional[int]:
    """An integer-milliseconds variable; garbage logs the spec's warning and counts as unset."""
    if value is not None and not (value.isascii() and value.isdigit()):
        _log.warning("%s=%r: expected integer milliseconds; using the default", name, value)
        return None
    return None if value is None else int(value)


@dataclass(frozen=True)
class OTLPConfig:
    """Where and how OTLP metrics go; ``enabled``: ``OTEL_METRICS_EXPORTER`` asks for one.

    ``endpoint`` None: the protocol's default; ``timeout`` seconds (None: Dynamo's
    ``min(interval, 30)``, ``math.inf``: none); ``interval`` seconds between export
    starts; a ``service.name`` in ``resource_attributes`` moves to ``service_name``.
    """

    enabled: bool = False
    endpoint: Optional[str] = None
    protocol: str = "grpc"
    headers: Pairs = field(default=(), repr=False)  # they may hold credentials
    timeout: Optional[float] = None
    compression: str = "none"
    certificate: Optional[str] = None
    interval: float = DEFAULT_INTERVAL
    service_name: Optional[str] = None
    resource_attributes: Pairs = ()
    tls_context: Optional["ssl.SSLContext"] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "protocol", _choice("protocol", self.protocol, PROTOCOLS))
        set_(self, "compression", _choice("compression", self.compression, COMPRESSIONS))
        if self.endpoint is None:
            default = DEFAULT_GRPC_ENDPOINT if self.protocol == "grpc" else DEFAULT_HTTP_ENDPOINT
            set_(self, "endpoint", default)
        problem = endpoint_problem(self.endpoint)
        _require(problem is None, f"endpoint must be {problem}, got {self.endpoint!r}")
        set_(self, "headers", _headers(_pairs(self.headers, "headers"), InvalidValueError))
        if self.timeout is not None:
            set_(self, "timeout", _positive("timeout", self.timeout, infinite=True))
        set_(self, "interval", _positive("interval", self.interval, infinite=False))
        cert = self.certificate
        _require(cert is None or _is_text(cert), f"certificate must be a path, got {cert!r}")
        attrs = dict(_pairs(self.resource_attributes, "resource_attributes"))
        bad = [(k, v) for k, v in attrs.items() if not _is_text(k) or not isinstance(v, str)]
        _require(not bad, f"resource attributes need str keys and values, got {bad!r}")
        name = attrs.pop("service.name", None) if self.service_name is None else self.service_name
        attrs.pop("service.name", None)
        _require(name is None or _is_text(name), f"service_name must be a non-empty str: {name!r}")
        set_(self, "service_name", name)
        set_(self, "resource_attributes", tuple(attrs.items()))

    @property
    def export_timeout(self) -> float:
        """Seconds one export may take, retries included (``math.inf``: no limit)."""
        return min(self.interval, 30.0) if self.timeout is None else self.timeout

    @property
    def resource(self) -> Pairs:
        """The resource attributes to send, ``service.name`` first."""
        return (("service.name", self.service_name or UNKNOWN_SERVICE),) + self.resource_attributes

    @property
    def secure(self) -> bool:
        """True for an ``https`` endpoint (TLS; for gRPC, TLS with ALPN ``h2``)."""
        return urllib.parse.urlsplit(str(self.endpoint)).scheme.lower() == "https"

    def ssl_context(self) -> Optional["ssl.SSLContext"]:
        """``tls_context``, else None for http, else a context trusting ``certificate`` (or the
        system CAs); a CA file that cannot be used raises ConfigError."""
        if self.tls_context is not None or not self.secure:
            return self.tls_context
        import ssl  # only when TLS is used

        try:
            return ssl.create_default_context(cafile=self.certificate)
        except (OSError, ssl.SSLError) as e:
            msg = f"certificate {self.certificate!r}: expected a usable PEM CA file ({e})"
            raise ConfigError(msg) from None

    @classmethod
    def from_env(
        cls,
        env: Optional[Mapping[str, str]] = None,
        *,
        strict: bool = True,
        service_name: Optional[str] = None,
        resource_attributes: Optional[PairsIn] = None,
        **given: Any,
    ) -> "OTLPConfig":
        """Read the variables (``os.environ`` by default); keyword fields not None win.

        * ``OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL``: ``grpc`` (default, as Dynamo),
          ``http/protobuf``, ``http/json``; ``_COMPRESSION``: ``none``, ``gzip``.
        * ``..._METRICS_ENDPOINT`` is used as is (an empty path becomes ``/``); the
          generic ``_ENDPOINT`` gets ``v1/metrics`` after one ``/`` for HTTP, and is
          used as is for gRPC (host and port only). A given endpoint is used as given.
        * ``_HEADERS``, ``OTEL_RESOURCE_ATTRIBUTES``: ``k=v,...`` percent-decoded. A
          bad header is an error (a dropped auth header would only show as 401s);
          bad attributes are discarded whole with a warning (spec).
        * ``_TIMEOUT``, ``OTEL_METRIC_EXPORT_INTERVAL``: integer ms; garbage: the
          spec's warning and the default (timeout: Dynamo's ``min(interval, 30 s)``,
          ``0`` = no limit; interval: 60 s, also for ``0``, as Dynamo).
          ``_CERTIFICATE``: a CA file that must exist.
        * ``service.name``: ``service_name``, else one in ``resource_attributes``
          (merged over the environment's), else ``OTEL_SERVICE_NAME``, else one in
          the variable, else ``unknown_service`` (the Python SDK's).

        ``given``: ``endpoint``, ``protocol``, ``headers``, ``timeout``,
        ``compression``, ``certificate``, ``interval``, ``tls_context``.
        """
        explicit = {k: v for k, v in given.items() if v is not None}
        if "protocol" in explicit:  # the protocol decides how the env's endpoint is read
            explicit["protocol"] = _choice("protocol", explicit["protocol"], PROTOCOLS)
        environ = os.environ if env is None else env
        read = _read(lambda: _read_otlp(environ, explicit.get("protocol")), strict, "OTLP export")
        attrs = dict(read.pop("resource_attributes", ()))
        name = read.pop("service_name", None) or attrs.get("service.name")
        if resource_attributes is not None:
            mine = dict(_pairs(resource_attributes, "resource_attributes"))
            attrs.update(mine)
            name = mine.get("service.name", name)
        fields = {**read, **explicit, "resource_attributes": tuple(attrs.items())}
        return cls(service_name=name if service_name is None else service_name, **fields)


def _read_otlp(env: Mapping[str, str], protocol: Optional[str]) -> dict[str, Any]:
    """The OTLPConfig keyword arguments the environment sets; ConfigError on a bad value."""
    out: dict[str, Any] = {}
    value = _get(env, EXPORTER)
    out["enabled"] = "otlp" in [item.strip().lower() for item in (value or "").split(",")]
    out["protocol"] = _pick_choice(env, "PROTOCOL", PROTOCOLS)
    out["compression"] = _pick_choice(env, "COMPRESSION", COMPRESSIONS)
    protocol = protocol or out["protocol"] or "grpc"
    picked = _pick(env, "ENDPOINT")
    if picked is not None:
        name, value = picked
        problem = endpoint_problem(value)
        _require(problem is None, _bad(name, value, str(problem)), ConfigError)
        if name == otlp_var("ENDPOINT", True):
            out["endpoint"] = _with_root_path(value)  # used as is
        else:
            out["endpoint"] = value if protocol == "grpc" else metrics_url(value)
    picked = _pick(env, "HEADERS")
    if picked is not None:
        try:
            out["headers"] = parse_headers(picked[1])
        except ValueError as e:
            raise ConfigError(f"{picked[0]}={picked[1]!r}: {e}") from None
    millis = _millis(*(_pick(env, "TIMEOUT") or ("", None)))
    if millis is not None:
        out["timeout"] = math.inf if millis == 0 else millis / 1000.0
    picked = _pick(env, "CERTIFICATE")
    if picked is not None:
        _require(os.path.isfile(picked[1]), _bad(*picked, "an existing PEM CA file"), ConfigError)
        out["certificate"] = picked[1]
    millis = _millis(INTERVAL, _get(env, INTERVAL))
    if millis == 0:
        _log.warning("%s=0: using the default of %d ms", INTERVAL, DEFAULT_INTERVAL * 1000)
    if millis:
        out["interval"] = millis / 1000.0
    out["service_name"] = _get(env, SERVICE_NAME)
    value = _get(env, RESOURCE_ATTRIBUTES)
    if value is not None:
        try:
            out["resource_attributes"] = parse_resource(value)
        except ValueError as e:
            _log.warning("%s=%r discarded: %s", RESOURCE_ATTRIBUTES, value, e)
    return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class RemoteWriteConfig:
    """Where and how remote writes go; ``url`` None is off. Times in seconds.

    ``basic_auth`` ``(user, password)`` excludes ``bearer_token``; ``external_labels``
    (sorted) go on every series; ``queue_limit`` bounds the samples kept.
    """

    url: Optional[str] = None
    interval: float = 15.0
    timeout: float = 30.0
    headers: Pairs = field(default=(), repr=False)  # they may hold credentials
    basic_auth: Optional[tuple[str, str]] = field(default=None, repr=False)
    bearer_token: Optional[str] = field(default=None, repr=False)
    external_labels: Pairs = ()
    queue_limit: int = 10000
    tls_context: Optional["ssl.SSLContext"] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        problem = None if self.url is None else endpoint_problem(self.url)
        _require(problem is None, f"url must be {problem}, got {self.url!r}")
        set_(self, "interval", _positive("interval", self.interval, infinite=False))
        set_(self, "timeout", _positive("timeout", self.timeout, infinite=False))
        headers = _headers(_pairs(self.headers, "headers"), InvalidValueError)
        auth = self.basic_auth is not None or self.bearer_token is not None
        for name, _ in headers:
            reserved = name in RESERVED_RW_HEADERS or (auth and name == "authorization")
            _require(not reserved, f"header {name!r} is set by the remote-write client")
        set_(self, "headers", headers)
        pair: Any = self.basic_auth
        ok = isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        problem = f"basic_auth must be a (user, password) pair of str, no ':' in user; got {pair!r}"
        _require(pair is None or (ok and ":" not in pair[0]), problem)
        token: Any = self.bearer_token
        _require(token is None or (isinstance(token, str) and bool(token)), "bad bearer_token")
        _require(pair is None or token is None, "give basic_auth or bearer_token, not both")
        labels: dict[str, str] = {}
        for name, value in _pairs(self.external_labels, "external_labels"):
            ok = isinstance(name, str) and bool(LABEL_NAME_RE.fullmatch(name))
            _require(ok, f"external label name {name!r} is not valid", InvalidNameError)
            _require(not name.startswith("__"), f"{name!r}: '__' is reserved", InvalidNameError)
            _require(isinstance(value, str), f"external label {name!r}: {value!r} is not a str")
            labels[name] = value
        set_(self, "external_labels", tuple(sorted(labels.items())))
        n: Any = self.queue_limit
        ok = isinstance(n, int) and not isinstance(n, bool) and n >= 1
        _require(ok, f"queue_limit must be an integer >= 1, got {n!r}")

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @classmethod
    def from_env(
        cls, env: Optional[Mapping[str, str]] = None, *, strict: bool = True, **explicit: Any
    ) -> "RemoteWriteConfig":
        """Read ``DYN_METRICS_REMOTE_WRITE_URL`` and ``_INTERVAL`` (seconds, default 15);
        keyword fields not None win. ``strict=False``: a bad variable is logged, ignored."""
        read = _read(
            lambda: _read_remote_write(os.environ if env is None else env), strict, "remote write"
        )
        return replace(cls(**read), **{k: v for k, v in explicit.items() if v is not None})


def _read_remote_write(env: Mapping[str, str]) -> dict[str, Any]:
    read: dict[str, Any] = {}
    value = _get(env, REMOTE_WRITE_URL)
    if value is not None:
        problem = endpoint_problem(value)
        _require(not problem, _bad(REMOTE_WRITE_URL, value, str(problem)), ConfigError)
        read["url"] = value
    value = _get(env, REMOTE_WRITE_INTERVAL)
    if value is not None:
        seconds = float(value) if _FLOAT_RE.fullmatch(value) else math.nan
        ok = math.isfinite(seconds) and seconds > 0
        _require(ok, _bad(REMOTE_WRITE_INTERVAL, value, "positive seconds"), ConfigError)
        read["interval"] = seconds
    return read


def _read(reader: Callable[[], dict[str, Any]], strict: bool, what: str) -> dict[str, Any]:
    """``reader()``; a ConfigError raises if ``strict``, else logs one ERROR line and gives {}."""
    try:
        return reader()
    except ConfigError as e:
        if strict:
            raise
        _log.error("%s; %s is off", e, what)
        return {}
