"""OTLP over HTTP: one POST of an encoded metrics request, classified and retried.

:func:`post_otlp` sends a body built by :func:`.otlp_model.encode_request`
(``http/protobuf``) or :func:`.otlp_json.dumps_json` (``http/json``) and
returns an :class:`~.result.ExportResult`; it never raises for what the
network or the receiver does. The classification follows the OTLP/HTTP
specification:

=========================================  ==========================================
answer                                     outcome
=========================================  ==========================================
2xx, empty body or ``{}``                  success
2xx with ``partialSuccess``                success; the rejected count and the
                                           receiver's message are recorded and logged
                                           once, never retried
429, 502, 503, 504                         retried (``Retry-After`` honoured)
connection refused, reset, or closed       retried
before an answer
any other status (3xx, 4xx, 5xx)           permanent: the status and up to 4 KiB of
                                           the body
a body over 64 MiB (before gzip)           dropped before sending
=========================================  ==========================================

Field numbers of the response are those of opentelemetry-proto
``collector/metrics/v1/metrics_service.proto`` (``ExportMetricsServiceResponse``)
and googleapis ``google/rpc/status.proto`` (``Status``).
"""

import gzip
import json
import logging
import math
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from http.client import HTTPException
from typing import Optional, Union

from ..errors import ExportError, ExportRejectedError, ExportUnavailableError, InvalidValueError
from ..exposition.protowire import LENGTH_DELIMITED, VARINT, iter_fields
from .result import ExportResult
from .transport import Backoff, failed_result, opener, read_body, retry_after, user_agent

__all__ = [
    "CONTENT_TYPES",
    "ERROR_BODY_LIMIT",
    "MAX_BODY",
    "RESERVED_HEADERS",
    "RETRYABLE_STATUSES",
    "parse_partial_success",
    "post_otlp",
]

_log = logging.getLogger(__name__)

#: Request Content-Type of each protocol.
CONTENT_TYPES = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}
#: Statuses worth another attempt (OTLP/HTTP "retryable response codes").
RETRYABLE_STATUSES = frozenset((429, 502, 503, 504))
#: Largest body sent, counted before compression.
MAX_BODY = 64 * 1024 * 1024
#: How much of a refusal's body an error keeps.
ERROR_BODY_LIMIT = 4096
#: How much of a success's body is read (a partial success fits easily).
_SUCCESS_BODY_LIMIT = 64 * 1024
#: Headers the transport sets itself.
RESERVED_HEADERS = frozenset(
    ("content-encoding", "content-length", "content-type", "host", "transfer-encoding")
)

# metrics_service.proto: ExportMetricsServiceResponse, ExportMetricsPartialSuccess
RESPONSE_PARTIAL_SUCCESS = 1
PARTIAL_SUCCESS_REJECTED_DATA_POINTS = 1
PARTIAL_SUCCESS_ERROR_MESSAGE = 2
# google/rpc/status.proto: Status
STATUS_MESSAGE = 2

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\x00\r\n]")

HeadersIn = Union[Mapping[str, str], Iterable[tuple[str, str]]]


def _int64(value: object) -> int:
    # A negative int64 is a 10-byte two's-complement varint.
    if not isinstance(value, int):
        raise ValueError(f"expected a varint, got {value!r}")
    return value - (1 << 64) if value >= 1 << 63 else value


def _partial_from_protobuf(body: bytes) -> tuple[int, str]:
    rejected, message = 0, ""
    for field, wire, value in iter_fields(body):
        if field != RESPONSE_PARTIAL_SUCCESS or wire != LENGTH_DELIMITED:
            continue  # unknown fields are allowed in a newer receiver's answer
        if not isinstance(value, bytes):
            continue
        for inner, inner_wire, inner_value in iter_fields(value):
            if inner == PARTIAL_SUCCESS_REJECTED_DATA_POINTS and inner_wire == VARINT:
                rejected = _int64(inner_value)
            elif inner == PARTIAL_SUCCESS_ERROR_MESSAGE and isinstance(inner_value, bytes):
                message = inner_value.decode("utf-8", "replace")
    return rejected, message


