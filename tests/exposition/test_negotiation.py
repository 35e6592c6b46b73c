"""Content negotiation for ``/metrics``: the ``Accept`` and ``Accept-Encoding`` tables."""

import pytest

from dyn_metrics.exposition.negotiation import CONTENT_TYPES, accepts_gzip, negotiate
from dyn_metrics.exposition.protobuf import CONTENT_TYPE as PROTOBUF_CONTENT_TYPE

PROMETHEUS_2_42_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_NATIVE_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)

# -- Accept-Encoding -----------------------------------------------------------------------------

GZIP_TABLE = [
    (None, False),
    ("", False),
    ("gzip", True),
    ("GZIP", True),
    ("x-gzip", True),
    ("gzip;q=0", False),
    ("gzip; q=0.000", False),
    ("gzip;q=0.001", True),
    ("deflate, gzip;q=0.5", True),
    ("identity", False),
    ("deflate, br", False),
    ("*", True),
    ("*;q=0", False),
    ("gzip;q=0, *", False),  # an explicit refusal beats the wildcard
    ("br, *;q=0.1", True),
    ("gzip;q=abc", False),  # an invalid q-value is not acceptance
]


@pytest.mark.parametrize("header, expected", GZIP_TABLE)
def test_accepts_gzip_table(header, expected):
    assert accepts_gzip(header) is expected


# -- Accept --------------------------------------------------------------------------------------

NEGOTIATION = [
    # (Accept, openmetrics enabled, expected)
    (PROMETHEUS_2_42_ACCEPT, False, "text"),
    (PROMETHEUS_2_42_ACCEPT, True, "openmetrics"),
    (PROMETHEUS_NATIVE_ACCEPT, True, "protobuf"),  # 2.42 with --enable-feature=native-histograms
    (PROMETHEUS_NATIVE_ACCEPT, False, "protobuf"),  # protobuf does not need OpenMetrics enabled
    (None, True, "text"),
    ("", True, "text"),
    ("*/*", True, "text"),
    ("application/*", True, "text"),  # wildcards never pick OpenMetrics
    ("text/plain", True, "text"),
    ("text/plain;version=0.0.4", True, "text"),
    ("application/json", True, "text"),  # nothing we have: text, not 406
    ("application/openmetrics-text", True, "openmetrics"),
    ("application/openmetrics-text", False, "text"),
    ("application/openmetrics-text;version=1.0.0", True, "openmetrics"),
    ("application/openmetrics-text; version=0.0.1", True, "openmetrics"),
    ('application/openmetrics-text; version="1.0.0"', True, "openmetrics"),
    ("Application/OpenMetrics-Text; Version=1.0.0", True, "openmetrics"),
    ("application/openmetrics-text;version=2.0.0", True, "text"),
    ("application/openmetrics-text;q=0", True, "text"),
    ("application/openmetrics-text;q=abc", True, "text"),
    ("text/plain, application/openmetrics-text;q=0.5", True, "text"),
    ("text/plain;q=0.5, application/openmetrics-text;q=0.5", True, "openmetrics"),  # equal q
    ("text/plain;q=0.4, application/openmetrics-text;q=0.5", True, "openmetrics"),
    ("*/*;q=1, application/openmetrics-text;q=0.9", True, "text"),
    ("text/*, application/openmetrics-text;q=0.9", True, "text"),
    (
        "text/plain;version=0.0.4;q=0.2, text/plain;q=1, application/openmetrics-text;q=0.5",
        True,
        "openmetrics",
    ),  # the more specific text range decides text's q
    (
        "text/plain;version=1.0.0;escaping=underscores, application/openmetrics-text;q=0.9",
        True,
        "openmetrics",
    ),  # text 1.0.0 is not what we serve
    (
        "application/openmetrics-text;version=2.0.0, "
        "application/openmetrics-text;version=1.0.0;q=0.1,"
        "text/plain;q=0.2",
        True,
        "text",
    ),
]


PROTO = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

PROTOBUF_NEGOTIATION = [
    # (Accept, openmetrics enabled, expected)
    (PROTO, False, "protobuf"),
    (PROTO, True, "protobuf"),
    (
        "Application/Vnd.Google.Protobuf;Proto=io.prometheus.client.MetricFamily;Encoding=delimited",
        True,
        "protobuf",
    ),  # the media type and parameter names are case-insensitive
    (
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited",
        True,
        "protobuf",
    ),  # our own Content-Type, spaces and all
    ("application/vnd.google.protobuf", True, "text"),  # no proto, no encoding
    ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily", True, "text"),
    ("application/vnd.google.protobuf;encoding=delimited", True, "text"),
    (PROTO.replace("delimited", "text"), True, "text"),  # a debug rendering, not the wire format
    (PROTO.replace("delimited", "compact-text"), False, "text"),
    (PROTO.replace("MetricFamily", "Metric"), True, "text"),
    (PROTO + ";q=0", True, "text"),
    (PROTO + ";q=abc", True, "text"),
    (PROTO + ";escaping=underscores", True, "protobuf"),  # newer scrapers' extra parameter
    (PROTO + ";q=0.5,text/plain;version=0.0.4;q=0.6", True, "text"),
    (PROTO + ";q=0.7,text/plain;version=0.0.4;q=0.6", True, "protobuf"),
    (PROTO + ";q=0.5,application/openmetrics-text;q=0.6", True, "openmetrics"),
    (PROTO + ";q=0.5,application/openmetrics-text;q=0.6", False, "protobuf"),  # OM not offered
    # equal q: the entry listed first wins
    (PROTO + ",application/openmetrics-text;version=1.0.0", True, "protobuf"),
    ("application/openmetrics-text;version=1.0.0," + PROTO, True, "openmetrics"),
    ("application/openmetrics-text;version=1.0.0," + PROTO, False, "protobuf"),
    ("text/plain;version=0.0.4," + PROTO, True, "text"),
    (PROTO + ",text/plain;version=0.0.4", True, "protobuf"),
    ("*/*," + PROTO, True, "text"),
    ("*/*;q=0.9," + PROTO, True, "protobuf"),
    # the most specific text range gives text's q, as against OpenMetrics
    ("text/plain;version=0.0.4;q=0.2,text/plain;q=1," + PROTO + ";q=0.5", True, "protobuf"),
    (PROTO + ";q=0.1," + PROTO + ";q=0.9,text/plain;q=0.5", True, "protobuf"),  # its best entry
]


@pytest.mark.parametrize("accept, enabled, expected", NEGOTIATION + PROTOBUF_NEGOTIATION)
def test_negotiate_table(accept, enabled, expected):
    assert negotiate(accept, enabled) == expected


def test_every_negotiated_format_has_a_content_type():
    assert CONTENT_TYPES["protobuf"] == PROTOBUF_CONTENT_TYPE
    formats = {negotiate(a, e) for a, e, _ in NEGOTIATION + PROTOBUF_NEGOTIATION}
    assert formats == {"text", "openmetrics", "protobuf"} <= set(CONTENT_TYPES)
