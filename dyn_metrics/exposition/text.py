"""Text exposition format 0.0.4, byte-identical to rust-prometheus' TextEncoder.

``write_families(write, families)`` writes :class:`~dyn_metrics.model.Family`
records through any ``str -> None`` callable; ``encode_to_string`` joins the
pieces. The input is trusted: names and labels were validated when the metrics
were created, so nothing here validates (the parser is the strict half).

Output rules (rust-prometheus 0.14, as Dynamo prints it):

* per family ``# HELP name help`` (only when help is non-empty), ``# TYPE name
  type``, then one line per sample; no blank lines, no ``# EOF``;
* HELP escapes ``\\`` and newline; label values escape ``\\``, ``"`` and newline;
* values in Rust's ``f64`` Display (:func:`format_value`), never an exponent.
"""

import math
from collections.abc import Iterable, Sequence
from typing import Callable, SupportsFloat

from ..model import GAUGE, INFO, STATESET, UNKNOWN, UNTYPED, Family, Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Below 2**53 every integral float is an exact integer, and its shortest
# round-trip digits spell that integer, so ``str(int(v))`` is Rust's output.
_EXACT_INT = 2.0**53


def format_value(value: SupportsFloat) -> str:
    """Format a sample value exactly as Rust's ``{}`` formats an ``f64``.

    ``int`` values print their digits. Floats print the shortest digits that
    round-trip (what ``repr`` picks) in positional notation: ``50000``,
    ``7.5``, ``0.0000001``, ``1000000000000000000000``; ``inf``, ``-inf``,
    ``NaN`` and ``-0`` are Rust's spellings. Anything else (``bool``, other
    numbers) is formatted as ``float(value)``.
    """
    # The common cases come first: this runs once per sample of every scrape.
    if value.__class__ is float:
        v = value
    elif value.__class__ is int:
        return str(value)
    else:
        v = float(value)
    if v.is_integer():
        if -_EXACT_INT < v < _EXACT_INT:
            if v or math.copysign(1.0, v) > 0.0:
                return "%d" % v  # noqa: UP031 (the fastest integral-float spelling)
            return "-0"
        r = repr(v)
        return r[:-2] if r.endswith(".0") else _positional(r)
    r = repr(v)
    if r[-1] == "f":
        return r  # "inf" / "-inf", as Rust spells them
    if r == "nan":
        return "NaN"
    num, den = v.as_integer_ratio()
    if den <= _TIE_DEN_LIMIT:
        r = _break_tie(r, num, den)
    return r if "e" not in r else _positional(r)


# On an exact tie between two shortest digit strings repr() takes the even
# one, Rust the one farther from zero. A tie needs v = num / 2**k to have at
# most 18 significant digits, which bounds k by 26, so other values (most
# fractions: 0.1 has k = 55) skip the check. Only non-integers can tie.
_TIE_DEN_LIMIT = 1 << 26


def _break_tie(r: str, num: int, den: int) -> str:
    """``r`` (repr of num/den), or the digits Rust picks when ``r`` sits on a tie."""
    if "e" not in r:
        # num/den with den = 2**k has exactly k decimal places; a tie sits half a
        # unit past r's last place, so it needs k = (r's places) + 1. Most values
        # (1.5, 0.25) fail that at once, without the big-int test below.
        if den.bit_length() - 2 != len(r) - 1 - r.find("."):
            return r
    mantissa, _, exponent = r.partition("e")
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    whole, _, frac = mantissa.partition(".")
    digits = int(whole + frac)
    e10 = int(exponent or 0) - len(frac)
    # Is |v| exactly (digits + 1/2) * 10**e10?
    if 2 * abs(num) * 10 ** max(-e10, 0) != (2 * digits + 1) * den * 10 ** max(e10, 0):
        return r
    return f"{sign}{digits + 1}e{e10}"


def format_values(values: Iterable[float]) -> list[str]:
    """``[format_value(v) for v in values]``, with the common case inlined.

    Most values of a scrape are integral floats (counters) or ints; those
    skip the call into :func:`format_value`, which is half the cost of a
    series in a large scrape. Zero goes the long way for its sign.
    """
    fmt = format_value
    exact = _EXACT_INT
    return [
        ("%d" % v)  # noqa: UP031 (see format_value)
        if (v.__class__ is float and v and v.is_integer() and -exact < v < exact)
        else fmt(v)
        for v in values
    ]


def _positional(r: str) -> str:
    """Expand Python's exponent notation (``'1.5e-07'``) to Rust's positional form."""
    mantissa, _, exponent = r.partition("e")
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    # Position of the decimal point, counted from the first significant digit.
    point = len(whole.lstrip("0")) + int(exponent)
    if point <= 0:
        return sign + "0." + "0" * -point + digits.rstrip("0")
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return sign + digits[:point] + "." + digits[point:]


def escape_help(text: str) -> str:
    """Escape a HELP text: ``\\`` -> ``\\\\`` and newline -> ``\\n``."""
    if "\\" in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n")
    return text


def escape_label_value(text: str) -> str:
    """Escape a label value: ``\\``, ``"`` and newline."""
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def format_labels(pairs: Sequence[tuple[str, str]]) -> str:
    """``{a="1",b="2"}`` for label pairs in the given order; ``""`` for none."""
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs) + "}"


def write_sample(write: Callable[[str], object], sample: Sample) -> None:
    """Write one sample line (the single line writer every type goes through)."""
    line = sample.name + format_labels(sample.labels) + " " + format_value(sample.value)
    if sample.timestamp is not None:
        # The text format's timestamp is integral milliseconds.
        line += " " + str(int(round(sample.timestamp * 1000)))
    write(line + "\n")


def write_header(write: Callable[[str], object], name: str, type_word: str, help_text: str) -> None:
    """Write the ``# HELP`` (if any) and ``# TYPE`` lines of one family."""
    if help_text:
        write(f"# HELP {name} {escape_help(help_text)}\n")
    write(f"# TYPE {name} {type_word}\n")


#: The type word text 0.0.4 writes for the OpenMetrics-only types it can express.
_TEXT_TYPE = {INFO: GAUGE, STATESET: GAUGE, UNKNOWN: UNTYPED}


def text_metadata(family: Family) -> tuple[str, str]:
    """The name and type word of ``family``'s metadata lines in text 0.0.4.

    Text 0.0.4 has no info or stateset type: as prometheus_client does, an
    info family is the gauge named like its samples (``build_info``) and a
    stateset a gauge; ``unknown`` is ``untyped``.
    """
    t = family.type
    if t == INFO and family.samples:
        return family.samples[0].name, GAUGE
    return family.name, _TEXT_TYPE.get(t, t)


def write_families(write: Callable[[str], object], families: Iterable[Family]) -> None:
    """Write families in the given order; families without samples are skipped."""
    for family in families:
        if not family.samples:
            continue
        name, type_word = text_metadata(family)
        write_header(write, name, type_word, family.help)
        for sample in family.samples:
            write_sample(write, sample)


def encode_to_string(families: Iterable[Family]) -> str:
    """The text exposition of ``families`` as one string."""
    parts: list[str] = []
    write_families(parts.append, families)
    return "".join(parts)