def _partial_from_json(body: bytes) -> tuple[int, str]:
    document = json.loads(body.decode("utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"expected a JSON object, got {type(document).__name__}")
    # Protobuf's JSON mapping accepts the lowerCamel and the original field names.
    part = document.get("partialSuccess", document.get("partial_success"))
    if part is None:
        return 0, ""
    if not isinstance(part, dict):
        raise ValueError(f"partialSuccess must be an object, got {part!r}")
    count = part.get("rejectedDataPoints", part.get("rejected_data_points", 0))
    message = part.get("errorMessage", part.get("error_message", ""))
    if isinstance(count, bool) or not isinstance(count, (int, str, float)):
        raise ValueError(f"rejectedDataPoints must be an int64, got {count!r}")
    if isinstance(count, float):
        if not count.is_integer():
            raise ValueError(f"rejectedDataPoints must be an int64, got {count!r}")
        count = int(count)
    if not isinstance(message, str):
        raise ValueError(f"errorMessage must be a string, got {message!r}")
    return int(count), message


def _encoding(content_type: Optional[str], protocol: str) -> str:
    """ "json", "protobuf" or "text": how a response body is read."""
    # The receiver answers in the request's encoding; its Content-Type, when given, decides.
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("application/json", "text/json") or kind.endswith("+json"):
        return "json"
    if kind in ("application/x-protobuf", "application/protobuf", "application/octet-stream"):
        return "protobuf"
    if kind.startswith("text/"):  # a proxy's page, not a receiver's message
        return "text"
    return "json" if protocol == "http/json" else "protobuf"


def parse_partial_success(
    body: bytes, protocol: str, content_type: Optional[str] = None
) -> tuple[int, str]:
    """``(rejected_data_points, error_message)`` of an ``ExportMetricsServiceResponse`` body.

    The body is read as JSON when ``content_type`` says so (or, without a
    usable one, when ``protocol`` is ``http/json``), as protobuf when it
    says protobuf (or, without one, for ``http/protobuf``). An empty body,
    ``{}`` and a response without ``partialSuccess`` give ``(0, "")``, as
    does a ``text/*`` body. In JSON the count may be a string or a number
    (int64). Raises :class:`ValueError` for a body that is not such a
    response.
    """
    encoding = _encoding(content_type, protocol)
    if not body or encoding == "text":
        return 0, ""
    if encoding == "protobuf":
        return _partial_from_protobuf(body)
    try:
        return _partial_from_json(body)
    except UnicodeDecodeError as exc:
        raise ValueError(f"the response is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise ValueError("the response nests too deeply") from None


def _status_message(body: bytes, content_type: Optional[str], protocol: str) -> str:
    """The ``message`` of a ``google.rpc.Status`` refusal, else the body as text."""
    encoding = _encoding(content_type, protocol)
    try:
        if encoding == "json":
            document = json.loads(body.decode("utf-8"))
            if isinstance(document, dict) and isinstance(document.get("message"), str):
                return str(document["message"])
        elif encoding == "protobuf":
            for field, wire, value in iter_fields(body):
                if field == STATUS_MESSAGE and wire == LENGTH_DELIMITED:
                    if isinstance(value, bytes):
                        return value.decode("utf-8")
    except (ValueError, RecursionError):  # not a Status: plain text, HTML, a cut-off body
        pass
    return body.decode("utf-8", "replace").strip()


def _headers(headers: object, protocol: str, compression: Optional[str]) -> dict[str, str]:
    out = {"Content-Type": CONTENT_TYPES[protocol], "User-Agent": user_agent()}
    if compression == "gzip":
        out["Content-Encoding"] = "gzip"
    if isinstance(headers, (str, bytes)):
        raise InvalidValueError(
            f"headers must be (name, value) pairs or a mapping, got {headers!r}"
        )
    items = headers.items() if isinstance(headers, Mapping) else headers
    if not isinstance(items, Iterable):
        raise InvalidValueError(
            f"headers must be (name, value) pairs or a mapping, got {headers!r}"
        )
    pairs = list(items)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise InvalidValueError(f"header {pair!r} must be a (name, value) pair")
        name, value = pair
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise InvalidValueError(f"header name {name!r} is not an HTTP token")
        if not isinstance(value, str) or _BAD_VALUE.search(value):
            raise InvalidValueError(
                f"header {name!r} value {value!r} must be a str without CR, LF or NUL"
            )
        if name.lower() in RESERVED_HEADERS:
            raise InvalidValueError(
                f"header {name!r} is set by the transport (reserved: "
                f"{', '.join(sorted(RESERVED_HEADERS))})"
            )
        if name.lower() == "user-agent":  # a configured User-Agent replaces ours
            del out["User-Agent"]
        out[name] = value
    return out


def _check(
    url: object,
    body: object,
    protocol: object,
    compression: object,
    timeout: object,
    tls_context: object,
    backoff: object,
    data_points: object,
) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"url must be an http:// or https:// URL, got {url!r}")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidValueError(f"body must be bytes, got {type(body).__name__}")
    if protocol not in CONTENT_TYPES:
        raise InvalidValueError(
            f"protocol must be 'http/protobuf' or 'http/json', got {protocol!r}"
        )
    if compression not in (None, "none", "gzip"):
        raise InvalidValueError(f"compression must be None, 'none' or 'gzip', got {compression!r}")
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not (timeout > 0 and math.isfinite(timeout))
    ):
        raise InvalidValueError(f"timeout must be seconds > 0, got {timeout!r}")
    if tls_context is not None and not isinstance(tls_context, ssl.SSLContext):
        raise InvalidValueError(f"tls_context must be an ssl.SSLContext, got {tls_context!r}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise InvalidValueError(f"backoff must be a Backoff, got {backoff!r}")
    if isinstance(data_points, bool) or not isinstance(data_points, int) or data_points < 0:
        raise InvalidValueError(f"data_points must be an int >= 0, got {data_points!r}")


def post_otlp(
    url: str,
    body: bytes,
    *,
    protocol: str,
    headers: HeadersIn = (),
    compression: Optional[str] = None,
    timeout: float,
    tls_context: Optional[ssl.SSLContext] = None,
    backoff: Optional[Backoff] = None,
    data_points: int = 0,
) -> ExportResult:
    """POST one OTLP metrics request to ``url``; never raises for transport outcomes.

    ``body`` is the encoded ``ExportMetricsServiceRequest`` in ``protocol``'s
    encoding (``"http/protobuf"``: protobuf, ``Content-Type:
    application/x-protobuf``; ``"http/json"``: OTLP/JSON, ``application/json``).
    ``compression="gzip"`` sends it gzipped (``Content-Encoding: gzip``);
    None or ``"none"`` sends it as is. ``headers`` (pairs or a mapping) are
    added; a ``User-Agent`` among them replaces ``dyn_metrics/<version>``.
    ``tls_context`` is used for https URLs. ``timeout`` (seconds) bounds the
    whole call: every attempt and every wait fit inside it. ``data_points``
    (the points in the body) is what a failed result reports as rejected.

    Outcomes (see the module's table): success, with a partial success's
    ``rejected_data_points`` and ``error_message`` (logged once as a
    warning); retries paced by ``backoff`` (default :class:`Backoff`: 1 s
    doubling, ±20 % jitter, 6 attempts) with ``Retry-After`` (seconds or an
    HTTP-date) replacing the computed wait, ending in an
    :class:`ExportUnavailableError` when attempts or time run out; a
    permanent :class:`ExportRejectedError` carrying the status and up to
    4 KiB of the body (a ``google.rpc.Status`` message shown as its text),
    also for an untrusted TLS certificate and for a body over
    :data:`MAX_BODY`, which is never sent (``attempts`` 0).

    Raises :class:`InvalidValueError` for bad arguments, nothing sent.
    """
    _check(url, body, protocol, compression, timeout, tls_context, backoff, data_points)
    fields = _headers(headers, protocol, compression)
    policy = Backoff() if backoff is None else backoff
    if len(body) > MAX_BODY:
        error: ExportError = ExportRejectedError(
            f"otlp export to {url!r} dropped: the request is {len(body)} bytes, "
            f"over the {MAX_BODY}-byte limit",
            url,
        )
        return failed_result(error, None, 0, data_points)
    data = bytes(body)
    if compression == "gzip":
        data = gzip.compress(data, mtime=0)  # mtime 0: equal requests give equal bytes
    urls = opener(tls_context)
    deadline = policy.clock() + timeout
    attempts = 0
    status: Optional[int] = None
    text = ""
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
                answer = read_body(response, _SUCCESS_BODY_LIMIT)
                kind = response.headers.get("Content-Type")
                return _succeeded(url, response.status, attempts, answer, protocol, kind)
        except urllib.error.HTTPError as exc:
            status = exc.code
            raw = read_body(exc, ERROR_BODY_LIMIT)
            text = raw.decode("utf-8", "replace")
            content_type = exc.headers.get("Content-Type") if exc.headers else None
            reason = _status_message(raw, content_type, protocol) or str(exc.reason)
            if status not in RETRYABLE_STATUSES:
                error = ExportRejectedError(
                    f"otlp export to {url!r} refused with {status}: {reason}", url, status, text
                )
                return failed_result(error, status, attempts, data_points)
            wait = retry_after(exc.headers.get("Retry-After") if exc.headers else None, time.time())
            last = f"{status} {reason}".strip()
        except (OSError, HTTPException) as exc:
            status, text, cause = None, "", getattr(exc, "reason", exc)
            if isinstance(cause, ssl.CertificateError):  # a wrong certificate stays wrong
                error = ExportRejectedError(f"tls with {url!r} failed: {cause}", url)
                return failed_result(error, None, attempts, data_points)
            last = f"connection error: {cause!r}"
        if attempts >= policy.max_attempts:
            break
        if wait is None:
            wait = policy.wait(attempts)
        if policy.clock() + wait >= deadline:  # the wait would end past the deadline
            break
        policy.sleep(wait)
    error = ExportUnavailableError(
        f"otlp export to {url!r} failed after {attempts} attempt"
        f"{'s' if attempts != 1 else ''}; last: {last}",
        url,
        status,
        text,
        attempts,
    )
    return failed_result(error, status, attempts, data_points)


def _succeeded(
    url: str,
    status: int,
    attempts: int,
    answer: bytes,
    protocol: str,
    content_type: Optional[str],
) -> ExportResult:
    try:
        rejected, message = parse_partial_success(answer, protocol, content_type)
    except ValueError as exc:  # accepted all the same: a 2xx is a success
        _log.debug("otlp export to %r: unreadable success body (%s)", url, exc)
        return ExportResult(True, status, attempts)
    if rejected or message:
        _log.warning(
            "otlp export to %r partly rejected: %d data points refused: %s",
            url,
            rejected,
            message or "(no message)",
        )
    return ExportResult(True, status, attempts, max(0, rejected), message)
