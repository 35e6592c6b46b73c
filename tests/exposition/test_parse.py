"""Strict parser: numbered scenarios (input -> families, or -> ParseError line and prefix).

The scenario inputs double as Hypothesis examples for the "never crashes"
property at the bottom, as expfmt seeds its fuzz corpus from its tests.
"""

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dyn_metrics import ParseError
from dyn_metrics.exposition.check import check
from dyn_metrics.exposition.parse.reader import analyse, detect_format, parse, parse_number
from dyn_metrics.model import Exemplar, Family, Sample


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
    ("  x 1\n", "text", 1, "whitespace before the metric name"),
    ("x 1 \n", "text", 1, "trailing whitespace after the value"),
    ("x-y 1\n", "text", 1, "invalid metric name 'x-y'"),
    ('x{1a="b"} 1\n', "text", 1, "invalid label name '1a'"),
    ('x{a:b="1"} 1\n', "text", 1, "invalid label name 'a:b'"),
    ('x{a="1",a="2"} 1\n', "text", 1, "duplicate label name 'a'"),
    ('x{a="C:\\q"} 1\n', "text", 1, "invalid escape sequence '\\q' in label value"),
    ('x{a="1} 1\n', "text", 1, "unterminated value of label 'a'"),
    ("# HELP x a \\q\nx 1\n", "text", 1, "invalid escape sequence '\\q' in HELP"),
    ("x 1,5\n", "text", 1, "invalid number '1,5'"),
    ("x 0x10\n", "text", 1, "invalid number '0x10'"),
    ("x 1e400\n", "text", 1, "value '1e400' is out of the float64 range"),
    ("x 1 -5\n", "text", 1, "signed timestamp '-5'"),
    ("x 1 1.5\n", "text", 1, "invalid timestamp '1.5'"),
    (
        "x 1 99999999999999999999\n",
        "text",
        1,
        "timestamp '99999999999999999999' is out of the int64 range",
    ),
    ("x 1 # {} 1\n", "text", 1, "exemplars exist only in OpenMetrics"),
    ("# TYPE x gaugeish\nx 1\n", "text", 1, "unknown metric type 'gaugeish'"),
    ("# TYPE x unknown\nx 1\n", "text", 1, "metric type 'unknown' exists only in OpenMetrics"),
    ("# TYPE x gauge\n# TYPE x gauge\nx 1\n", "text", 2, "second TYPE line for 'x'"),
    ("x 1\n# TYPE x gauge\n", "text", 2, "TYPE line for 'x' after its samples"),
    ('x 1\ny 1\nx{a="b"} 1\n', "text", 3, "samples of 'x' are interleaved"),
    ('x{a="1"} 1\nx{a="1"} 2\n', "text", 2, 'duplicate series x{a="1"} (first on line 1)'),
    ('x{a=""} 1\nx 2\n', "text", 2, "duplicate series x (first on line 1)"),
    (
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
        "text",
        2,
        'histogram h has no le="+Inf" bucket',
    ),
    (
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "text",
        3,
        "bucket counts of h are not cumulative",
    ),
    (
        '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
        "text",
        4,
        "h_count = 1 differs from the +Inf bucket 2",
    ),
    (
        '# TYPE s summary\ns{quantile="0.9"} 1\ns{quantile="0.1"} 1\n',
        "text",
        3,
        "quantiles of s are not in increasing order",
    ),
    ('# TYPE s summary\ns{quantile="2"} 1\n', "text", 2, "invalid quantile '2'"),
    # OpenMetrics
    ("x 1\n", "openmetrics", 1, "missing '# EOF'"),
    ("x 1\n# EOF\nx 2\n", "openmetrics", 3, "unexpected data after # EOF"),
    ("x 1\n\n# EOF\n", "openmetrics", 2, "blank line"),
    ("# hello\n# EOF\n", "openmetrics", 1, "comment lines are not allowed"),
    ("x  1\n# EOF\n", "openmetrics", 1, "expected a single space before the value"),
    ('x{a="1",} 1\n# EOF\n', "openmetrics", 1, "trailing comma"),
    ("# TYPE x untyped\n# EOF\n", "openmetrics", 1, "invalid metric type 'untyped'"),
    (
        "# TYPE c counter\nc 1\n# EOF\n",
        "openmetrics",
        2,
        "sample name 'c' does not fit counter family 'c'",
    ),
    ("# TYPE c counter\nc_total -1\n# EOF\n", "openmetrics", 2, "counter 'c_total' is negative"),
    (
        "# TYPE x gauge\n# UNIT x seconds\nx 1\n# EOF\n",
        "openmetrics",
        2,
        "unit 'seconds' is not a suffix",
    ),
    (
        "# TYPE i info\ni_info 2\n# EOF\n",
        "openmetrics",
        2,
        "info sample 'i_info' must have the value 1",
    ),
    ('# TYPE x gauge\n# HELP x say "hi"\n# EOF\n', "openmetrics", 2, "unescaped '\"' in HELP text"),
    ("# TYPE x gauge\nx 1 # {} 1\n# EOF\n", "openmetrics", 2, "'x' cannot carry an exemplar"),
    (
        "# TYPE c counter\nc_total 1\n# TYPE c_created gauge\nc_created 1\n# EOF\n",
        "openmetrics",
        3,
        "family 'c_created' clashes with family 'c'",
    ),
    (
        '# TYPE h histogram\nh_bucket{le="+Inf"} 1.5\n# EOF\n',
        "openmetrics",
        2,
        "bucket 'h_bucket' must be an integer",
    ),
    ("x 1\r\n# EOF\n", "openmetrics", 1, "line ends with a carriage return"),
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_parse_error_scenarios(text, fmt, line, prefix):
    with pytest.raises(ParseError) as info:
        parse(text, fmt)
    assert info.value.line == line
    assert info.value.msg.startswith(prefix), info.value.msg
    assert str(info.value) == f"line {line}: {info.value.msg}"


