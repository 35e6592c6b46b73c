"""One line of an OpenMetrics 1.0 exposition -> a :class:`~dyn_metrics.lexer.Metadata` or a Sample.

:func:`lex_om_line` checks the grammar of a single line (single spaces between
fields, no comments or blank lines, timestamps in seconds, exemplars); the
``# EOF`` line is the reader's, and which family a line belongs to is
:mod:`~dyn_metrics.grouping`'s job. Problems go to ``report``
(see :mod:`~dyn_metrics.lexer`).
"""

import math
import re

from ...model import OPENMETRICS_TYPES, UNTYPED, Exemplar, Sample
from .tokens import (
    BLANKS,
    METRIC_NAME,
    MS_LOOKING,
    REAL,
    BadToken,
    Metadata,
    lex_labels,
    lex_number,
    unescape_om,
)

# re.ASCII for the reason given in lexer.
_NAME_AT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.A)
_UNIT = re.compile(r"[a-zA-Z0-9_:]*\Z", re.A)

_EXEMPLAR_MAX_CHARS = 128

# What the timestamp and exemplar lexers return when the line cannot be kept.
_BAD = object()


def lex_om_line(report, number, line):
    """``None`` for a line too broken to use, else the line's token (never called for ``# EOF``)."""
    if not line:
        report.error(number, "blank line (not allowed in OpenMetrics)")
        return None
    first = line[0]
    if first == "#":
        for keyword in ("TYPE", "HELP", "UNIT"):
            if line.startswith(f"# {keyword} "):
                return _om_metadata(report, number, keyword, line[len(keyword) + 3 :])
        words = line[1:].split()
        if words and words[0] in ("TYPE", "HELP", "UNIT", "EOF"):
            report.error(
                number, f"malformed '# {words[0]}' line: expected single spaces between its fields"
            )
        else:
            report.error(
                number,
                "comment lines are not allowed in OpenMetrics (only # TYPE, # UNIT, "
                "# HELP and # EOF)",
            )
        return None
    if first in BLANKS:
        report.error(number, "whitespace at the start of a line")
        return None
    return _om_sample(report, number, line)


def _om_metadata(report, number, keyword, rest):
    name, sep, value = rest.partition(" ")
    if not METRIC_NAME.match(name):
        report.error(number, f"invalid metric name {name!r} in {keyword} line")
        return None
    if not sep:
        what = {"HELP": "text", "TYPE": "a type", "UNIT": "a unit"}[keyword]
        report.error(
            number, f"expected {what} in {keyword} line for {name!r} (after a single space)"
        )
        return None
    if keyword == "TYPE":
        if value not in OPENMETRICS_TYPES:
            hint = ""
            if value == UNTYPED:
                hint = " (OpenMetrics calls it 'unknown')"
            elif value.lower() in OPENMETRICS_TYPES:
                hint = " (type words are lowercase)"
            report.error(number, f"invalid metric type {value!r}{hint}")
            value = None
        return Metadata("TYPE", name, value)
    if keyword == "UNIT":
        if not _UNIT.match(value):
            report.error(number, f"invalid unit {value!r}: only [a-zA-Z0-9_:] allowed")
            value = ""
        return Metadata("UNIT", name, value)
    return Metadata("HELP", name, unescape_om(report, number, value, "HELP text"))


def _om_sample(report, number, line):
    n = len(line)
    m = _NAME_AT.match(line)
    if not m:
        report.error(number, f"invalid metric name at the start of {line[:40]!r}")
        return None
    name = m.group()
    pos = m.end()
    labels = ()
    if pos < n and line[pos] == "{":
        labels, pos = lex_labels(report, number, line, pos + 1, name, om=True)
        if labels is None:
            return None
    if pos >= n:
        report.error(number, f"sample {name!r} has no value")
        return None
    if line[pos] != " ":
        report.error(
            number,
            f"invalid character {line[pos]!r} after {name!r}: expected a single "
            "space and the value",
        )
        return None
    pos += 1
    end = line.find(" ", pos)
    end = n if end < 0 else end
    token = line[pos:end]
    try:
        value = lex_number(token)
    except BadToken as exc:
        msg = "expected a single space before the value" if token == "" else str(exc)
        report.error(number, f"{msg} for {name!r}")
        return None
    timestamp = None
    exemplar = None
    pos = end
    if pos < n and not line.startswith(" # ", pos):
        end = line.find(" ", pos + 1)
        end = n if end < 0 else end
        timestamp = _om_timestamp(report, number, line[pos + 1 : end])
        if timestamp is _BAD:
            return None
        pos = end
    if pos < n:
        if not line.startswith(" # ", pos):
            report.error(number, f"unexpected text after the timestamp: {line[pos:]!r}")
            return None
        exemplar = _om_exemplar(report, number, line[pos + 3 :], name)
        if exemplar is _BAD:
            return None
    return Sample(name, labels, value, timestamp, exemplar)


def _om_timestamp(report, number, token, exemplar=False):
    if not REAL.match(token):
        if token == "":
            report.error(number, "empty timestamp field (a double or trailing space)")
        else:
            report.error(number, f"invalid timestamp {token!r}: expected seconds")
        return _BAD
    ts = float(token)
    if math.isinf(ts):
        report.error(number, f"timestamp {token!r} is out of the float64 range")
        return _BAD
    if abs(ts) >= MS_LOOKING:
        report.warn(
            number, f"timestamp {token} looks like milliseconds; OpenMetrics timestamps are seconds"
        )
    elif not exemplar:
        report.warn(number, "explicit timestamp: OpenMetrics says MetricPoints SHOULD NOT have one")
    return ts


def _om_exemplar(report, number, rest, name):
    if not rest.startswith("{"):
        report.error(number, "exemplar must start with a label set '{...}' (use '{}' for none)")
        return _BAD
    labels, pos = lex_labels(report, number, rest, 1, name, om=True)
    if labels is None:
        return _BAD
    chars = sum(len(k) + len(v) for k, v in labels)
    if chars > _EXEMPLAR_MAX_CHARS:
        report.error(
            number,
            f"exemplar labels have {chars} characters; at most {_EXEMPLAR_MAX_CHARS} allowed",
        )
    fields = rest[pos:].split(" ")
    if fields[0] != "" or len(fields) < 2:
        report.error(number, "expected a single space and the exemplar value after its labels")
        return _BAD
    try:
        value = lex_number(fields[1])
    except BadToken as exc:
        report.error(number, f"{exc} in exemplar")
        return _BAD
    timestamp = None
    if len(fields) > 2:
        timestamp = _om_timestamp(report, number, fields[2], exemplar=True)
        if timestamp is _BAD:
            return _BAD
    if len(fields) > 3:
        report.error(number, f"unexpected text after the exemplar: {' '.join(fields[3:])!r}")
        return _BAD
    return Exemplar(labels, value, timestamp)
