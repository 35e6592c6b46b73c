"""The parser's error tables share one assertion: rows of (input, format, line, message prefix).

Each test module of this package holds the rows for the rules of its own
module of :mod:`dyn_metrics.exposition.parse`; :mod:`.test_reader` feeds
every row to its "never crashes" property as an example.
"""

import pytest

from dyn_metrics import ParseError
from dyn_metrics.exposition.check import check
from dyn_metrics.exposition.parse.reader import parse


def assert_parse_error(text, fmt, line, prefix):
    """``parse(text, fmt)`` raises a ParseError on ``line``, its message led by ``prefix``."""
    with pytest.raises(ParseError) as info:
        parse(text, fmt)
    assert info.value.line == line
    assert info.value.msg.startswith(prefix), info.value.msg
    assert str(info.value) == f"line {line}: {info.value.msg}"


def assert_lint_only(text, fmt, line, code):
    """``text`` parses, and ``check`` warns with ``code`` on ``line`` (strict lints enabled)."""
    parse(text, fmt)
    result = check(text, fmt, enable=("all",))
    assert result.errors == []
    assert (line, code) in [(p.line, p.code) for p in result.warnings], result.warnings
