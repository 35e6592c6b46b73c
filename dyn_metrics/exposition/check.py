"""A strict exposition checker: every problem, not just the first, each with a stable code.

``check(text, format="auto", ignore=(), enable=())`` returns a
:class:`CheckResult` whose ``errors`` are what the text 0.0.4 documentation or
the OpenMetrics 1.0 specification forbid, plus what Prometheus 2.42 or promtool
reject although the documentation allows it (a sample line with leading blanks,
signed timestamps, trailing blanks after a value). Where the OpenMetrics ABNF
and the official parser test suite (prometheus/OpenMetrics,
``tests/testdata/parsers``) disagree, the suite is the judge. Its ``warnings``
are lint in promtool's spirit: valid input that is discouraged, reported once
per family and code. Valid input is never an error.

Every :class:`Problem` has a ``code``; ``ignore`` drops problems by code (errors
too), ``enable`` turns on the strict lints that are off by default (``"all"``
for every one). The default lint set is silent on the unmodified output of
prometheus_client (text and OpenMetrics, every metric type, colon names),
Prometheus' own ``/metrics`` and ``/federate`` and node_exporter.

Errors (``E``), lints on by default (``W``) and strict lints (``S``, only with
``enable``); a code marked ``E/W`` is an error in one format and a lint in the
other, as its description says:

========================== ===== ================================================================
code                       kind  problem
========================== ===== ================================================================
``after-eof``              E     OpenMetrics: data after ``# EOF``
``bad-escape``             E     an escape the format does not define, a lone backslash, a raw
                                 ``"`` in an OpenMetrics label value
``bad-label-name``         E     a label name outside ``[a-zA-Z_][a-zA-Z0-9_]*``
``bad-le``                 E     ``le`` that is no number, or on a sample other than ``_bucket``
``bad-name``               E     a metric name that is missing or outside the name pattern
``bad-quantile``           E     ``quantile`` outside 0..1, or on a sample other than the quantiles
``bad-timestamp``          E     a timestamp the format does not allow
``bad-type``               E     an unknown or missing type word
``bad-utf8``               E     bytes that are not UTF-8
``bad-value``              E     a sample value that is no number (hex, ``1_000``, ``1,5``, 1e400)
``blank-line``             E     OpenMetrics: a blank line
``bom``                    E     a byte order mark
``comment``                E     OpenMetrics: a plain comment line
``count-mismatch``         E     ``_count`` differs from the ``+Inf`` bucket
``count-without-sum``      E     OpenMetrics: ``_count`` without ``_sum`` (both or neither)
``counter-value``          E/W   a NaN or negative counter-like value (a lint for text counters)
``crlf``                   E     a CRLF line ending
``dup-bucket``             E     two buckets with the same ``le``
``dup-label``              E     a label name twice in one label set
``dup-metadata``           E     a second HELP, TYPE or UNIT line for a family
``dup-quantile``           E     two samples with the same ``quantile``
``dup-series``             E     the same series twice (empty label values count as absent;
                                 OpenMetrics allows a repeat at an equal or later timestamp)
``exemplar``               E     a malformed exemplar, or one where none may be
``final-newline``          E     text: the last line does not end with a line feed
``info-value``             E     an info sample whose value is not 1
``interleaved-family``     E     a family's lines split by another family
``interleaved-metric``     E     OpenMetrics: one metric's samples split within its family
``label-syntax``           E     a broken label set
``le-canonical``           E/W   OpenMetrics ``le`` not in the canonical spelling: an error for
                                 an infinity (``+INF``), a lint for a finite bound (``1``)
``leading-whitespace``     E     blanks before a sample (or any OpenMetrics line)
``metadata-after-samples`` E     HELP, TYPE or UNIT after the family's samples
``metadata-syntax``        E     a malformed HELP, TYPE or UNIT line
``missing-count``          E     a histogram without ``_count`` (text), ``_sum`` without it
``missing-eof``            E     OpenMetrics: no ``# EOF``
``missing-inf``            E     a histogram without a ``le="+Inf"`` bucket
``missing-le``             E     a ``_bucket`` sample without ``le``
``missing-quantile``       E     a summary quantile sample without ``quantile``
``missing-value``          E     a sample line without a value
``name-clash``             E     OpenMetrics: two families that can have samples of one name
``nan-sum``                E     a NaN ``_gsum``
``negative-sum``           E     OpenMetrics: a negative ``_gsum`` without a negative bucket
``non-cumulative``         E     bucket counts that decrease
``non-integer``            E     OpenMetrics: a bucket or count value that is not an integer
``bucket-order``           E     buckets not in increasing ``le`` order
``quantile-order``         E     text: quantiles not in increasing order
``quantile-value``         E     OpenMetrics: a negative quantile value
``reserved-name``          E     OpenMetrics: a family name starting with ``_``
``reserved-label``         E/W   a label name starting with ``_`` (OpenMetrics, error) or
                                 ``__`` (text, lint)
``sample-name``            E     a sample name its family's type does not allow
``stateset-label``         E     a stateset sample without the label named after the family
``stateset-value``         E     a stateset value other than 0 or 1
``sum-with-negative-buckets`` E  OpenMetrics: ``_sum`` in a histogram with negative buckets
``syntax``                 E     anything else a line's grammar does not allow
``trailing-whitespace``    E     text: blanks after the value or timestamp (promtool rejects)
``unit``                   E     OpenMetrics: a bad unit, not a suffix of the name, or on
                                 info/stateset
``comment-no-blank``       W     text: ``#HELP`` (promtool reads metadata, Prometheus a comment)
``counter-family-total``   W     OpenMetrics: a counter family name ending in ``_total``
``counter-total``          W     text: a counter whose name does not end in ``_total``
``created-milliseconds``   W     a ``_created`` value that looks like milliseconds
``explicit-timestamp``     W     OpenMetrics: a sample with a timestamp
``help-quote``             W     OpenMetrics: a raw ``"`` in HELP (the suite accepts it)
``le-label``               W     ``le`` on a typed non-histogram family
``metadata-no-samples``    W     metadata followed by samples of another name
``om-syntax-in-text``      W     ``# EOF`` or ``# UNIT`` in text 0.0.4 (a plain comment there)
``quantile-canonical``     W     OpenMetrics ``quantile`` not in the canonical spelling
``quantile-label``         W     ``quantile`` on a typed non-summary family
``missing-sum``            W     a histogram without ``_sum`` (and no negative bucket)
``reserved-suffix``        W     ``_bucket``, ``_count`` or ``_sum`` on a family of another type
``total-suffix``           W     a non-counter whose name ends in ``_total``
``ts-milliseconds``        W     OpenMetrics: a timestamp that looks like milliseconds
``type-in-name``           W     a type word (``counter``, ``gauge``...) as a part of the name
``undefined-escape``       W     OpenMetrics: an undefined escape such as ``\\q``
``unit-abbreviation``      W     an abbreviated unit (``_ms``, ``_kb``...) as a part of the name
``utf8-name``              W     a quoted (Prometheus 3, UTF-8) metric or label name
``base-unit``              S     a scaled unit (``milliseconds``) instead of the base unit
``camel-case``             S     a camelCase metric or label name
``colon-mangled``          S     OpenMetrics: samples of colon family ``a:b`` named ``a_b...``
                                 (prometheus_client's escaping); read as the family's
``colon-name``             S     a ``:`` in a metric name (legal; reserved for recording rules)
``metadata-order``         S     OpenMetrics: metadata not in the order TYPE, UNIT, HELP
``missing-help``           S     a family without HELP text
========================== ===== ================================================================

``main(argv)`` is ``python -m dyn_metrics check [FILE|URL|-] [--format ...]
[--ignore CODE[,CODE]] [--enable CODE[,CODE]]``: exit 0 valid, 1 errors, 2
usage or I/O error, 3 valid with lint warnings. Each problem prints as
``LINE: [warning: ]MESSAGE [CODE]``.
"""

