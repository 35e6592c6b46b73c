"""Prometheus remote write 1.0: the ``prometheus.WriteRequest`` protobuf and one send.

:func:`encode_write_request` turns families (the records every encoder
writes) into a ``WriteRequest``: one ``TimeSeries`` per sample, its labels
sorted by name with ``__name__`` among them, one ``Sample`` (value as a
double, timestamp in ms), and one ``MetricMetadata`` per family (type, the
text 0.0.4 ``# TYPE`` name, so ``_total`` included for counters, help,
unit). Histograms and summaries travel as their classic series
(``_bucket{le=...}``, ``_sum``, ``_count``, ``{quantile=...}``), as a
Prometheus scraping the same text would send them.

:func:`send` POSTs one snappy-compressed body (see :mod:`.snappy`) with the
headers the protocol requires and retries what can succeed later (5xx, 429,
connection errors), honouring ``Retry-After``; other 4xx and 3xx are final.
It returns an :class:`~.result.ExportResult` and never raises for transport
outcomes.

Field numbers are those of prometheus/prometheus ``prompb/remote.proto`` and
``prompb/types.proto``.
"""

import base64
import math
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from http.client import HTTPException
from typing import Optional

from ..errors import ExportError, ExportRejectedError, ExportUnavailableError, InvalidValueError
from ..exposition.protowire import bytes_field, double_field, string_field, varint, varint_field
from ..exposition.text import text_metadata
from ..model import LABEL_NAME_RE, Family
from ..registry.family_checks import text_family
from .result import ExportResult
from .transport import Backoff, failed_result, opener, read_body, retry_after, user_agent

__all__ = [
    "CONTENT_TYPE",
    "PROTOCOL_VERSION",
    "RESERVED_HEADERS",
    "encode_write_request",
    "retry_after",
    "send",
]

# prompb/remote.proto: message WriteRequest
WRITE_REQUEST_TIMESERIES = 1
WRITE_REQUEST_METADATA = 3
# prompb/types.proto: TimeSeries, Label, Sample, MetricMetadata
TIMESERIES_LABELS = 1
TIMESERIES_SAMPLES = 2
LABEL_NAME = 1
LABEL_VALUE = 2
SAMPLE_VALUE = 1
SAMPLE_TIMESTAMP = 2
METADATA_TYPE = 1
METADATA_FAMILY_NAME = 2
METADATA_HELP = 4
METADATA_UNIT = 5
# MetricMetadata.MetricType
TYPE_UNKNOWN = 0
TYPE_COUNTER = 1
TYPE_GAUGE = 2
TYPE_HISTOGRAM = 3
TYPE_GAUGEHISTOGRAM = 4
TYPE_SUMMARY = 5
TYPE_INFO = 6
TYPE_STATESET = 7

#: Text 0.0.4 type words (what :func:`text_metadata` gives) to MetricType.
METRIC_TYPES = {
    "counter": TYPE_COUNTER,
    "gauge": TYPE_GAUGE,
    "histogram": TYPE_HISTOGRAM,
    "gaugehistogram": TYPE_GAUGEHISTOGRAM,
    "summary": TYPE_SUMMARY,
    "untyped": TYPE_UNKNOWN,
}

CONTENT_TYPE = "application/x-protobuf"
PROTOCOL_VERSION = "0.1.0"
#: Headers the protocol sets; Prometheus refuses them in ``headers`` too.
RESERVED_HEADERS = frozenset(
    ("authorization", "content-encoding", "content-type", "host", "user-agent")
    + ("x-prometheus-remote-write-version",)
)
#: How much of an error response is kept.
BODY_LIMIT = 64 * 1024

_NAME_KEY = b"\x0a\x08__name__"  # Label.name = "__name__", encoded once


def _external(external_labels: Optional[Mapping[str, str]]) -> list[tuple[str, str]]:
    if external_labels is None:
        return []
    if not isinstance(external_labels, Mapping):
        raise InvalidValueError(
            f"external_labels must be a mapping of label names to values, got {external_labels!r}"
        )
    pairs = []
    for name, value in external_labels.items():
        if not isinstance(name, str) or not LABEL_NAME_RE.fullmatch(name):
            raise InvalidValueError(
                f"external label name {name!r} is not a valid label name "
                "(expected [a-zA-Z_][a-zA-Z0-9_]*)"
            )
        if name.startswith("__"):
            raise InvalidValueError(f"external label name {name!r} is reserved (starts with __)")
        if not isinstance(value, str):
            raise InvalidValueError(f"external label {name!r} must be a str, got {value!r}")
        if value:  # an empty value is no label at all, in Prometheus as here
            pairs.append((name, value))
    return pairs


