"""Tokens both exposition formats share: label sets, escapes, blanks, metadata records.

The line lexers (:mod:`~dyn_metrics.exposition.parse.text_lines`,
:mod:`~dyn_metrics.exposition.parse.om_lines`) are built of these pieces and of
the numbers of :mod:`~dyn_metrics.exposition.parse.numbers`. Nothing here
keeps state between lines.

Problems go to a :class:`Report` (the parser's reader), so that one line can
yield several problems in the order they are met. A single bad token raises
:class:`BadToken` instead, whose message the caller words into its report.
"""

import re
from typing import Callable, NamedTuple, Optional, Protocol

from ...model import LABEL_NAME_RE, Labels

# A quoted string body up to its closing quote; escapes are checked afterwards.
_QUOTED = re.compile(r'((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
BLANKS = " \t"


class Report(Protocol):
    """Where the lexers, the grouper and the family rules put problems.

    ``line`` is 1-based; ``code`` is the rule's stable name (the table in
    :mod:`dyn_metrics.exposition.check`).
    """

    def error(self, line: int, code: str, msg: str) -> None: ...

    def warn(self, line: int, code: str, msg: str) -> None: ...


class Metadata(NamedTuple):
    """A ``# HELP``, ``# TYPE`` or ``# UNIT`` line, as the line lexers return it."""

    kind: str  # "HELP", "TYPE" or "UNIT"
    name: str
    value: Optional[str]  # unescaped HELP text, type word or unit; None for a rejected type word


class BadToken(Exception):
    """A token that does not parse; the message says why."""


def lex_labels(
    report: Report, number: int, line: str, pos: int, metric: str, om: bool
) -> tuple[Optional[Labels], int]:
    """Parse labels after '{'; returns (labels, position after '}') or (None, _).

    Text 0.0.4 allows blanks around names, '=' and values and a trailing
    comma; OpenMetrics (``om``) allows neither.
    """
    n = len(line)
    labels: list[tuple[str, str]] = []
    names: set[str] = set()
    while True:
        if not om:
            pos = skip_blanks(line, pos)
        if pos < n and line[pos] == "}" and (not om or not labels):
            return tuple(labels), pos + 1
        m = LABEL_NAME_RE.match(line, pos)
        end = pos
        while end < n and line[end] not in '= \t,}"':
            end += 1
        token = line[pos:end]
        if not om and end == pos and pos < n and line[pos] == '"':
            # Prometheus 3: a quoted UTF-8 label name.
            quoted = lex_quoted_name(report, number, line, pos, "label")
            if quoted is None:
                return None, pos
            token, end = quoted
        elif not m or m.end() != end:
            if pos >= n:
                report.error(number, "label-syntax", f"unterminated label set for {metric!r}")
            elif om and line[pos] == "}":
                report.error(
                    number,
                    "label-syntax",
                    f"trailing comma in the label set of {metric!r} (not allowed in OpenMetrics)",
                )
            elif om and line[pos] == " ":
                report.error(
                    number,
                    "label-syntax",
                    f"space inside the label set of {metric!r} (not allowed in OpenMetrics)",
                )
            else:
                report.error(
                    number,
                    "bad-label-name",
                    f"invalid label name {token or line[pos]!r} for {metric!r}",
                )
            return None, pos
        label = token
        pos = end if om else skip_blanks(line, end)
        if pos >= n or line[pos] != "=":
            found = line[pos] if pos < n else "end of line"
            report.error(
                number, "label-syntax", f"expected '=' after label name {label!r}, found {found!r}"
            )
            return None, pos
        pos = pos + 1 if om else skip_blanks(line, pos + 1)
        if pos >= n or line[pos] != '"':
            report.error(
                number, "label-syntax", f"expected '\"' to open the value of label {label!r}"
            )
            return None, pos
        q = _QUOTED.match(line, pos + 1)
        if not q:
            report.error(
                number, "label-syntax", f"unterminated value of label {label!r} for {metric!r}"
            )
            return None, pos
        raw = q.group(1)
        value = raw if "\\" not in raw else _unescape_label(report, number, raw, om)
        pos = q.end()
        if label in names:
            report.error(number, "dup-label", f"duplicate label name {label!r} for {metric!r}")
        names.add(label)
        if om and label.startswith("_"):
            report.error(
                number,
                "reserved-label",
                f"label names starting with '_' are reserved in OpenMetrics: {label!r}",
            )
        elif label.startswith("__"):
            report.warn(
                number,
                "reserved-label",
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
            number,
            "label-syntax",
            f"expected ',' or '}}' after the value of label {label!r}, found {found!r}",
        )
        return None, pos


def lex_quoted_name(
    report: Report, number: int, line: str, pos: int, what: str
) -> Optional[tuple[str, int]]:
    """A quoted UTF-8 name (Prometheus 3) at ``line[pos] == '"'``: (name, position after it).

    Escapes are those of a text label value. Reports ``utf8-name`` (valid,
    but older scrapers reject the syntax), or an error and returns ``None``.
    """
    q = _QUOTED.match(line, pos + 1)
    if not q:
        report.error(number, "label-syntax", f"unterminated quoted {what} name")
        return None
    raw = q.group(1)
    name = raw if "\\" not in raw else _unescape_label(report, number, raw, False)
    if not name:
        report.error(number, "bad-name", f"empty quoted {what} name")
        return None
    report.warn(
        number,
        "utf8-name",
        f"quoted {what} name {name!r}: Prometheus 3 syntax, rejected by older parsers",
    )
    return name, q.end()


def _unescape_label(report: Report, number: int, raw: str, om: bool) -> str:
    if om:
        return unescape_om(report, number, raw, "label value")

    def undefined(c: str) -> str:
        report.error(
            number,
            "bad-escape",
            f"invalid escape sequence '\\{c}' in label value (allowed: \\\\ \\\" \\n)",
        )
        return "\\" + c

    return _unescape(raw, undefined)


def unescape_om(report: Report, number: int, text: str, what: str) -> str:
    """Undo OpenMetrics escapes (``\\n``, ``\\"``, ``\\\\``) in ``what`` (a label value, HELP)."""
    if "\\" not in text and '"' not in text:
        return text
    bare = _ESCAPE.sub("", text)
    if '"' in bare:
        # The ABNF forbids it in both; the official parser suite accepts it in HELP.
        msg = f"unescaped '\"' in {what} (OpenMetrics requires \\\")"
        if what == "HELP text":
            report.warn(number, "help-quote", msg)
        else:
            report.error(number, "bad-escape", msg)
    if "\\" in bare:
        report.error(number, "bad-escape", f"{what} ends with a lone backslash")

    def undefined(char: str) -> str:
        report.warn(
            number,
            "undefined-escape",
            f"undefined escape '\\{char}' in {what}; write '\\\\' for a backslash",
        )
        return "\\" + char

    return _unescape(text, undefined)


def _unescape(text: str, undefined: Callable[[str], str]) -> str:
    """``text`` with ``\\n``, ``\\"``, ``\\\\`` undone; ``undefined(char)`` replaces the rest."""

    def replace(m: re.Match[str]) -> str:
        c = m.group(1)
        if c == "n":
            return "\n"
        if c in '"\\':
            return c
        return undefined(c)

    return _ESCAPE.sub(replace, text)


def split_blank(s: str) -> tuple[str, str, str]:
    """First blank-or-tab-separated token and the rest (rest keeps its blanks)."""
    for i, c in enumerate(s):
        if c in BLANKS:
            return s[:i], "", s[i:]
    return s, "", ""


def skip_blanks(line: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not a blank or tab."""
    n = len(line)
    while pos < n and line[pos] in BLANKS:
        pos += 1
    return pos


def find_blank(line: str, pos: int) -> int:
    """The first position at or after ``pos`` that is a blank or tab (or the end)."""
    n = len(line)
    while pos < n and line[pos] not in BLANKS:
        pos += 1
    return pos
