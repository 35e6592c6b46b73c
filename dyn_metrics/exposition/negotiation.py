"""Content negotiation for ``/metrics``, as pure functions.

:func:`negotiate` picks the exposition format (text, OpenMetrics or protobuf) from ``Accept``,
and :func:`accepts_gzip` reads ``Accept-Encoding``. No I/O and no state, so
each is tested with tables alone. ``name[]`` selection is
:mod:`dyn_metrics.exposition.select`'s.
"""

import re
from collections.abc import Iterator
from typing import Optional

from .openmetrics import CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from .protobuf import CONTENT_TYPE as PROTOBUF_CONTENT_TYPE
from .text import CONTENT_TYPE as TEXT_CONTENT_TYPE

CONTENT_TYPES = {
    "text": TEXT_CONTENT_TYPE,
    "openmetrics": OPENMETRICS_CONTENT_TYPE,
    "protobuf": PROTOBUF_CONTENT_TYPE,
}

_QVALUE_RE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
_OM_VERSIONS = (None, "1.0.0", "0.0.1")
_PROTO = "io.prometheus.client.MetricFamily"


def _parse_list(header: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """Split an Accept-style header into ``(token, params, q)``; bad q-values give q=0."""
    for item in header.split(","):
        token, *params = item.split(";")
        token = token.strip().lower()
        if not token:
            continue
        q = 1.0
        rest: dict[str, str] = {}
        for param in params:
            key, _, value = param.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                q = float(value) if _QVALUE_RE.fullmatch(value) else 0.0
            elif key:
                rest[key] = value
        yield token, rest, q


def negotiate(accept_header: Optional[str], openmetrics_enabled: bool) -> str:
    """Choose ``"protobuf"``, ``"openmetrics"`` or ``"text"`` for an ``Accept`` header.

    Protobuf when the header names ``application/vnd.google.protobuf`` with
    ``proto=io.prometheus.client.MetricFamily`` and ``encoding=delimited`` at a
    q-value > 0 that no other format we serve beats; on equal q the entry
    listed first wins (client_golang walks the entries in q order, a stable
    sort). Protobuf does not depend on ``openmetrics_enabled``.

    OpenMetrics only when ``openmetrics_enabled`` and the header names
    ``application/openmetrics-text`` with version 1.0.0, 0.0.1 or none, at a
    q-value > 0 and >= text's. Text's q comes from the most specific of
    ``text/plain;version=0.0.4``, ``text/plain``, ``text/*``, ``*/*``. A
    missing header or ``*/*`` gives text; wildcards never select OpenMetrics
    or protobuf.
    """
    if not accept_header:
        return "text"
    # (specificity, q, -position) of the most specific matching range of each format;
    # protobuf has one specificity, so its best entry is the first at its highest q.
    om = (-1, 0.0, 0)
    text = (-1, 0.0, 0)
    proto = (0, 0.0, 0)
    for position, (token, params, q) in enumerate(_parse_list(accept_header)):
        version = params.get("version")
        if token == "application/vnd.google.protobuf":
            if params.get("proto") == _PROTO and params.get("encoding") == "delimited":
                proto = max(proto, (0, q, -position))
        elif token == "application/openmetrics-text":
            if openmetrics_enabled and version in _OM_VERSIONS:
                om = max(om, (1 if version else 0, q, -position))
        elif token == "text/plain":
            if version in (None, "0.0.4"):
                text = max(text, (3 if version else 2, q, -position))
        elif token == "text/*":
            text = max(text, (1, q, -position))
        elif token == "*/*":
            text = max(text, (0, q, -position))
    if proto[1] > 0.0 and all(
        (proto[1], proto[2]) > (other[1], other[2]) for other in (om, text) if other[0] >= 0
    ):
        return "protobuf"
    if om[1] > 0.0 and om[1] >= text[1]:
        return "openmetrics"
    return "text"


def accepts_gzip(accept_encoding: Optional[str]) -> bool:
    """True when ``Accept-Encoding`` allows gzip (``q=0`` refuses; ``*`` counts)."""
    if not accept_encoding:
        return False
    explicit: Optional[float] = None
    star: Optional[float] = None
    for token, _, q in _parse_list(accept_encoding):
        if token in ("gzip", "x-gzip"):
            explicit = q if explicit is None else max(explicit, q)
        elif token == "*":
            star = q
    if explicit is not None:
        return explicit > 0.0
    return bool(star)