def encode_write_request(
    families: Iterable[Family],
    *,
    external_labels: Optional[Mapping[str, str]] = None,
    timestamp_ms: int,
) -> bytes:
    """The ``prometheus.WriteRequest`` holding every sample of ``families``.

    Each sample becomes a series with its labels and ``__name__`` sorted by
    name (labels with an empty value left out, as Prometheus treats them as
    absent), then every ``external_labels`` pair the series does not already
    have: a series' own label wins, as in Prometheus. A sample's own
    timestamp (seconds) is used when it has one, else ``timestamp_ms``.
    ``_created`` samples are left out, as in text 0.0.4. Families without
    samples get no metadata either.

    Raises :class:`InvalidValueError` for bad external labels (not a
    mapping, a name that is not a label name or starts with ``__``, a
    non-str value) or a ``timestamp_ms`` that is not an int.
    """
    extra = _external(external_labels)
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
        raise InvalidValueError(
            f"timestamp_ms must be an int (ms since the epoch), got {timestamp_ms!r}"
        )
    default_ts = varint_field(SAMPLE_TIMESTAMP, timestamp_ms)
    pack = double_field
    # Label messages repeat across series: encode each (name, value) once.
    label_cache: dict[tuple[str, str], bytes] = {}
    names_cache: dict[str, bytes] = {}
    series: list[bytes] = []
    metadata: list[bytes] = []
    for family in families:
        family = text_family(family)
        if not family.samples:
            continue
        name, type_word = text_metadata(family)
        meta = (
            varint_field(METADATA_TYPE, METRIC_TYPES.get(type_word, TYPE_UNKNOWN))
            + string_field(METADATA_FAMILY_NAME, name)
            + (string_field(METADATA_HELP, family.help) if family.help else b"")
            + (string_field(METADATA_UNIT, family.unit) if family.unit else b"")
        )
        metadata.append(bytes_field(WRITE_REQUEST_METADATA, meta))
        for sample in family.samples:
            pairs = [pair for pair in sample.labels if pair[1]]
            if extra:
                own = {label for label, _ in pairs}
                pairs.extend(pair for pair in extra if pair[0] not in own)
            pairs.append(("__name__", sample.name))
            pairs.sort()
            parts = []
            for pair in pairs:
                encoded = label_cache.get(pair)
                if encoded is None:
                    if pair[0] == "__name__":
                        label = names_cache.get(pair[1])
                        if label is None:
                            label = _NAME_KEY + string_field(LABEL_VALUE, pair[1])
                            names_cache[pair[1]] = label
                    else:
                        label = string_field(LABEL_NAME, pair[0]) + string_field(
                            LABEL_VALUE, pair[1]
                        )
                    encoded = bytes_field(TIMESERIES_LABELS, label)
                    label_cache[pair] = encoded
                parts.append(encoded)
            ts = sample.timestamp
            point = pack(SAMPLE_VALUE, float(sample.value)) + (
                default_ts if ts is None else varint_field(SAMPLE_TIMESTAMP, int(round(ts * 1000)))
            )
            parts.append(b"\x12" + varint(len(point)) + point)  # TimeSeries.samples
            body = b"".join(parts)
            series.append(b"\x0a" + varint(len(body)) + body)  # WriteRequest.timeseries
    return b"".join(series) + b"".join(metadata)


def _headers(
    headers: Optional[Mapping[str, str]],
    basic_auth: Optional[tuple[str, str]],
    bearer_token: Optional[str],
) -> dict[str, str]:
    out = {
        "Content-Encoding": "snappy",
        "Content-Type": CONTENT_TYPE,
        "X-Prometheus-Remote-Write-Version": PROTOCOL_VERSION,
        "User-Agent": user_agent(),
    }
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise InvalidValueError(f"headers must be a mapping of str to str, got {headers!r}")
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidValueError(f"header {name!r}: {value!r} must be str: str")
            if name.lower() in RESERVED_HEADERS:
                raise InvalidValueError(
                    f"header {name!r} is set by remote write itself (reserved: "
                    f"{', '.join(sorted(RESERVED_HEADERS))})"
                )
            out[name] = value
    if basic_auth is not None and bearer_token is not None:
        raise InvalidValueError("basic_auth and bearer_token exclude each other: give one")
    if basic_auth is not None:
        if not (
            isinstance(basic_auth, tuple)
            and len(basic_auth) == 2
            and all(isinstance(part, str) for part in basic_auth)
        ):
            raise InvalidValueError(
                f"basic_auth must be a (user, password) tuple of strings, got {basic_auth!r}"
            )
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode("ascii")
        out["Authorization"] = f"Basic {token}"
    if bearer_token is not None:
        if not isinstance(bearer_token, str) or not bearer_token:
            raise InvalidValueError(f"bearer_token must be a non-empty str, got {bearer_token!r}")
        out["Authorization"] = f"Bearer {bearer_token}"
    return out


