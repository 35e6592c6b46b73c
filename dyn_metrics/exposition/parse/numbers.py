"""The parser's numbers: sample values, timestamps, and ``le``/``quantile`` label values.

A sample value is spelled as Go's ``strconv.ParseFloat`` and the OpenMetrics
grammar agree on (:func:`lex_number`). Text 0.0.4 timestamps are unsigned
integer milliseconds, OpenMetrics ones seconds in decimal or exponent form
(:func:`lex_text_timestamp`, :func:`lex_om_timestamp`). A token that does not
parse raises :class:`~dyn_metrics.exposition.parse.tokens.BadToken`, whose
message the line lexers put in their report.

The encoders own the output spellings (:func:`dyn_metrics.exposition.text.format_value`,
:func:`dyn_metrics.exposition.openmetrics.format_canonical`); this module
only compares input against them (:func:`non_canonical`) and respells with
them (:func:`text_spelling`).
"""

import math
import re
from typing import Optional

from ...model import Number
from ..openmetrics import format_canonical
from ..text import format_value
from .tokens import BadToken

# re.ASCII everywhere: with Unicode matching, IGNORECASE would let the
# dotless "ı" match the "i" of "inf".
_INT = re.compile(r"[+-]?[0-9]+\Z", re.A)
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z", re.A)
_INF = re.compile(r"([+-]?)inf(?:inity)?\Z", re.A | re.I)
_NAN = re.compile(r"nan\Z", re.A | re.I)
_DIGITS = re.compile(r"[0-9]+\Z", re.A)

_INT64_MAX = 2**63 - 1

# An OpenMetrics timestamp (or _created value) this large is far more likely
# milliseconds than a date after the year 5000.
_MS_LOOKING = 1e11


def parse_number(token: str) -> Number:
    """Parse a sample value the way Go's ``strconv.ParseFloat`` and the OpenMetrics ABNF agree on.

    Returns an ``int`` for integer literals and a ``float`` otherwise; raises
    ``ValueError`` for anything else (hex, ``1_000``, ``1,5``, out of range).
    """
    try:
        return lex_number(token)
    except BadToken as exc:
        raise ValueError(str(exc)) from None


def lex_number(token: str) -> Number:
    """:func:`parse_number`, raising :class:`BadToken` instead of ``ValueError``.

    ``-0`` is the float ``-0.0`` (an int has no negative zero).
    """
    if _INT.match(token):
        try:
            n: Optional[int] = int(token)
        except ValueError:  # more digits than int() converts; the float path copes
            n = None
        if n is not None:
            if n == 0:
                return -0.0 if token[0] == "-" else 0
            try:
                float(n)
            except OverflowError:
                raise BadToken(f"value {token!r} is out of the float64 range") from None
            return n
    if _REAL.match(token):
        v = float(token)
        if math.isinf(v):
            raise BadToken(f"value {token!r} is out of the float64 range")
        return v
    m = _INF.match(token)
    if m:
        return -math.inf if m.group(1) == "-" else math.inf
    if _NAN.match(token):
        return math.nan
    raise BadToken(f"invalid number {token!r}")


def float_or_nan(token: str) -> float:
    """A label value such as ``le`` or ``quantile`` as a float; NaN when it is no number."""
    try:
        return float(lex_number(token))
    except BadToken:
        return math.nan


def lex_text_timestamp(token: str) -> float:
    """A text 0.0.4 timestamp (unsigned integer milliseconds that fit an int64) in seconds."""
    if _DIGITS.match(token):
        ms = int(token)
        if ms > _INT64_MAX:
            raise BadToken(f"timestamp {token!r} is out of the int64 range")
        return ms / 1000
    if _INT.match(token):
        raise BadToken(f"signed timestamp {token!r}: Prometheus 2.42 accepts only digits")
    raise BadToken(f"invalid timestamp {token!r}: expected integer milliseconds")


def lex_om_timestamp(token: str) -> float:
    """An OpenMetrics timestamp: finite seconds, in decimal or exponent form."""
    if not _REAL.match(token):
        if token == "":
            raise BadToken("empty timestamp field (a double or trailing space)")
        raise BadToken(f"invalid timestamp {token!r}: expected seconds")
    ts = float(token)
    if math.isinf(ts):
        raise BadToken(f"timestamp {token!r} is out of the float64 range")
    return ts


def looks_like_ms(seconds: Number) -> bool:
    """True when a value meant as seconds is large enough to be milliseconds."""
    return abs(seconds) >= _MS_LOOKING


def non_canonical(token: str, value: float) -> Optional[str]:
    """The canonical OpenMetrics spelling of ``value`` when ``token`` is not it, else ``None``."""
    canonical = format_canonical(value)
    return None if token == canonical else canonical


def text_spelling(token: str) -> str:
    """An ``le``/``quantile`` value in the text 0.0.4 spelling (``1.0`` -> ``1``, ``1e-05``
    -> ``0.00001``, infinities ``+Inf``/``-Inf``); a token that is no number stays as it is."""
    x = float_or_nan(token)
    if x == math.inf:
        return "+Inf"
    if x == -math.inf:
        return "-Inf"
    if x == x:
        return format_value(x)
    return token
