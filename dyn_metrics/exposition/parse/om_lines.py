"""One line of an OpenMetrics 1.0 exposition -> a metadata record or a sample.

:func:`lex_om_line` checks the grammar of a single line (single spaces between
fields, no comments or blank lines, timestamps in seconds, exemplars) and
returns a :class:`~dyn_metrics.exposition.parse.tokens.Metadata` or a
:class:`~dyn_metrics.model.Sample`; the ``# EOF`` line is the reader's, and
which family a line belongs to is :mod:`~dyn_metrics.exposition.parse.families`'
job. Problems go to a :class:`~dyn_metrics.exposition.parse.tokens.Report`.
"""

import re
from typing import Optional, Union

from ...model import METRIC_NAME_RE, OPENMETRICS_TYPES, UNTYPED, Exemplar, Labels, Sample
from .numbers import lex_number, lex_om_timestamp, looks_like_ms
from .tokens import BLANKS, BadToken, Metadata, Report, lex_labels, unescape_om

_UNIT = re.compile(r"[a-zA-Z0-9_:]*\Z", re.A)

_EXEMPLAR_MAX_CHARS = 128


class _Bad:
    """What the timestamp and exemplar lexers return when the line cannot be kept."""


_BAD = _Bad()


def lex_om_line(report: Report, number: int, line: str) -> Union[Metadata, Sample, None]:
    """``None`` for a line too broken to use, else the line's token (never called for ``# EOF``)."""
    if not line:
        report.error(number, "blank-line", "blank line (not allowed in OpenMetrics)")
        return None
    first = line[0]
    if first == "#":
        for keyword in ("TYPE", "HELP", "UNIT"):
            if line.startswith(f"# {keyword} "):
                return _om_metadata(report, number, keyword, line[len(keyword) + 3 :])
        words = line[1:].split()
        if words and words[0] in ("TYPE", "HELP", "UNIT", "EOF"):
            report.error(
                number,
                "metadata-syntax",
                f"malformed '# {words[0]}' line: expected single spaces between its fields",
            )
        else:
            report.error(
                number,
                "comment",
                "comment lines are not allowed in OpenMetrics (only # TYPE, # UNIT, "
                "# HELP and # EOF)",
            )
        return None
    if first in BLANKS:
        report.error(number, "leading-whitespace", "whitespace at the start of a line")
        return None
    return _om_sample(report, number, line)


def _om_metadata(report: Report, number: int, keyword: str, rest: str) -> Optional[Metadata]:
    name, sep, text = rest.partition(" ")
    if not METRIC_NAME_RE.fullmatch(name):
        report.error(number, "bad-name", f"invalid metric name {name!r} in {keyword} line")
        return None
    if not sep:
        what = {"HELP": "text", "TYPE": "a type", "UNIT": "a unit"}[keyword]
        report.error(
            number,
            "metadata-syntax",
            f"expected {what} in {keyword} line for {name!r} (after a single space)",
        )
        return None
    if keyword == "TYPE":
        if text not in OPENMETRICS_TYPES:
            hint = ""
            if text == UNTYPED:
                hint = " (OpenMetrics calls it 'unknown')"
            elif text.lower() in OPENMETRICS_TYPES:
                hint = " (type words are lowercase)"
            report.error(number, "bad-type", f"invalid metric type {text!r}{hint}")
            return Metadata("TYPE", name, None)
        return Metadata("TYPE", name, text)
    if keyword == "UNIT":
        if not _UNIT.match(text):
            report.error(number, "unit", f"invalid unit {text!r}: only [a-zA-Z0-9_:] allowed")
            text = ""
        return Metadata("UNIT", name, text)
    return Metadata("HELP", name, unescape_om(report, number, text, "HELP text"))


def _om_sample(report: Report, number: int, line: str) -> Optional[Sample]:
    n = len(line)
    m = METRIC_NAME_RE.match(line)
    if not m and line.startswith('{"'):
        report.error(
            number,
            "bad-name",
            f"quoted metric names are Prometheus 3 text syntax, not OpenMetrics 1.0: {line[:40]!r}",
        )
        return None
    if not m:
        report.error(number, "bad-name", f"invalid metric name at the start of {line[:40]!r}")
        return None
    name = m.group()
    pos = m.end()
    labels: Labels = ()
    if pos < n and line[pos] == "{":
        lexed, pos = lex_labels(report, number, line, pos + 1, name, om=True)
        if lexed is None:
            return None
        labels = lexed
    if pos >= n:
        report.error(number, "missing-value", f"sample {name!r} has no value")
        return None
    if line[pos] != " ":
        report.error(
            number,
            "syntax",
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
        report.error(number, "bad-value", f"{msg} for {name!r}")
        return None
    timestamp: Optional[float] = None
    exemplar: Optional[Exemplar] = None
    pos = end
    if pos < n and not line.startswith(" # ", pos):
        end = line.find(" ", pos + 1)
        end = n if end < 0 else end
        ts = _om_timestamp(report, number, line[pos + 1 : end])
        if isinstance(ts, _Bad):
            return None
        timestamp = ts
        pos = end
    if pos < n:
        if not line.startswith(" # ", pos):
            report.error(number, "syntax", f"unexpected text after the timestamp: {line[pos:]!r}")
            return None
        ex = _om_exemplar(report, number, line[pos + 3 :], name)
        if isinstance(ex, _Bad):
            return None
        exemplar = ex
    return Sample(name, labels, value, timestamp, exemplar)


def _om_timestamp(
    report: Report, number: int, token: str, exemplar: bool = False
) -> Union[float, _Bad]:
    try:
        ts = lex_om_timestamp(token)
    except BadToken as exc:
        report.error(number, "bad-timestamp", str(exc))
        return _BAD
    if looks_like_ms(ts):
        report.warn(
            number,
            "ts-milliseconds",
            f"timestamp {token} looks like milliseconds; OpenMetrics timestamps are seconds",
        )
    elif not exemplar:
        report.warn(
            number,
            "explicit-timestamp",
            "explicit timestamp: OpenMetrics says MetricPoints SHOULD NOT have one",
        )
    return ts


def _om_exemplar(report: Report, number: int, rest: str, name: str) -> Union[Exemplar, _Bad]:
    if not rest.startswith("{"):
        report.error(
            number, "exemplar", "exemplar must start with a label set '{...}' (use '{}' for none)"
        )
        return _BAD
    labels, pos = lex_labels(report, number, rest, 1, name, om=True)
    if labels is None:
        return _BAD
    chars = sum(len(k) + len(v) for k, v in labels)
    if chars > _EXEMPLAR_MAX_CHARS:
        report.error(
            number,
            "exemplar",
            f"exemplar labels have {chars} characters; at most {_EXEMPLAR_MAX_CHARS} allowed",
        )
    fields = rest[pos:].split(" ")
    if fields[0] != "" or len(fields) < 2:
        report.error(
            number, "exemplar", "expected a single space and the exemplar value after its labels"
        )
        return _BAD
    try:
        value = lex_number(fields[1])
    except BadToken as exc:
        report.error(number, "exemplar", f"{exc} in exemplar")
        return _BAD
    timestamp: Optional[float] = None
    if len(fields) > 2:
        ts = _om_timestamp(report, number, fields[2], exemplar=True)
        if isinstance(ts, _Bad):
            return _BAD
        timestamp = ts
    if len(fields) > 3:
        report.error(
            number, "exemplar", f"unexpected text after the exemplar: {' '.join(fields[3:])!r}"
        )
        return _BAD
    return Exemplar(labels, value, timestamp)