import bisect
import re
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple, Optional, Union

from ..errors import InvalidValueError
from .openmetrics import CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from .parse.lint import lint_family
from .parse.reader import AUTO, FORMATS, OPENMETRICS, TEXT, analyse, detect_format
from .text import CONTENT_TYPE as TEXT_CONTENT_TYPE

__all__ = ["CODES", "STRICT_LINTS", "Problem", "CheckResult", "check", "main"]

# A line number, a code and a message, before they become a Problem.
_Found = tuple[int, str, str]

# The codes of the table above, parsed from it so that the two cannot drift.
_TABLE_ROW = re.compile(r"^``([a-z0-9-]+)``\s+(E/W|E|W|S)\s", re.M)
CODES: dict[str, str] = {m.group(1): m.group(2) for m in _TABLE_ROW.finditer(__doc__ or "")}
STRICT_LINTS = frozenset(code for code, kind in CODES.items() if kind == "S")
ALL = "all"

# The command line asks for the formats by their content types (a media range
# in Accept carries no charset) and reads the answer's by its media type.
_TEXT_RANGE = TEXT_CONTENT_TYPE.split("; charset=", 1)[0]
_OPENMETRICS_RANGE = OPENMETRICS_CONTENT_TYPE.split("; charset=", 1)[0]
_OPENMETRICS_MEDIA = OPENMETRICS_CONTENT_TYPE.split(";", 1)[0]
ACCEPT = {
    TEXT: _TEXT_RANGE,
    OPENMETRICS: _OPENMETRICS_RANGE,
    AUTO: f"{_OPENMETRICS_RANGE},{_TEXT_RANGE}; q=0.5,*/*; q=0.1",
}
DEFAULT_TIMEOUT = 10.0