def test_parse_error_is_a_value_error_reporting_the_lowest_line():
    with pytest.raises(ValueError) as info:
        parse('x 1\nx 1\ny{1="a"} 1\n')
    assert info.value.line == 2


def test_parse_rejects_unknown_format():
    with pytest.raises(ValueError, match="format must be one of"):
        parse("", "json")


NUMBERS = [
    ("1", 1),
    ("-1", -1),
    ("+1", 1),
    ("0042", 42),
    ("1.5", 1.5),
    (".5", 0.5),
    ("5.", 5.0),
    ("1e3", 1000.0),
    ("1E3", 1000.0),
    ("1e+3", 1000.0),
    ("1.5e-3", 0.0015),
    ("1e-400", 0.0),
    ("-0", -0.0),
    ("+Inf", math.inf),
    ("inf", math.inf),
    ("Infinity", math.inf),
    ("-infinity", -math.inf),
    ("12345678901234567890123", 12345678901234567890123),
]


@pytest.mark.parametrize("token, expected", NUMBERS)
def test_parse_number_accepts_go_floats(token, expected):
    value = parse_number(token)
    assert value == expected and type(value) is type(expected)
    assert math.copysign(1, value) == math.copysign(1, expected)


@pytest.mark.parametrize("token", ["NaN", "nan", "nAn"])
def test_parse_number_nan(token):
    assert math.isnan(parse_number(token))


@pytest.mark.parametrize(
    "token", ["1,5", "0x10", "0x1p-2", "1_000", "1e400", "one", "+NaN", "infin", "", " 1", "١"]
)
def test_parse_number_rejects(token):
    with pytest.raises(ValueError):
        parse_number(token)


def test_parse_detect_format_looks_at_the_last_line():
    assert detect_format("x 1\n# EOF\n") == "openmetrics"
    assert detect_format("x 1\n# EOF") == "openmetrics"
    assert detect_format("x 1\n") == "text"
    assert detect_format("# EOF\nx 1\n") == "text"


def test_parse_analyse_reports_lines_of_families_and_samples():
    result = analyse('# HELP a A.\n# TYPE a gauge\na 1\na{x="1"} 2\nb 3\n')
    assert result.errors == []
    assert result.family_lines == [(1, [3, 4]), (5, [5])]


_SCENARIO_INPUTS = [(text, fmt) for text, fmt, _ in OK] + [
    (text, fmt) for text, fmt, _, _ in ERRORS
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
