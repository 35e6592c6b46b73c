"""The parser's numbers: sample values, timestamps of both formats, le/quantile spellings."""

import math

import pytest

from dyn_metrics.exposition.parse.numbers import (
    float_or_nan,
    lex_om_timestamp,
    lex_text_timestamp,
    looks_like_ms,
    non_canonical,
    parse_number,
    text_spelling,
)
from dyn_metrics.exposition.parse.tokens import BadToken
from tests.exposition.parse.scenarios import assert_parse_error

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


ERRORS = [
    # (input, format, line, message prefix)
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
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_numbers_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)


TIMESTAMPS = [
    # (lexer, token, seconds or the start of the BadToken message)
    (lex_text_timestamp, "0", 0.0),
    (lex_text_timestamp, "1700000000123", 1700000000.123),
    (lex_text_timestamp, "9223372036854775807", 9223372036854775.807),
    (
        lex_text_timestamp,
        "9223372036854775808",
        "timestamp '9223372036854775808' is out of the int64",
    ),
    (lex_text_timestamp, "+5", "signed timestamp '+5'"),
    (lex_text_timestamp, "1e3", "invalid timestamp '1e3': expected integer milliseconds"),
    (lex_text_timestamp, "", "invalid timestamp ''"),
    (lex_om_timestamp, "1.5", 1.5),
    (lex_om_timestamp, "-1", -1.0),
    (lex_om_timestamp, "1e3", 1000.0),
    (lex_om_timestamp, "", "empty timestamp field"),
    (lex_om_timestamp, "NaN", "invalid timestamp 'NaN': expected seconds"),
    (lex_om_timestamp, "+Inf", "invalid timestamp '+Inf'"),
    (lex_om_timestamp, "1e400", "timestamp '1e400' is out of the float64 range"),
]


@pytest.mark.parametrize("lexer, token, expected", TIMESTAMPS)
def test_numbers_timestamps(lexer, token, expected):
    if isinstance(expected, str):
        with pytest.raises(BadToken) as info:
            lexer(token)
        assert str(info.value).startswith(expected), str(info.value)
    else:
        assert lexer(token) == expected


@pytest.mark.parametrize(
    "value, expected", [(1e11, True), (-1e11, True), (99999999999.9, False), (1.7e9, False)]
)
def test_numbers_looks_like_ms(value, expected):
    assert looks_like_ms(value) is expected


LABEL_NUMBERS = [
    # (le/quantile token, float_or_nan, non_canonical, text_spelling)
    ("1", 1.0, "1.0", "1"),
    ("1.0", 1.0, None, "1"),
    ("0.00001", 1e-05, "1e-05", "0.00001"),
    ("1e-05", 1e-05, None, "0.00001"),
    ("+Inf", math.inf, None, "+Inf"),
    ("inf", math.inf, "+Inf", "+Inf"),
    ("-Inf", -math.inf, None, "-Inf"),
    ("1_0", math.nan, None, "1_0"),
    ("x", math.nan, None, "x"),
]


@pytest.mark.parametrize("token, value, canonical, text", LABEL_NUMBERS)
def test_numbers_label_values(token, value, canonical, text):
    got = float_or_nan(token)
    assert got == value or (got != got and value != value)
    if value == value:
        assert non_canonical(token, value) == canonical
    assert text_spelling(token) == text
