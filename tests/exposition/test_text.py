"""Text encoder: Rust f64 Display parity, escaping, and exact exposition text."""

import io
import math
import pathlib
import re
import struct
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dyn_metrics.exposition import text as expfmt
from dyn_metrics.exposition.text import (
    CONTENT_TYPE,
    encode_to_string,
    escape_help,
    escape_label_value,
    format_labels,
    format_value,
    write_families,
)
from dyn_metrics.model import COUNTER, GAUGE, HISTOGRAM, Family, Sample

# ---------------------------------------------------------------------------
# format_value: the parity table
#
# tests/data/rust_f64_display.tsv is printed by tools/rust_float_table.rs
# (`format!("{}", f64::from_bits(bits))`); its header line says how to
# regenerate it. It pins the exact bytes Rust writes.

_TABLE_PATH = pathlib.Path(__file__).parent.parent / "data" / "rust_f64_display.tsv"


# Rows 41c9ff26323e8000, 42d22ae4aeab97a8 and c318ab069c92298d are exact ties
# between two shortest digit strings: repr() rounds those to even, Rust away
# from zero, and format_value must follow Rust.


def _read_rust_table():
    rows = []
    for line in _TABLE_PATH.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        bits, expected = line.split("\t")
        rows.append(pytest.param(bits, expected, id=bits))
    return rows


_RUST_TABLE = _read_rust_table()


def _float_from_bits(bits):
    # The table writes the u64 bit pattern most significant digit first, so
    # its bytes are big-endian.
    return struct.unpack(">d", bytes.fromhex(bits))[0]


def test_rust_table_is_large_and_unique():
    bits = [row.values[0] for row in _RUST_TABLE]
    assert len(bits) >= 60
    assert len(set(bits)) == len(bits)
    assert all(re.fullmatch(r"[0-9a-f]{16}", b) for b in bits)


@pytest.mark.parametrize("bits, expected", _RUST_TABLE)
def test_format_value_matches_rust_display(bits, expected):
    assert format_value(_float_from_bits(bits)) == expected


def test_float_from_bits_reads_the_sign_bit():
    # Guards the helper above: a wrong byte order would turn -0 into 5e-324.
    negative_zero = _float_from_bits("8000000000000000")
    assert negative_zero == 0.0 and math.copysign(1.0, negative_zero) == -1.0
    assert _float_from_bits("0000000000000001") == 5e-324
    assert _float_from_bits("3ff0000000000000") == 1.0


# ---------------------------------------------------------------------------
# format_value: int values print their exact digits (Int* metrics are
# unbounded Python ints, so no float rounding, even past 2**53)

_INT_CASES = [
    (0, "0"),
    (-5, "-5"),
    (1, "1"),
    (2**53 + 1, "9007199254740993"),
    (2**64, "18446744073709551616"),
    (10**30, "1000000000000000000000000000000"),
    (-(10**30), "-1000000000000000000000000000000"),
]


@pytest.mark.parametrize("value, expected", _INT_CASES)
def test_format_value_int_prints_digits(value, expected):
    assert format_value(value) == expected


@given(st.integers())
def test_format_value_any_int_is_str(value):
    assert format_value(value) == str(value)


# ---------------------------------------------------------------------------
# format_value: the rules Rust's f64 Display follows, checked for any float.
# The table above pins the exact bytes; this property covers the space between
# its rows.
#
# 1. NaN (any sign or payload) is "NaN"; infinities are "inf" and "-inf".
# 2. Every finite value is plain positional decimal: -?digits(.digits)?,
#    never an exponent.
# 3. No ".0" on integral values; a fraction never ends in "0".
# 4. float() reads the text back to the same value, the sign of -0 included.
# 5. The significant digits are the shortest round-trip digits, i.e. the
#    ones repr() chooses, except when the value lies exactly halfway between
#    two shortest digit strings: repr() then takes the even one, Rust the one
#    farther from zero. Such ties only happen for non-integers below 2**53.

_POSITIONAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _significant_digits(text):
    """The digit string of a decimal, without sign, point, exponent or padding zeros."""
    mantissa = text.lstrip("-").lower().partition("e")[0]
    return mantissa.replace(".", "").strip("0")


def _rust_significant_digits(value):
    """Rule 5 for a finite float, computed exactly with Fraction."""
    shortest = Decimal(repr(value))
    _, digit_tuple, exponent = shortest.as_tuple()
    digits = int("".join(map(str, digit_tuple)))
    gap = Fraction(value) - Fraction(shortest)
    if gap and abs(gap) * 2 == Fraction(10) ** exponent and (gap > 0) == (value > 0):
        # An exact tie that repr() broke toward zero: Rust goes the other way.
        digits += 1
    return str(digits).strip("0")


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(-0.0)
@example(5e-324)
@example(1e16)
@example(1e-7)
@example(2.0**53 + 2)
@example(1.7976931348623157e308)
def test_format_value_follows_rust_display_rules(value):
    text = format_value(value)
    if math.isnan(value):
        assert text == "NaN"
        return
    if math.isinf(value):
        assert text == ("inf" if value > 0 else "-inf")
        assert float(text) == value
        return
    assert _POSITIONAL.fullmatch(text), text
    assert not text.endswith(".0")
    if "." in text:
        assert not text.endswith("0")
    back = float(text)
    assert back == value
    assert math.copysign(1.0, back) == math.copysign(1.0, value)
    rust_digits = _rust_significant_digits(value)
    assert _significant_digits(text) == rust_digits


