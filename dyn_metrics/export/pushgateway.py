"""Pushing to a Prometheus Pushgateway: PUT, POST and DELETE of one group.

prometheus_client's functions and handler protocol over any source (None is
``dm.REGISTRY``), plus client-side refusals, typed errors carrying the
gateway's text, retries, and a timeout bounding the whole call.

URL: ``<gateway>/metrics/job/<job>{/<name>/<value>}``, names sorted. A value
that is empty or holds a ``/`` or a space travels as ``<name>@base64/<URL-safe
base64>`` (``=`` for empty): the gateway decodes ``%2F`` *before* splitting
the path, so a percent-encoded ``/`` is stored under a wrong grouping key with
a 200. Other values are percent-encoded with no safe characters; the job the
same way. These are prometheus_client's URLs, byte for byte.

The body is the text 0.0.4 ``/metrics`` serves (the gateway reads OpenMetrics
as untyped), parsed back before sending: a sample carrying ``job`` or a
grouping-key label is refused (:class:`InvalidLabelsError`), as client_golang
does, since the gateway would silently overwrite the label.

2xx is success; 3xx (a wrong URL; never followed) and 4xx (400 with the
gateway's reason, 401/403) raise :class:`ExportRejectedError`; 5xx and
connection errors are retried (:class:`Backoff`), then raise
:class:`ExportUnavailableError`.
"""

import base64
import gzip
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from contextlib import closing
from http.client import HTTPException
from typing import Any, Callable, Optional

from ..errors import (
    ExportRejectedError,
    ExportUnavailableError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
    ParseError,
)
from ..exposition.parse.reader import parse
from ..model import LABEL_NAME_RE
from ..registry.sources import resolve_source
from .transport import Backoff, opener, read_body

