"""Text 0.0.4 lines: leading and trailing blanks, names, HELP escapes, type words."""

import pytest

from dyn_metrics.exposition.check import check
from dyn_metrics.exposition.parse.reader import parse
from tests.exposition.parse.scenarios import assert_parse_error

ERRORS = [
    # (input, format, line, message prefix)
    ("  x 1\n", "text", 1, "whitespace before the metric name"),
    ("x 1 \n", "text", 1, "trailing whitespace after the value"),
    ("x-y 1\n", "text", 1, "invalid metric name 'x-y'"),
    ("# HELP x a \\q\nx 1\n", "text", 1, "invalid escape sequence '\\q' in HELP"),
    ("x 1 # {} 1\n", "text", 1, "exemplars exist only in OpenMetrics"),
    ("# TYPE x gaugeish\nx 1\n", "text", 1, "unknown metric type 'gaugeish'"),
    ("# TYPE x unknown\nx 1\n", "text", 1, "metric type 'unknown' exists only in OpenMetrics"),
    # Prometheus 3 quoted names: what is still wrong
    ('{"x"="1"} 1\n', "text", 1, "missing metric name (the braces hold only labels)"),
    ('{"",a="1"} 1\n', "text", 1, "empty quoted metric name"),
    ('{"x" 1\n', "text", 1, "expected ',' or '}' after the quoted name 'x'"),
    ('{"x} 1\n', "text", 1, "unterminated quoted metric name"),
    ('x{"a.b" 1\n', "text", 1, "expected '=' after label name 'a.b'"),
    ('# TYPE "x"gauge\n', "text", 1, "expected a blank after the quoted name 'x'"),
    ('{"my.metric"} 1\n# EOF\n', "openmetrics", 1, "quoted metric names are Prometheus 3"),
]

# Prometheus 3 quoted UTF-8 names: valid text, with a utf8-name lint.
# (input, family name, type, help, [(sample name, labels)])
UTF8_NAMES = [
    ('{"my.metric",label="v"} 1\n', "my.metric", "untyped", "", [("my.metric", (("label", "v"),))]),
    ('{"my.metric"} 1\n', "my.metric", "untyped", "", [("my.metric", ())]),
    (
        'my_metric{"label.x"="v"} 1\n',
        "my_metric",
        "untyped",
        "",
        [("my_metric", (("label.x", "v"),))],
    ),
    (
        '{ "my.metric" , "label.x"="v", b="2", } 1 1700000000000\n',
        "my.metric",
        "untyped",
        "",
        [("my.metric", (("label.x", "v"), ("b", "2")))],
    ),
    (
        '# HELP "my.metric" Help \\n.\n# TYPE "my.metric" gauge\n{"my.metric",a="1"} 1\n',
        "my.metric",
        "gauge",
        "Help \n.",
        [("my.metric", (("a", "1"),))],
    ),
    (
        '# TYPE "lat.seconds" histogram\n{"lat.seconds_bucket",le="+Inf"} 1\n'
        '{"lat.seconds_count"} 1\n{"lat.seconds_sum"} 2\n',
        "lat.seconds",
        "histogram",
        "",
        [
            ("lat.seconds_bucket", (("le", "+Inf"),)),
            ("lat.seconds_count", ()),
            ("lat.seconds_sum", ()),
        ],
    ),
    ('{"café \\"ü\\""} 1\n', 'café "ü"', "untyped", "", [('café "ü"', ())]),
]


@pytest.mark.parametrize("text, name, type_word, help_text, samples", UTF8_NAMES)
def test_text_lines_quoted_utf8_names(text, name, type_word, help_text, samples):
    (family,) = parse(text, "text")
    assert (family.name, family.type, family.help) == (name, type_word, help_text)
    assert [(s.name, s.labels) for s in family.samples] == samples
    result = check(text, "text")
    assert result.errors == []
    assert [p.code for p in result.warnings] == ["utf8-name"]  # once per family


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_text_lines_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)