@pytest.mark.parametrize("bits, expected", _RUST_TABLE)
def test_rule_5_reference_matches_rust_table(bits, expected):
    value = _float_from_bits(bits)
    if math.isfinite(value):
        assert _rust_significant_digits(value) == _significant_digits(expected)


# ---------------------------------------------------------------------------
# Escaping tables

_HELP_ESCAPES = [
    ("", ""),
    ("plain help", "plain help"),
    ("back\\slash", "back\\\\slash"),
    ("new\nline", "new\\nline"),
    ("\\n literal", "\\\\n literal"),
    ("both \\\n", "both \\\\\\n"),
    ('quote " stays', 'quote " stays'),
    ("tab\tstays", "tab\tstays"),
    ("cr\rstays", "cr\rstays"),
    ("unicode ✓ stays", "unicode ✓ stays"),
]

_LABEL_VALUE_ESCAPES = [
    ("", ""),
    ("plain", "plain"),
    ("back\\slash", "back\\\\slash"),
    ('a "quoted" word', 'a \\"quoted\\" word'),
    ("new\nline", "new\\nline"),
    ('all \\ " \n', 'all \\\\ \\" \\n'),
    ('\\"', '\\\\\\"'),
    ("tab\tstays", "tab\tstays"),
    ("unicode ✓ stays", "unicode ✓ stays"),
]


@pytest.mark.parametrize("text, expected", _HELP_ESCAPES)
def test_escape_help_escapes_backslash_and_newline_only(text, expected):
    assert escape_help(text) == expected


@pytest.mark.parametrize("text, expected", _LABEL_VALUE_ESCAPES)
def test_escape_label_value_escapes_backslash_quote_newline(text, expected):
    assert escape_label_value(text) == expected


def _unescape(text, escapable):
    """Reverse of the encoder's escaping; rejects any escape it would not write."""
    replacements = {"\\": "\\", "n": "\n", '"': '"'}
    out = []
    chars = iter(text)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, None)
        assert nxt is not None and nxt in escapable, f"bad escape in {text!r}"
        out.append(replacements[nxt])
    return "".join(out)


@given(st.text())
@example('\\"\n\\n')
def test_escape_help_round_trips(text):
    escaped = escape_help(text)
    assert "\n" not in escaped
    assert _unescape(escaped, "\\n") == text


@given(st.text())
@example('\\"\n\\n')
def test_escape_label_value_round_trips(text):
    escaped = escape_label_value(text)
    assert "\n" not in escaped
    # Every quote left in the text is escaped, so it cannot end the value.
    assert re.search(r'(?<!\\)(\\\\)*"', escaped) is None
    assert _unescape(escaped, '\\n"') == text


def test_format_labels_keeps_given_order_and_escapes():
    assert format_labels(()) == ""
    assert format_labels((("b", "1"), ("a", 'x"y'))) == '{b="1",a="x\\"y"}'


# ---------------------------------------------------------------------------
# Exact exposition text per type


def test_encode_counter_with_labels():
    family = Family(
        "dynamo_component_requests_total",
        COUNTER,
        "Total number of requests processed",
        (
            Sample(
                "dynamo_component_requests_total",
                (("dynamo_component", "backend"), ("dynamo_namespace", "ns")),
                5.0,
            ),
            Sample(
                "dynamo_component_requests_total",
                (("dynamo_component", "frontend"), ("dynamo_namespace", "ns")),
                50000.0,
            ),
        ),
    )
    assert encode_to_string([family]) == (
        "# HELP dynamo_component_requests_total Total number of requests processed\n"
        "# TYPE dynamo_component_requests_total counter\n"
        'dynamo_component_requests_total{dynamo_component="backend",dynamo_namespace="ns"} 5\n'
        'dynamo_component_requests_total{dynamo_component="frontend",dynamo_namespace="ns"} 50000\n'
    )


def test_encode_gauge_without_labels_has_no_braces():
    family = Family("temperature", GAUGE, "Current temperature", (Sample("temperature", (), 7.5),))
    assert encode_to_string([family]) == (
        "# HELP temperature Current temperature\n# TYPE temperature gauge\ntemperature 7.5\n"
    )


