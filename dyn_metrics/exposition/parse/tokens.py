"""Tokens both exposition formats share: numbers, label sets, escapes, blanks.

The line lexers (:mod:`~dyn_metrics.text_lexer`, :mod:`~dyn_metrics.om_lexer`)
are built from these pieces. Nothing here keeps state between lines.

Problems go to ``report``, any object with ``error(line, msg)`` and
``warn(line, msg)`` (the parser's reader), so that one line can yield several
problems in the order they are met. A single bad token raises
:class:`BadToken` instead, whose message the caller words into its report.
"""

import math
import re
from typing import NamedTuple, Optional

# re.ASCII everywhere: with Unicode matching, IGNORECASE would let the
# dotless "ı" match the "i" of "inf".
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z", re.A)
INT = re.compile(r"[+-]?[0-9]+\Z", re.A)
REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z", re.A)
_LABEL_AT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*", re.A)
_INF = re.compile(r"([+-]?)inf(?:inity)?\Z", re.A | re.I)
_NAN = re.compile(r"nan\Z", re.A | re.I)
# A quoted string body up to its closing quote; escapes are checked afterwards.
_QUOTED = re.compile(r'((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
BLANKS = " \t"

# An OpenMetrics timestamp this large is far more likely milliseconds than a
# date after the year 5000.
MS_LOOKING = 1e11


class Metadata(NamedTuple):
    """A ``# HELP``, ``# TYPE`` or ``# UNIT`` line, as the line lexers return it."""

    kind: str  # "HELP", "TYPE" or "UNIT"
    name: str
    value: Optional[str]  # unescaped HELP text, type word or unit; None for a rejected type word


class BadToken(Exception):
    """A token that does not parse; the message says why."""


def parse_number(token):
    """Parse a sample value the way Go's ``strconv.ParseFloat`` and the OpenMetrics ABNF agree on.

    Returns an ``int`` for integer literals and a ``float`` otherwise; raises
    ``ValueError`` for anything else (hex, ``1_000``, ``1,5``, out of range).
    """
    try:
        return lex_number(token)
    except BadToken as exc:
        raise ValueError(str(exc)) from None


def lex_number(token):
    """:func:`parse_number`, raising :class:`BadToken` instead of ``ValueError``."""
    if INT.match(token):
        try:
            n = int(token)
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
    if REAL.match(token):
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


def float_or_nan(token):
    """A label value such as ``le`` or ``quantile`` as a float; NaN when it is no number."""
    try:
        return float(lex_number(token))
    except BadToken:
        return math.nan


def lex_labels(report, number, line, pos, metric, om):
    """Parse labels after '{'; returns (labels, position after '}') or (None, _).

    Text 0.0.4 allows blanks around names, '=' and values and a trailing
    comma; OpenMetrics (``om``) allows neither.
    """
    n = len(line)
    labels = []
    names = set()
    while True:
        if not om:
            pos = skip_blanks(line, pos)
        if pos < n and line[pos] == "}" and (not om or not labels):
            return tuple(labels), pos + 1
        m = _LABEL_AT.match(line, pos)
        end = pos
        while end < n and line[end] not in '= \t,}"':
            end += 1
        token = line[pos:end]
        if not m or m.end() != end:
            if pos >= n:
                report.error(number, f"unterminated label set for {metric!r}")
            elif om and line[pos] == "}":
                report.error(
                    number,
                    f"trailing comma in the label set of {metric!r} (not allowed in OpenMetrics)",
                )
            elif om and line[pos] == " ":
                report.error(
                    number, f"space inside the label set of {metric!r} (not allowed in OpenMetrics)"
                )
            else:
                report.error(number, f"invalid label name {token or line[pos]!r} for {metric!r}")
            return None, pos
        label = token
        pos = end if om else skip_blanks(line, end)
        if pos >= n or line[pos] != "=":
            found = line[pos] if pos < n else "end of line"
            report.error(number, f"expected '=' after label name {label!r}, found {found!r}")
            return None, pos
        pos = pos + 1 if om else skip_blanks(line, pos + 1)
        if pos >= n or line[pos] != '"':
            report.error(number, f"expected '\"' to open the value of label {label!r}")
            return None, pos
        q = _QUOTED.match(line, pos + 1)
        if not q:
            report.error(number, f"unterminated value of label {label!r} for {metric!r}")
            return None, pos
        raw = q.group(1)
        value = raw if "\\" not in raw else _unescape_label(report, number, raw, om)
        pos = q.end()
        if label in names:
            report.error(number, f"duplicate label name {label!r} for {metric!r}")
        names.add(label)
        if om and label.startswith("_"):
            report.error(
                number, f"label names starting with '_' are reserved in OpenMetrics: {label!r}"
            )
        elif label.startswith("__"):
            report.warn(
                number,
                "label names starting with '__' are reserved for Prometheus' "
                f"internal use: {label!r}",
            )
        labels.append((label, value))
        if not om:
            pos = skip_blanks(line, pos)
        if pos < n and line[pos] == ",":
            pos += 1
            continue
        if pos < n and line[pos] == "}":
            return tuple(labels), pos + 1
        found = line[pos] if pos < n else "end of line"
        report.error(
            number, f"expected ',' or '}}' after the value of label {label!r}, found {found!r}"
        )
        return None, pos


def _unescape_label(report, number, raw, om):
    if om:
        return unescape_om(report, number, raw, "label value")

    def undefined(c):
        report.error(
            number, f"invalid escape sequence '\\{c}' in label value (allowed: \\\\ \\\" \\n)"
        )
        return "\\" + c

    return _unescape(raw, undefined)


def unescape_om(report, number, text, what):
    """Undo OpenMetrics escapes (``\\n``, ``\\"``, ``\\\\``) in ``what`` (a label value, HELP)."""
    if "\\" not in text and '"' not in text:
        return text
    bare = _ESCAPE.sub("", text)
    if '"' in bare:
        report.error(number, f"unescaped '\"' in {what} (OpenMetrics requires \\\")")
    if "\\" in bare:
        report.error(number, f"{what} ends with a lone backslash")

    def undefined(char):
        report.warn(number, f"undefined escape '\\{char}' in {what}; write '\\\\' for a backslash")
        return "\\" + char

    return _unescape(text, undefined)


def _unescape(text, undefined):
    """``text`` with ``\\n``, ``\\"``, ``\\\\`` undone; ``undefined(char)`` replaces the rest."""

    def replace(m):
        c = m.group(1)
        if c == "n":
            return "\n"
        if c in '"\\':
            return c
        return undefined(c)

    return _ESCAPE.sub(replace, text)


def split_blank(s):
    """First blank-or-tab-separated token and the rest (rest keeps its blanks)."""
    for i, c in enumerate(s):
        if c in BLANKS:
            return s[:i], "", s[i:]
    return s, "", ""


def skip_blanks(line, pos):
    """The first position at or after ``pos`` that is not a blank or tab."""
    n = len(line)
    while pos < n and line[pos] in BLANKS:
        pos += 1
    return pos


def find_blank(line, pos):
    """The first position at or after ``pos`` that is a blank or tab (or the end)."""
    n = len(line)
    while pos < n and line[pos] not in BLANKS:
        pos += 1
    return pos
