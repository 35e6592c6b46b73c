"""Grouping lines into families: metadata order, interleaving, duplicate series, clashes."""

import pytest

from tests.exposition.parse.scenarios import assert_lint_only, assert_parse_error

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
    # a repeat at an equal timestamp is valid (the official suite), an earlier one is not
    ("x 1 5\nx 2 4\n# EOF\n", "openmetrics", 2, "duplicate series x (first on line 1)"),
    ("x 1\nx 2\n# EOF\n", "openmetrics", 2, "duplicate series x (first on line 1)"),
    # a colon family's alias never takes samples from a family of that very name
    (
        "# TYPE a:b gauge\n# TYPE a_b counter\na_b 1\n# EOF\n",
        "openmetrics",
        3,
        "sample name 'a_b' does not fit counter family 'a_b'",
    ),
]

LINTS = [
    # (input, format, line, code)
    ("x 1 5\nx 2 5\nx 3 6\n# EOF\n", "openmetrics", 1, "explicit-timestamp"),
    # prometheus_client: metadata under a:b, samples under a_b
    ("# HELP a:b B.\n# TYPE a:b gauge\na_b 1\n# EOF\n", "openmetrics", 3, "colon-mangled"),
    ("# HELP a:b B.\n# TYPE a:b gauge\na_b 1\n# EOF\n", "openmetrics", 2, "metadata-order"),
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_families_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)


@pytest.mark.parametrize("text, fmt, line, code", LINTS)
def test_families_lint_scenarios(text, fmt, line, code):
    assert_lint_only(text, fmt, line, code)