class Problem(NamedTuple):
    """One finding: 1-based ``line`` (0 when not tied to a line), ``message`` and ``code``."""

    line: int
    message: str
    code: str


class CheckResult(NamedTuple):
    """The outcome of :func:`check`; ``ok`` is true when there are no errors."""

    format: str
    errors: list[Problem]
    warnings: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.errors


def check(
    text: Union[str, bytes, bytearray],
    format: str = AUTO,
    ignore: Collection[str] = (),
    enable: Collection[str] = (),
) -> CheckResult:
    """Check an exposition (``str``, or ``bytes`` that must be UTF-8).

    ``format`` is ``"text"``, ``"openmetrics"`` or ``"auto"`` (OpenMetrics
    when the last line is ``# EOF``). ``ignore`` drops problems by code;
    ``enable`` adds strict lints by code (``"all"``: every one). Errors are
    every problem, sorted by line; warnings come once per family and code.
    Raises ``InvalidValueError`` for an unknown ``format`` or code.
    Thread-safe.
    """
    if format not in FORMATS:
        raise InvalidValueError(f"format must be one of {FORMATS!r}, got {format!r}")
    ignored = _codes(ignore, "ignore")
    enabled = _codes(enable, "enable")
    off = (STRICT_LINTS - (STRICT_LINTS if ALL in enabled else enabled)) | ignored
    errors: list[_Found] = []
    if isinstance(text, (bytes, bytearray)):
        text, errors = _decode(bytes(text))
    if format == AUTO:
        format = detect_format(text)
    result = analyse(text, format)
    errors.extend(result.errors)
    found = list(result.warnings)
    om = format == OPENMETRICS
    for family, (line, sample_lines) in zip(result.families, result.family_lines):
        found.extend(lint_family(family, line, sample_lines, om))
    starts = [line for line, _ in result.family_lines]
    warnings: list[_Found] = []
    seen: set[tuple[int, str]] = set()
    for p in sorted(found, key=lambda p: p[0]):
        # One warning per family and code, promtool style: the family is the
        # last one that started at or before the line.
        key = (bisect.bisect_right(starts, p[0]), p[1])
        if p[1] not in off and key not in seen:
            seen.add(key)
            warnings.append(p)
    return CheckResult(format, _tidy(p for p in errors if p[1] not in ignored), _tidy(warnings))