def _check(url: object, body: object, timeout: object, tls_context: object) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"url must be an http:// or https:// URL, got {url!r}")
    if not isinstance(body, (bytes, bytearray)):
        raise InvalidValueError(f"body_snappy must be bytes, got {type(body).__name__}")
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not (timeout > 0 and math.isfinite(timeout))
    ):
        raise InvalidValueError(f"timeout must be seconds > 0, got {timeout!r}")
    if tls_context is not None and not isinstance(tls_context, ssl.SSLContext):
        raise InvalidValueError(f"tls_context must be an ssl.SSLContext, got {tls_context!r}")


def send(
    url: str,
    body_snappy: bytes,
    *,
    headers: Optional[Mapping[str, str]] = None,
    basic_auth: Optional[tuple[str, str]] = None,
    bearer_token: Optional[str] = None,
    tls_context: Optional[ssl.SSLContext] = None,
    timeout: float = 30.0,
    backoff: Optional[Backoff] = None,
    data_points: int = 0,
) -> ExportResult:
    """POST one snappy-compressed ``WriteRequest`` to ``url``; never raises for transport outcomes.

    Sends ``Content-Encoding: snappy``, ``Content-Type: application/x-protobuf``,
    ``X-Prometheus-Remote-Write-Version: 0.1.0`` and ``User-Agent:
    dyn_metrics/<version>``, plus ``headers`` and the ``Authorization`` of
    ``basic_auth=(user, password)`` or ``bearer_token``. ``tls_context`` is
    used for https URLs. ``timeout`` (seconds) bounds the whole call,
    retries and waits included. ``data_points`` (the samples in the body)
    is what a failed result reports as rejected.

    2xx: success. 5xx, 429 and connection errors are retried as ``backoff``
    paces them (default :class:`Backoff`: 1 s doubling, jitter, 6 attempts),
    a ``Retry-After`` replacing the computed wait; when attempts or time run
    out the result carries an :class:`ExportUnavailableError`. Other 4xx, 3xx
    and an untrusted TLS certificate are final at once: an
    :class:`ExportRejectedError` with the status and the receiver's text.

    Raises :class:`InvalidValueError` for bad arguments, nothing sent.
    """
    _check(url, body_snappy, timeout, tls_context)
    policy = Backoff() if backoff is None else backoff
    if not isinstance(policy, Backoff):
        raise InvalidValueError(f"backoff must be a Backoff, got {backoff!r}")
    fields = _headers(headers, basic_auth, bearer_token)
    data = bytes(body_snappy)
    urls = opener(tls_context)
    deadline = policy.clock() + timeout
    attempts = 0
    status: Optional[int] = None
    body = ""
    last = "nothing sent: the timeout passed"
    while True:
        remaining = deadline - policy.clock()
        if remaining <= 0:
            break
        attempts += 1
        wait: Optional[float] = None
        try:
            request = urllib.request.Request(url, data=data, method="POST", headers=fields)
            with urls.open(request, timeout=remaining) as response:
                response.read(BODY_LIMIT)
                return ExportResult(True, response.status, attempts)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, read_body(exc, BODY_LIMIT).decode("utf-8", "replace")
            if status != 429 and status < 500:
                text = body.strip() or str(exc.reason)
                error: ExportError = ExportRejectedError(
                    f"remote write to {url!r} refused with {status}: {text}", url, status, body
                )
                return failed_result(error, status, attempts, data_points)
            wait = retry_after(exc.headers.get("Retry-After") if exc.headers else None, time.time())
            last = f"{status} {body.strip()}".strip()
        except (OSError, HTTPException) as exc:
            status, body, reason = None, "", getattr(exc, "reason", exc)
            if isinstance(reason, ssl.CertificateError):  # a wrong certificate stays wrong
                error = ExportRejectedError(f"tls with {url!r} failed: {reason}", url)
                return failed_result(error, None, attempts, data_points)
            last = f"connection error: {reason}"
        if attempts >= policy.max_attempts:
            break
        if wait is None:
            wait = policy.wait(attempts)
        if policy.clock() + wait >= deadline:
            break
        policy.sleep(wait)
    error = ExportUnavailableError(
        f"remote write to {url!r} failed after {attempts} attempt"
        f"{'s' if attempts != 1 else ''}; last: {last}",
        url,
        status,
        body,
        attempts,
    )
    return failed_result(error, status, attempts, data_points)
