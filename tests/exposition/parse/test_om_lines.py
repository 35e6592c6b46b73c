"""OpenMetrics lines: no blank or comment lines, single spaces, the OpenMetrics type words."""

import pytest

from tests.exposition.parse.scenarios import assert_parse_error

ERRORS = [
    # (input, format, line, message prefix)
    # OpenMetrics
    ("x 1\n\n# EOF\n", "openmetrics", 2, "blank line"),
    ("# hello\n# EOF\n", "openmetrics", 1, "comment lines are not allowed"),
    ("x  1\n# EOF\n", "openmetrics", 1, "expected a single space before the value"),
    ("# TYPE x untyped\n# EOF\n", "openmetrics", 1, "invalid metric type 'untyped'"),
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_om_lines_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)