__all__ = [
    "CONTENT_TYPE",
    "Backoff",
    "Handler",
    "default_handler",
    "delete_from_gateway",
    "gateway_url",
    "instance_ip_grouping_key",
    "push_to_gateway",
    "pushadd_to_gateway",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How much of an error response is kept in ``ExportError.body``.
BODY_LIMIT = 64 * 1024

#: prometheus_client's handler protocol: called with the keyword arguments
#: ``url, method, timeout, headers, data`` (headers a list of ``(name,
#: value)``), it returns a callable doing the request, which raises on
#: failure (``urllib.error.HTTPError`` for an HTTP status, any ``OSError``
#: for the connection).
Handler = Callable[..., Callable[[], Any]]


def _escape(name: str, value: str) -> str:
    if value == "":
        return f"{name}@base64/="
    if "/" in value or " " in value:
        encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
        return f"{name}@base64/{encoded}"
    return f"{name}/{urllib.parse.quote(value, safe='')}"


def _grouping_pairs(grouping_key: Optional[Mapping[str, object]]) -> list[tuple[str, str]]:
    if grouping_key is None:
        return []
    if not isinstance(grouping_key, Mapping):
        raise InvalidValueError(
            f"grouping_key must be a mapping of label names to values, got {grouping_key!r}"
        )
    pairs = []
    for name, value in grouping_key.items():
        if not isinstance(name, str) or not LABEL_NAME_RE.fullmatch(name):
            raise InvalidNameError(
                f"grouping key name {name!r} is not a valid label name "
                "(expected [a-zA-Z_][a-zA-Z0-9_]*)"
            )
        if name == "job":
            raise InvalidLabelsError("grouping_key must not hold 'job': it is the job argument")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidValueError(
                f"grouping key value for {name!r} must be a str, int or float, got {value!r}"
            )
        pairs.append((name, str(value)))
    return sorted(pairs)


def gateway_url(gateway: str, job: str, grouping_key: Optional[Mapping[str, object]] = None) -> str:
    """The URL of the group ``job`` + ``grouping_key`` at ``gateway``.

    ``gateway`` without an ``http``/``https`` scheme gets ``http://``; a
    trailing ``/`` is dropped. Raises :class:`InvalidNameError` for an empty
    job or a grouping-key name that is not a label name,
    :class:`InvalidLabelsError` for a ``job`` key.
    """
    if not isinstance(gateway, str) or not gateway.strip("/"):
        raise InvalidValueError(f"gateway must be a host:port or URL, got {gateway!r}")
    if not isinstance(job, str) or not job:
        raise InvalidNameError(f"job must be a non-empty string, got {job!r}")
    pairs = _grouping_pairs(grouping_key)
    if urllib.parse.urlsplit(gateway).scheme not in ("http", "https"):
        gateway = f"http://{gateway}"
    path = "".join(f"/{_escape(name, value)}" for name, value in pairs)
    return f"{gateway.rstrip('/')}/metrics/{_escape('job', job)}{path}"


def default_handler(
    url: str,
    method: str,
    timeout: Optional[float],
    headers: list[tuple[str, str]],
    data: bytes,
    tls_context: Optional[ssl.SSLContext] = None,
) -> Callable[[], None]:
    """The handler used when none is given: urllib, redirects not followed.

    ``tls_context`` is used for https URLs (None: the default context).
    The environment's proxy settings apply, as in urllib.
    """
    urls = opener(tls_context)

    def send() -> None:
        request = urllib.request.Request(url, data=data, method=method)
        for name, value in headers:
            request.add_header(name, value)
        with urls.open(request, timeout=timeout) as response:
            response.read(BODY_LIMIT)

    return send


def _refuse_labels(text: str, forbidden: frozenset[str], url: str) -> None:
    try:
        families = parse(text)
    except ParseError as exc:
        raise InvalidValueError(
            f"the exposition to push does not parse ({exc}); nothing was sent to {url!r}"
        ) from None
    for family in families:
        for sample in family.samples:
            for name, _ in sample.labels:
                if name in forbidden:
                    where = "job argument" if name == "job" else "grouping key"
                    raise InvalidLabelsError(
                        f"sample {sample.name!r} carries the label {name!r}, which the "
                        f"gateway takes from the {where}; nothing was sent to {url!r}"
                    )


def _check_options(
    url: str,
    timeout: Optional[float],
    handler: Optional[Handler],
    basic_auth: Optional[tuple[str, str]],
    tls_context: Optional[ssl.SSLContext],
) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise InvalidValueError(f"timeout must be seconds > 0 or None, got {timeout!r}")
    if handler is not None and not callable(handler):
        raise InvalidValueError(f"handler must be callable, got {handler!r}")
    if basic_auth is not None and not (
        isinstance(basic_auth, tuple)
        and len(basic_auth) == 2
        and all(isinstance(part, str) for part in basic_auth)
    ):
        raise InvalidValueError(
            f"basic_auth must be a (user, password) tuple of strings, got {basic_auth!r}"
        )
    if tls_context is not None:
        if not isinstance(tls_context, ssl.SSLContext):
            raise InvalidValueError(f"tls_context must be an ssl.SSLContext, got {tls_context!r}")
        if handler is not None:
            raise InvalidValueError(
                "tls_context cannot be combined with a handler: the handler makes the connection"
            )
        if not url.startswith("https://"):
            raise InvalidValueError(f"tls_context needs an https gateway, got {url!r}")


def _use_gateway(
    method: str,
    gateway: str,
    job: str,
    source: object,
    grouping_key: Optional[Mapping[str, object]],
    timeout: Optional[float],
    handler: Optional[Handler],
    basic_auth: Optional[tuple[str, str]],
    tls_context: Optional[ssl.SSLContext],
    compression: Optional[str],
    backoff: Optional[Backoff],
) -> None:
    policy = Backoff() if backoff is None else backoff
    if not isinstance(policy, Backoff):
        raise InvalidValueError(f"backoff must be a Backoff, got {backoff!r}")
    start = policy.clock()
    url = gateway_url(gateway, job, grouping_key)
    _check_options(url, timeout, handler, basic_auth, tls_context)
    if compression is not None and (
        not isinstance(compression, str) or compression.lower() != "gzip"
    ):
        raise InvalidValueError(f"compression must be None or 'gzip', got {compression!r}")
    headers = [("Content-Type", CONTENT_TYPE)]
    data = b""
    if method != "DELETE":
        render, _ = resolve_source(source)
        out = render("text", None)
        text = out.decode("utf-8") if isinstance(out, bytes) else out
        forbidden = frozenset(["job", *(name for name, _ in _grouping_pairs(grouping_key))])
        _refuse_labels(text, forbidden, url)
        data = text.encode("utf-8")
        if compression is not None:
            # mtime=0: the same metrics give the same bytes.
            data = gzip.compress(data, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
    if basic_auth is not None:
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    deadline = None if timeout is None else start + timeout
    _send_with_retries(method, url, headers, data, deadline, handler, tls_context, policy)


def _send_with_retries(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    data: bytes,
    deadline: Optional[float],
    handler: Optional[Handler],
    tls_context: Optional[ssl.SSLContext],
    policy: Backoff,
) -> None:
    attempts = 0
    status: Optional[int] = None
    body = ""
    last = "nothing sent"
    while True:
        remaining = None if deadline is None else deadline - policy.clock()
        if remaining is not None and remaining <= 0:
            break
        attempts += 1
        try:
            if handler is None:
                default_handler(url, method, remaining, list(headers), data, tls_context)()
            else:
                handler(
                    url=url, method=method, timeout=remaining, headers=list(headers), data=data
                )()
            return
        except urllib.error.HTTPError as exc:
            status, body = exc.code, read_body(exc, BODY_LIMIT).decode("utf-8", "replace")
            if status < 500:
                message = _rejection(method, url, status, body, exc)
                raise ExportRejectedError(message, url, status, body) from exc
            last = f"{status} {body.strip()}".strip()
        except (OSError, HTTPException) as exc:
            status, body, reason = None, "", getattr(exc, "reason", exc)
            if isinstance(reason, ssl.CertificateError):  # a wrong certificate stays wrong
                raise ExportRejectedError(f"tls with {url!r} failed: {reason}", url) from exc
            last = f"connection error: {reason}"
        if attempts >= policy.max_attempts:
            break
        wait = policy.wait(attempts)
        if deadline is not None and policy.clock() + wait >= deadline:
            break
        policy.sleep(wait)
    raise ExportUnavailableError(
        f"pushgateway unavailable: {method} {url!r} failed after {attempts} "
        f"attempt{'s' if attempts != 1 else ''}; last: {last}",
        url,
        status,
        body,
        attempts,
    )


def _rejection(method: str, url: str, status: int, body: str, exc: urllib.error.HTTPError) -> str:
    if status < 400:
        location = exc.headers.get("Location") if exc.headers is not None else None
        return (
            f"pushgateway answered {status} (redirect to {location!r}) to {method} {url!r}: "
            "the group URL is wrong (dot segments, doubled slashes or a route prefix in gateway?)"
        )
    return f"pushgateway refused {method} {url!r} with {status}: {body.strip() or exc.reason}"


def push_to_gateway(
    gateway: str,
    job: str,
    source: object = None,
    grouping_key: Optional[Mapping[str, object]] = None,
    timeout: Optional[float] = 30.0,
    handler: Optional[Handler] = None,
    basic_auth: Optional[tuple[str, str]] = None,
    tls_context: Optional[ssl.SSLContext] = None,
    *,
    compression: Optional[str] = None,
    backoff: Optional[Backoff] = None,
) -> None:
    """Replace every metric of the group with ``source``'s (HTTP PUT).

    ``gateway`` is ``host:port`` or an http(s) URL; ``grouping_key`` maps
    label names to values (str, int or float). ``timeout`` (seconds, or None
    for no bound) bounds the whole call, retries included; each attempt gets
    what is left as its socket timeout. ``handler`` follows
    prometheus_client's protocol (module docstring) and replaces urllib;
    ``basic_auth=(user, password)`` adds an ``Authorization`` header (for a
    handler too); ``tls_context`` is used for an https gateway (not with a
    handler). ``compression="gzip"`` gzips the body. ``backoff`` paces the
    retries.

    Raises, with nothing sent: :class:`InvalidNameError` (empty job, bad
    grouping-key name), :class:`InvalidLabelsError` (a ``job`` key, or a
    pushed sample carrying ``job`` or a grouping-key label),
    :class:`InvalidValueError` (other bad arguments). After sending:
    :class:`ExportRejectedError` or :class:`ExportUnavailableError`.
    """
    # fmt: off
    _use_gateway(
        "PUT", gateway, job, source, grouping_key, timeout, handler, basic_auth,
        tls_context, compression, backoff,
    )
    # fmt: on


def pushadd_to_gateway(
    gateway: str,
    job: str,
    source: object = None,
    grouping_key: Optional[Mapping[str, object]] = None,
    timeout: Optional[float] = 30.0,
    handler: Optional[Handler] = None,
    basic_auth: Optional[tuple[str, str]] = None,
    tls_context: Optional[ssl.SSLContext] = None,
    *,
    compression: Optional[str] = None,
    backoff: Optional[Backoff] = None,
) -> None:
    """Replace the group's families that ``source`` has, keep the rest (HTTP POST).

    Arguments, refusals and errors as :func:`push_to_gateway`.
    """
    # fmt: off
    _use_gateway(
        "POST", gateway, job, source, grouping_key, timeout, handler, basic_auth,
        tls_context, compression, backoff,
    )
    # fmt: on


def delete_from_gateway(
    gateway: str,
    job: str,
    grouping_key: Optional[Mapping[str, object]] = None,
    timeout: Optional[float] = 30.0,
    handler: Optional[Handler] = None,
    basic_auth: Optional[tuple[str, str]] = None,
    tls_context: Optional[ssl.SSLContext] = None,
    *,
    backoff: Optional[Backoff] = None,
) -> None:
    """Delete the group (HTTP DELETE, empty body); a missing group is no error.

    The gateway answers 202 and applies the delete in order with pushes.
    Arguments and errors as :func:`push_to_gateway`.
    """
    # fmt: off
    _use_gateway(
        "DELETE", gateway, job, None, grouping_key, timeout, handler, basic_auth,
        tls_context, None, backoff,
    )
    # fmt: on


def instance_ip_grouping_key() -> dict[str, str]:
    """``{"instance": <this host's IP address>}``, found as prometheus_client finds it.

    The address a UDP socket to ``localhost`` is bound from (no packet is
    sent); on macOS one towards 10.255.255.255, where that does not work.
    """
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
        if sys.platform == "darwin":
            s.connect(("10.255.255.255", 1))
        else:
            s.connect(("localhost", 0))
        return {"instance": str(s.getsockname()[0])}
