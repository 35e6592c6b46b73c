"""Label sets and escapes, shared by both formats' line lexers, as the parser reports them."""

import pytest

from tests.exposition.parse.scenarios import assert_lint_only, assert_parse_error

ERRORS = [
    # (input, format, line, message prefix)
    ('x{1a="b"} 1\n', "text", 1, "invalid label name '1a'"),
    ('x{a:b="1"} 1\n', "text", 1, "invalid label name 'a:b'"),
    ('x{a="1",a="2"} 1\n', "text", 1, "duplicate label name 'a'"),
    ('x{a="C:\\q"} 1\n', "text", 1, "invalid escape sequence '\\q' in label value"),
    ('x{a="1} 1\n', "text", 1, "unterminated value of label 'a'"),
    # OpenMetrics
    ('x{a="1",} 1\n# EOF\n', "openmetrics", 1, "trailing comma"),
    ('x{a="say "hi""} 1\n# EOF\n', "openmetrics", 1, "expected ',' or '}' after the value"),
]

LINTS = [
    # (input, format, line, code)
    # The ABNF forbids a raw " in HELP, the official parser suite accepts it.
    ('# TYPE x gauge\n# HELP x say "hi"\nx 1\n# EOF\n', "openmetrics", 2, "help-quote"),
    ("# TYPE x gauge\n# HELP x a\\qb\nx 1\n# EOF\n", "openmetrics", 2, "undefined-escape"),
    ('# HELP x X.\n# TYPE x gauge\nx{__a="1"} 1\n', "text", 3, "reserved-label"),
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_tokens_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)


@pytest.mark.parametrize("text, fmt, line, code", LINTS)
def test_tokens_lint_scenarios(text, fmt, line, code):
    assert_lint_only(text, fmt, line, code)
