"""One line of a text 0.0.4 exposition -> a metadata record or a sample.

:func:`lex_text_line` checks the grammar of a single line and what Prometheus
2.42 or promtool refuse in it, and returns a
:class:`~dyn_metrics.exposition.parse.tokens.Metadata` or a
:class:`~dyn_metrics.model.Sample`; which family the line belongs to is
:mod:`~dyn_metrics.exposition.parse.families`' job. Problems go to a
:class:`~dyn_metrics.exposition.parse.tokens.Report`.

Prometheus 3's quoted UTF-8 names are read too, with a ``utf8-name`` lint:
``{"my.metric",label="v"} 1``, ``my_metric{"label.x"="v"} 1`` and
``# TYPE "my.metric" gauge``.
"""

import re
from typing import Optional, Union

from ...model import METRIC_NAME_RE, OPENMETRICS_TYPES, TEXT_TYPES, Labels, Sample
from .numbers import lex_number, lex_text_timestamp
from .tokens import (
    BLANKS,
    BadToken,
    Metadata,
    Report,
    find_blank,
    lex_labels,
    lex_quoted_name,
    skip_blanks,
    split_blank,
)

_TEXT_NAME_END = re.compile(r"[ \t{]")


def lex_text_line(report: Report, number: int, line: str) -> Union[Metadata, Sample, None]:
    """``None`` for a blank line, a comment or a line too broken to use, else the line's token.

    A sample whose timestamp is bad is still returned (without the
    timestamp), so the rest of the input is checked against it.
    """
    stripped = line.lstrip(BLANKS)
    if not stripped:
        return None
    if stripped[0] == "#":
        return _text_comment(report, number, stripped)
    if len(stripped) != len(line):
        report.error(
            number,
            "leading-whitespace",
            "whitespace before the metric name (Prometheus 2.42 rejects such a sample)",
        )
    return _text_sample(report, number, stripped)


def _text_comment(report: Report, number: int, line: str) -> Optional[Metadata]:
    rest = line[1:]
    body = rest.lstrip(BLANKS)
    keyword, _, after = split_blank(body)
    if keyword not in ("HELP", "TYPE"):
        if keyword in ("EOF", "UNIT") and len(body) != len(rest):
            report.warn(
                number,
                "om-syntax-in-text",
                f"'# {keyword}' is OpenMetrics syntax; text 0.0.4 reads it as a plain comment",
            )
        return None
    if len(body) == len(rest):
        report.warn(
            number,
            "comment-no-blank",
            f"no blank after '#': promtool reads a {keyword} line, Prometheus a plain comment",
        )
    after = after.lstrip(BLANKS)
    quoted = after.startswith('"')
    if quoted:
        # Prometheus 3: a quoted UTF-8 metric name.
        lexed = lex_quoted_name(report, number, after, 0, "metric")
        if lexed is None:
            return None
        name, end = lexed
        after = after[end:]
        if after and after[0] not in BLANKS:
            report.error(
                number, "metadata-syntax", f"expected a blank after the quoted name {name!r}"
            )
            return None
    else:
        name, _, after = split_blank(after)
    if not name:
        report.error(number, "metadata-syntax", f"{keyword} line without a metric name")
        return None
    if not quoted and not METRIC_NAME_RE.fullmatch(name):
        report.error(number, "bad-name", f"invalid metric name {name!r} in {keyword} line")
        return None
    after = after.lstrip(BLANKS)
    if keyword == "HELP":
        return Metadata("HELP", name, _unescape_help_text(report, number, after))
    type_word: Optional[str] = after
    if after not in TEXT_TYPES:
        if not after:
            report.error(number, "bad-type", f"TYPE line for {name!r} without a type")
        elif after.rstrip(BLANKS) in TEXT_TYPES:
            report.error(number, "bad-type", f"unknown metric type {after!r}: trailing whitespace")
        elif after in OPENMETRICS_TYPES:
            report.error(
                number,
                "bad-type",
                f"metric type {after!r} exists only in OpenMetrics; text 0.0.4 "
                "allows counter, gauge, histogram, summary, untyped",
            )
        else:
            report.error(number, "bad-type", f"unknown metric type {after!r}")
        type_word = None
    return Metadata("TYPE", name, type_word)