def test_encode_histogram_lines():
    labels = (("model", "llama"),)
    buckets = (("0.005", 0), ("0.1", 1), ("1", 3), ("10", 4), ("+Inf", 5))
    samples = tuple(
        Sample("latency_seconds_bucket", labels + (("le", le),), count) for le, count in buckets
    ) + (
        Sample("latency_seconds_sum", labels, 12.5),
        Sample("latency_seconds_count", labels, 5),
    )
    family = Family("latency_seconds", HISTOGRAM, "Request latency", samples)
    assert encode_to_string([family]) == (
        "# HELP latency_seconds Request latency\n"
        "# TYPE latency_seconds histogram\n"
        'latency_seconds_bucket{model="llama",le="0.005"} 0\n'
        'latency_seconds_bucket{model="llama",le="0.1"} 1\n'
        'latency_seconds_bucket{model="llama",le="1"} 3\n'
        'latency_seconds_bucket{model="llama",le="10"} 4\n'
        'latency_seconds_bucket{model="llama",le="+Inf"} 5\n'
        'latency_seconds_sum{model="llama"} 12.5\n'
        'latency_seconds_count{model="llama"} 5\n'
    )


def test_encode_omits_help_line_when_help_empty():
    family = Family("up", GAUGE, "", (Sample("up", (), 1.0),))
    assert encode_to_string([family]) == "# TYPE up gauge\nup 1\n"


def test_encode_omits_family_without_samples():
    empty = Family("empty_vec_total", COUNTER, "A vec with no children", ())
    kept = Family("kept", GAUGE, "Kept", (Sample("kept", (), 0.0),))
    assert encode_to_string([empty, kept, empty]) == "# HELP kept Kept\n# TYPE kept gauge\nkept 0\n"
    assert encode_to_string([empty]) == ""
    assert encode_to_string([]) == ""


def test_encode_escapes_help():
    family = Family("x", GAUGE, 'path C:\\tmp\nsecond "line"', (Sample("x", (), 1.0),))
    assert encode_to_string([family]) == (
        '# HELP x path C:\\\\tmp\\nsecond "line"\n# TYPE x gauge\nx 1\n'
    )


def test_encode_escapes_label_values():
    family = Family("x", GAUGE, "h", (Sample("x", (("v", 'a\\b"c\nd'),), 1.0),))
    assert encode_to_string([family]) == ('# HELP x h\n# TYPE x gauge\nx{v="a\\\\b\\"c\\nd"} 1\n')


def test_encode_timestamp_as_integer_milliseconds():
    family = Family(
        "x",
        GAUGE,
        "",
        (
            Sample("x", (("a", "1"),), 2.5, timestamp=1700000000.123),
            Sample("x", (("a", "2"),), 3.0, timestamp=1.5),
            Sample("x", (("a", "3"),), 4.0, timestamp=0.0),
        ),
    )
    assert encode_to_string([family]) == (
        '# TYPE x gauge\nx{a="1"} 2.5 1700000000123\nx{a="2"} 3 1500\nx{a="3"} 4 0\n'
    )


def test_encode_int_sample_values():
    family = Family(
        "tokens_total",
        COUNTER,
        "Tokens",
        (
            Sample("tokens_total", (("k", "big"),), 2**64),
            Sample("tokens_total", (("k", "zero"),), 0),
        ),
    )
    gauge = Family("inflight", GAUGE, "In flight", (Sample("inflight", (), -5),))
    assert encode_to_string([family, gauge]) == (
        "# HELP tokens_total Tokens\n"
        "# TYPE tokens_total counter\n"
        'tokens_total{k="big"} 18446744073709551616\n'
        'tokens_total{k="zero"} 0\n'
        "# HELP inflight In flight\n"
        "# TYPE inflight gauge\n"
        "inflight -5\n"
    )


def test_encode_special_float_values():
    family = Family(
        "x",
        GAUGE,
        "",
        (
            Sample("x", (("v", "a"),), math.inf),
            Sample("x", (("v", "b"),), -math.inf),
            Sample("x", (("v", "c"),), math.nan),
            Sample("x", (("v", "d"),), -0.0),
            Sample("x", (("v", "e"),), 1e-7),
            Sample("x", (("v", "f"),), 1e21),
        ),
    )
    assert encode_to_string([family]) == (
        "# TYPE x gauge\n"
        'x{v="a"} inf\n'
        'x{v="b"} -inf\n'
        'x{v="c"} NaN\n'
        'x{v="d"} -0\n'
        'x{v="e"} 0.0000001\n'
        'x{v="f"} 1000000000000000000000\n'
    )


def test_write_families_keeps_given_order_and_accepts_any_writer():
    # Sorting is the registry's job; the encoder writes what it is given.
    families = [
        Family("zeta", GAUGE, "Z", (Sample("zeta", (), 1.0),)),
        Family("alpha", GAUGE, "A", (Sample("alpha", (), 2.0),)),
    ]
    expected = (
        "# HELP zeta Z\n# TYPE zeta gauge\nzeta 1\n# HELP alpha A\n# TYPE alpha gauge\nalpha 2\n"
    )
    pieces = []
    write_families(pieces.append, families)
    buffer = io.StringIO()
    write_families(buffer.write, families)
    assert "".join(pieces) == expected
    assert buffer.getvalue() == expected
    assert encode_to_string(families) == expected


def test_content_type_is_text_0_0_4():
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


@given(st.lists(st.one_of(st.floats(), st.integers(), st.sampled_from([0.0, -0.0, 2.0**53]))))
def test_format_values_equals_format_value_one_by_one(values):
    assert expfmt.format_values(values) == [format_value(v) for v in values]