def _codes(codes: Collection[str], what: str) -> frozenset[str]:
    if isinstance(codes, str):
        raise InvalidValueError(f"{what} takes a collection of codes, got the string {codes!r}")
    for code in codes:
        if code not in CODES and code != ALL:
            raise InvalidValueError(
                f"unknown problem code {code!r} in {what}; the codes are listed in "
                "dyn_metrics.exposition.check"
            )
    return frozenset(codes)


def _decode(data: bytes) -> tuple[str, list[_Found]]:
    errors: list[_Found] = []
    lines: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            errors.append((number, "bad-utf8", f"invalid UTF-8 at byte {exc.start} of the line"))
            lines.append(raw.decode("utf-8", "replace"))
    return "\n".join(lines), errors


def _tidy(problems: Iterable[_Found]) -> list[Problem]:
    seen: set[_Found] = set()
    out: list[Problem] = []
    for p in sorted(problems, key=lambda p: p[0]):
        if p not in seen:
            seen.add(p)
            out.append(Problem(p[0], p[2], p[1]))
    return out


# -- command line ---------------------------------------------------------------


def _fetch(url: str, fmt: str, timeout: float) -> tuple[bytes, str]:
    # Imported here: urllib.request and gzip cost more to import than the
    # rest of the package, and only the command line fetches.
    import gzip
    import urllib.request

    request = urllib.request.Request(
        url, headers={"Accept": ACCEPT[fmt], "Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
        if response.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        content_type = response.headers.get("Content-Type", "")
    if fmt == AUTO:
        media = content_type.split(";", 1)[0].strip().lower()
        fmt = OPENMETRICS if media == _OPENMETRICS_MEDIA else TEXT
    return body, fmt


def _read(source: str, fmt: str, timeout: float) -> tuple[bytes, str]:
    if source == "-":
        return sys.stdin.buffer.read(), fmt
    if re.match(r"https?://", source, re.I):
        return _fetch(source, fmt, timeout)
    with open(source, "rb") as f:
        return f.read(), fmt


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the checker as a command; returns the exit status."""
    import argparse
    import urllib.error

    parser = argparse.ArgumentParser(
        prog="python -m dyn_metrics check",
        description="Strictly validate a Prometheus text 0.0.4 or OpenMetrics 1.0 exposition.",
        epilog="Exit status: 0 valid, 1 errors, 2 usage or I/O error, 3 valid but lint warnings.",
    )
    parser.add_argument(
        "source",
        nargs="?",
        default="-",
        metavar="FILE|URL|-",
        help="file, http(s) URL, or - for standard input (default)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=AUTO,
        help="exposition format; auto uses the Content-Type of a URL, else a final '# EOF' line",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for a URL (default {DEFAULT_TIMEOUT:g})",
    )
    for flag, what in (
        ("--ignore", "drop the problems with these codes, errors too"),
        ("--enable", "turn on these strict lints ('all': every one)"),
    ):
        parser.add_argument(
            flag,
            default="",
            metavar="CODE[,CODE]",
            help=f"{what}; the codes: pydoc dyn_metrics.exposition.check",
        )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        ignore = [c for c in args.ignore.split(",") if c]
        enable = [c for c in args.enable.split(",") if c]
        _codes(ignore, "--ignore")
        _codes(enable, "--enable")
    except InvalidValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        data, fmt = _read(args.source, args.format, args.timeout)
    except urllib.error.HTTPError as exc:
        print(f"error: {args.source}: HTTP {exc.code} {exc.reason}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {args.source}: {exc}", file=sys.stderr)
        return 2
    result = check(data, fmt, ignore, enable)
    problems = [(p.line, 0, f"{p.message} [{p.code}]") for p in result.errors]
    problems += [(p.line, 1, f"warning: {p.message} [{p.code}]") for p in result.warnings]
    for line, _, message in sorted(problems, key=lambda p: p[:2]):
        print(f"{line}: {message}")
    if result.errors:
        return 1
    return 3 if result.warnings else 0
