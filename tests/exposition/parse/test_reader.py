"""The parser end to end: numbered scenarios (input -> families), the input-level errors,
format detection, and the "never crashes" property.

The scenario inputs of every table in this package double as Hypothesis
examples for that property, as prometheus/common's expfmt seeds its fuzz
corpus from its tests.
"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import dyn_metrics as dm
from dyn_metrics import ParseError
from dyn_metrics.exposition.check import check
from dyn_metrics.exposition.parse.reader import analyse, detect_format, parse
from dyn_metrics.model import Exemplar, Family, Sample
from tests.exposition.parse import (
    test_families,
    test_family_rules,
    test_numbers,
    test_om_lines,
    test_text_lines,
    test_tokens,
)
from tests.exposition.parse.scenarios import assert_parse_error


def S(name, value, labels=(), timestamp=None, exemplar=None):
    return Sample(name, tuple(labels), value, timestamp, exemplar)


OK = [
    # 0: empty input
    ("", "text", []),
    # 1: minimal line, no metadata -> untyped family
    ("x 1\n", "text", [Family("x", "untyped", "", (S("x", 1),))]),
    # 2: Dynamo counter with HELP/TYPE and labels, value kept as int
    (
        "# HELP dynamo_component_testcounter A test counter\n"
        "# TYPE dynamo_component_testcounter counter\n"
        'dynamo_component_testcounter{dynamo_component="comp345",dynamo_namespace="ns345"} '
        "123.456789\n",
        "text",
        [
            Family(
                "dynamo_component_testcounter",
                "counter",
                "A test counter",
                (
                    S(
                        "dynamo_component_testcounter",
                        123.456789,
                        [("dynamo_component", "comp345"), ("dynamo_namespace", "ns345")],
                    ),
                ),
            )
        ],
    ),
    # 3: escapes in HELP (text: only \\ and \n) and label values
    (
        '# HELP g a\\\\b\\nc "q"\n# TYPE g gauge\ng{a="x\\"y\\\\z\\n",b=""} -0\n',
        "text",
        [Family("g", "gauge", 'a\\b\nc "q"', (S("g", -0.0, [("a", 'x"y\\z\n'), ("b", "")]),))],
    ),
    # 4: text timestamps are milliseconds -> seconds in the model
    (
        "# TYPE g gauge\ng 1 1700000000123\n",
        "text",
        [Family("g", "gauge", "", (S("g", 1, timestamp=1700000000.123),))],
    ),
    # 5: histogram keeps le spelling and sample order
    (
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1.5\nh_count 2\n',
        "text",
        [
            Family(
                "h",
                "histogram",
                "",
                (
                    S("h_bucket", 1, [("le", "1")]),
                    S("h_bucket", 2, [("le", "+Inf")]),
                    S("h_sum", 1.5),
                    S("h_count", 2),
                ),
            )
        ],
    ),
    # 6: blanks, tabs, {} and trailing comma are fine in text
    (
        '# TYPE g gauge\ng{ a = "1" ,}\t 2\ng{} 3\n',
        "text",
        [Family("g", "gauge", "", (S("g", 2, [("a", "1")]), S("g", 3)))],
    ),
    # 7: HELP without TYPE, plain comments ignored
    (
        "# just words\n# HELP x The x.\nx 1\n",
        "text",
        [Family("x", "untyped", "The x.", (S("x", 1),))],
    ),
    # 8: metadata-only family survives with no samples
    ("# HELP x X.\n# TYPE x gauge\n", "text", [Family("x", "gauge", "X.", ())]),
    # 9: OpenMetrics counter -> model name with _total, created kept
    (
        "# TYPE jobs counter\n# HELP jobs Jobs.\njobs_total 3\njobs_created 1700000000.5\n# EOF\n",
        "openmetrics",
        [
            Family(
                "jobs_total",
                "counter",
                "Jobs.",
                (S("jobs_total", 3), S("jobs_created", 1700000000.5)),
            )
        ],
    ),
    # 10: OpenMetrics le respelled to text spelling, unit kept, unknown -> untyped
    (
        '# TYPE l_seconds histogram\n# UNIT l_seconds seconds\nl_seconds_bucket{le="1e-05"} 0\n'
        'l_seconds_bucket{le="1.0"} 1\nl_seconds_bucket{le="+Inf"} 1\n'
        "l_seconds_count 1\nl_seconds_sum 0.5\n"
        "# TYPE u unknown\nu 1.0\n# EOF",
        "openmetrics",
        [
            Family(
                "l_seconds",
                "histogram",
                "",
                (
                    S("l_seconds_bucket", 0, [("le", "0.00001")]),
                    S("l_seconds_bucket", 1, [("le", "1")]),
                    S("l_seconds_bucket", 1, [("le", "+Inf")]),
                    S("l_seconds_count", 1),
                    S("l_seconds_sum", 0.5),
                ),
                "seconds",
            ),
            Family("u", "untyped", "", (S("u", 1.0),)),
        ],
    ),
    # 11: OpenMetrics HELP escapes \" too; exemplar and second-timestamps
    (
        '# TYPE c counter\n# HELP c say \\"hi\\"\nc_total 1 1.5 # {trace="a"} 0.5 2\n# EOF\n',
        "openmetrics",
        [
            Family(
                "c_total",
                "counter",
                'say "hi"',
                (S("c_total", 1, timestamp=1.5, exemplar=Exemplar((("trace", "a"),), 0.5, 2.0)),),
            )
        ],
    ),
    # 12: auto picks OpenMetrics on a final # EOF
    ("# TYPE g gauge\ng 1\n# EOF\n", "auto", [Family("g", "gauge", "", (S("g", 1),))]),
]


@pytest.mark.parametrize("number", range(len(OK)))
def test_parse_scenarios(number):
    text, fmt, expected = OK[number]
    assert parse(text, fmt) == expected


ERRORS = [
    # (input, format, line, message prefix)
    ("x 1", "text", 1, "last line does not end with a line feed"),
    ("\ufeffx 1\n", "text", 1, "byte order mark"),
    ("x 1\r\n", "text", 1, "line ends with a carriage return"),
    # OpenMetrics
    ("x 1\n", "openmetrics", 1, "missing '# EOF'"),
    ("x 1\n# EOF\nx 2\n", "openmetrics", 3, "unexpected data after # EOF"),
    ("x 1\r\n# EOF\n", "openmetrics", 1, "line ends with a carriage return"),
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_parse_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)


def test_parse_error_is_a_value_error_reporting_the_lowest_line():
    with pytest.raises(ValueError) as info:
        parse('x 1\nx 1\ny{1="a"} 1\n')
    assert info.value.line == 2


def test_parse_rejects_unknown_format():
    with pytest.raises(ValueError, match="format must be one of"):
        parse("", "json")


def test_parse_detect_format_looks_at_the_last_line():
    assert detect_format("x 1\n# EOF\n") == "openmetrics"
    assert detect_format("x 1\n# EOF") == "openmetrics"
    assert detect_format("x 1\n") == "text"
    assert detect_format("# EOF\nx 1\n") == "text"


def test_parse_analyse_reports_lines_of_families_and_samples():
    result = analyse('# HELP a A.\n# TYPE a gauge\na 1\na{x="1"} 2\nb 3\n')
    assert result.errors == []
    assert result.family_lines == [(1, [3, 4]), (5, [5])]


_ERROR_TABLES = (
    ERRORS,
    test_tokens.ERRORS,
    test_numbers.ERRORS,
    test_text_lines.ERRORS,
    test_om_lines.ERRORS,
    test_families.ERRORS,
    test_family_rules.ERRORS,
)
_SCENARIO_INPUTS = [(text, fmt) for text, fmt, _ in OK] + [
    (text, fmt) for table in _ERROR_TABLES for text, fmt, _, _ in table
]


def _with_examples(test):
    for text, fmt in _SCENARIO_INPUTS:
        test = example(text=text, fmt=fmt)(test)
    return test


@_with_examples
@given(
    text=st.text(
        st.sampled_from('xy_:{}="\\# \t\n\r1.e+-IinfNaHELPTYPEUOcountergauhis_bucketsumle'),
        max_size=60,
    ),
    fmt=st.sampled_from(["text", "openmetrics", "auto"]),
)
def test_parse_never_raises_anything_but_parse_error(text, fmt):
    try:
        families = parse(text, fmt)
    except ParseError as exc:
        assert exc.line >= 0
        assert not check(text, fmt).ok
    else:
        assert isinstance(families, list)
        assert check(text, fmt).ok


@pytest.mark.parametrize(
    "given, expected",
    [
        (b"a 1\n", [("a", 1)]),
        (bytearray(b"# TYPE b gauge\nb 2\n"), [("b", 2)]),
        ("c 3\n", [("c", 3)]),
    ],
)
def test_parse_takes_text_or_utf8_bytes(given, expected):
    got = [(f.name, f.samples[0].value) for f in dm.parse(given)]
    assert got == expected


def test_parse_refuses_bytes_that_are_not_utf8_and_non_text():
    with pytest.raises(dm.ParseError, match="line 2: invalid UTF-8"):
        dm.parse(b"a 1\n\xff 2\n")
    with pytest.raises(TypeError, match="str or bytes, got 5"):
        dm.parse(5)
