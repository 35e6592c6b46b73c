"""Grouping lines into families: metadata order, interleaving, duplicate series, clashes."""

import pytest

from tests.exposition.parse.scenarios import assert_parse_error

ERRORS = [
    # (input, format, line, message prefix)
    ("# TYPE x gauge\n# TYPE x gauge\nx 1\n", "text", 2, "second TYPE line for 'x'"),
    ("x 1\n# TYPE x gauge\n", "text", 2, "TYPE line for 'x' after its samples"),
    ('x 1\ny 1\nx{a="b"} 1\n', "text", 3, "samples of 'x' are interleaved"),
    ('x{a="1"} 1\nx{a="1"} 2\n', "text", 2, 'duplicate series x{a="1"} (first on line 1)'),
    ('x{a=""} 1\nx 2\n', "text", 2, "duplicate series x (first on line 1)"),
    # OpenMetrics
    (
        "# TYPE c counter\nc 1\n# EOF\n",
        "openmetrics",
        2,
        "sample name 'c' does not fit counter family 'c'",
    ),
    (
        "# TYPE c counter\nc_total 1\n# TYPE c_created gauge\nc_created 1\n# EOF\n",
        "openmetrics",
        3,
        "family 'c_created' clashes with family 'c'",
    ),
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_families_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)
