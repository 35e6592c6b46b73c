"""Text 0.0.4 lines: leading and trailing blanks, names, HELP escapes, type words."""

import pytest

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
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_text_lines_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)