def _unescape_help_text(report: Report, number: int, text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            report.error(number, "bad-escape", "HELP text ends with a lone backslash")
            out.append(c)
            break
        nxt = text[i + 1]
        if nxt == "\\":
            out.append("\\")
        elif nxt == "n":
            out.append("\n")
        else:
            report.error(
                number,
                "bad-escape",
                f"invalid escape sequence '\\{nxt}' in HELP (text 0.0.4 allows only \\\\ and \\n)",
            )
            out.append(c + nxt)
        i += 2
    return "".join(out)


def _text_sample(report: Report, number: int, line: str) -> Optional[Sample]:
    n = len(line)
    if line.startswith("{") and skip_blanks(line, 1) < n and line[skip_blanks(line, 1)] == '"':
        return _quoted_sample(report, number, line)
    m = _TEXT_NAME_END.search(line)
    end = m.start() if m else n
    name = line[:end]
    if not METRIC_NAME_RE.fullmatch(name):
        report.error(
            number, "bad-name", f"invalid metric name {name!r}" if name else "missing metric name"
        )
        return None
    return _sample_rest(report, number, line, name, skip_blanks(line, end))


def _quoted_sample(report: Report, number: int, line: str) -> Optional[Sample]:
    """Prometheus 3: ``{"my.metric",label="v"} 1``, the quoted name first in the braces.

    A quoted string followed by ``=`` is a label name instead, and then the
    line has no metric name.
    """
    n = len(line)
    start = skip_blanks(line, 1)
    lexed = lex_quoted_name(report, number, line, start, "metric")
    if lexed is None:
        return None
    name, pos = lexed
    pos = skip_blanks(line, pos)
    if pos < n and line[pos] == "=":
        report.error(number, "bad-name", "missing metric name (the braces hold only labels)")
        return None
    if pos < n and line[pos] == ",":
        return _sample_rest(report, number, line, name, pos)
    if pos < n and line[pos] == "}":
        return _sample_rest(report, number, line, name, skip_blanks(line, pos + 1), labelled=True)
    found = line[pos] if pos < n else "end of line"
    report.error(
        number,
        "label-syntax",
        f"expected ',' or '}}' after the quoted name {name!r}, found {found!r}",
    )
    return None


def _sample_rest(
    report: Report, number: int, line: str, name: str, pos: int, labelled: bool = False
) -> Optional[Sample]:
    """The labels (from ``{``, or ``,`` after a quoted name), value and timestamp of a sample."""
    n = len(line)
    labels: Labels = ()
    if not labelled and pos < n and line[pos] in "{,":
        lexed, pos = lex_labels(report, number, line, pos + 1, name, om=False)
        if lexed is None:
            return None
        labels = lexed
        pos = skip_blanks(line, pos)
    if pos >= n:
        report.error(number, "missing-value", f"sample {name!r} has no value")
        return None
    vend = find_blank(line, pos)
    token = line[pos:vend]
    try:
        value = lex_number(token)
    except BadToken as exc:
        report.error(number, "bad-value", f"{exc} for {name!r}")
        return None
    timestamp: Optional[float] = None
    if vend < n:
        tpos = skip_blanks(line, vend)
        if tpos >= n:
            report.error(
                number,
                "trailing-whitespace",
                "trailing whitespace after the value (promtool rejects it)",
            )
        else:
            tend = find_blank(line, tpos)
            token = line[tpos:tend]
            if token == "#":
                report.error(
                    number, "syntax", "exemplars exist only in OpenMetrics, not in text 0.0.4"
                )
                return None
            try:
                timestamp = lex_text_timestamp(token)
            except BadToken as exc:
                report.error(number, "bad-timestamp", str(exc))
            if tend < n:
                if line[tend:].strip(BLANKS):
                    report.error(
                        number,
                        "syntax",
                        f"unexpected text after the timestamp: {line[tend:].strip(BLANKS)!r}",
                    )
                else:
                    report.error(
                        number,
                        "trailing-whitespace",
                        "trailing whitespace after the timestamp (promtool rejects it)",
                    )
    return Sample(name, labels, value, timestamp)
