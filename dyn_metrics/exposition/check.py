"""A strict exposition checker: every problem, not just the first.

``check(text, format="auto")`` returns a :class:`CheckResult` whose
``errors`` are what the text 0.0.4 documentation or the OpenMetrics 1.0
specification forbid, plus what Prometheus 2.42 or promtool reject although
the documentation allows it (a sample line with leading blanks, signed
timestamps, trailing blanks after a value). Its ``warnings`` are lint in
promtool's spirit: valid input that is discouraged. Valid input is never an
error.

Beyond promtool and the Prometheus scraper this finds duplicate series,
interleaved families, histograms without ``+Inf`` or with unsorted,
non-cumulative buckets or a ``_count`` that differs from ``+Inf``, summary
quantiles out of range or order, metadata after samples and OpenMetrics
name clashes (the full list is in ``tests/corpus/MANIFEST.tsv``).

``main(argv)`` is ``python -m dyn_metrics check [FILE|URL|-] [--format ...]``:
exit 0 valid, 1 errors, 2 usage or I/O error, 3 valid with lint warnings.
"""

import re
import sys
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Optional, Union

from ..model import COUNTER, GAUGEHISTOGRAM, HISTOGRAM, SUMMARY, UNKNOWN, UNTYPED, Family
from .openmetrics import CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from .openmetrics import family_name
from .parse.reader import AUTO, FORMATS, OPENMETRICS, TEXT, analyse, detect_format
from .text import CONTENT_TYPE as TEXT_CONTENT_TYPE

__all__ = ["Problem", "CheckResult", "check", "main"]

# A line number and a message, before they become a Problem.
_Found = tuple[int, str]

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
    """One finding: 1-based ``line`` (0 when not tied to a line) and ``message``."""

    line: int
    message: str


class CheckResult(NamedTuple):
    """The outcome of :func:`check`; ``ok`` is true when there are no errors."""

    format: str
    errors: list[Problem]
    warnings: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.errors


def check(text: Union[str, bytes, bytearray], format: str = AUTO) -> CheckResult:
    """Check an exposition (``str``, or ``bytes`` that must be UTF-8).

    ``format`` is ``"text"``, ``"openmetrics"`` or ``"auto"`` (OpenMetrics
    when the last line is ``# EOF``). Problems are sorted by line. Raises
    ``ValueError`` only for an unknown ``format``. Thread-safe.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS!r}, got {format!r}")
    errors: list[_Found] = []
    if isinstance(text, (bytes, bytearray)):
        text, errors = _decode(bytes(text))
    if format == AUTO:
        format = detect_format(text)
    result = analyse(text, format)
    errors.extend(result.errors)
    warnings = list(result.warnings)
    for family, (line, sample_lines) in zip(result.families, result.family_lines):
        warnings.extend(_lint(family, line, sample_lines, format == OPENMETRICS))
    return CheckResult(format, _tidy(errors), _tidy(warnings))


def _decode(data: bytes) -> tuple[str, list[_Found]]:
    errors: list[_Found] = []
    lines: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            errors.append((number, f"invalid UTF-8 at byte {exc.start} of the line"))
            lines.append(raw.decode("utf-8", "replace"))
    return "\n".join(lines), errors


def _tidy(problems: Iterable[_Found]) -> list[Problem]:
    seen: set[_Found] = set()
    out: list[Problem] = []
    for p in sorted(problems, key=lambda p: p[0]):
        if p not in seen:
            seen.add(p)
            out.append(Problem(*p))
    return out


# -- lint, in the spirit of client_golang's promlint --------------------------

_BASE_UNITS = {
    "amperes": "amperes",
    "bytes": "bytes",
    "celsius": "celsius",
    "grams": "grams",
    "joules": "joules",
    "kelvin": "kelvin",
    "meters": "meters",
    "metres": "metres",
    "seconds": "seconds",
    "volts": "volts",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "kelvins": "kelvin",
    "fahrenheit": "celsius",
    "rankine": "celsius",
    "inches": "meters",
    "yards": "meters",
    "miles": "meters",
    "bits": "bytes",
    "calories": "joules",
    "pounds": "grams",
    "ounces": "grams",
}
_UNIT_PREFIXES = (
    "pico",
    "nano",
    "micro",
    "milli",
    "centi",
    "deci",
    "deca",
    "hecto",
    "kilo",
    "kibi",
    "mega",
    "mibi",
    "giga",
    "gibi",
    "tera",
    "tebi",
    "peta",
    "pebi",
)
_ABBREVIATIONS = ("s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d")
_CAMEL = re.compile(r"[a-z][A-Z]")


def _unit_of(name: str) -> tuple[Optional[str], Optional[str]]:
    for part in name.split("_"):
        if part in _BASE_UNITS:
            return part, _BASE_UNITS[part]
        for prefix in _UNIT_PREFIXES:
            if part.startswith(prefix) and part[len(prefix) :] in _BASE_UNITS:
                return part, _BASE_UNITS[part[len(prefix) :]]
    return None, None


def _has_part(name: str, word: str) -> bool:
    return f"_{word}_" in name or name.endswith(f"_{word}")


def _lint(family: Family, line: int, sample_lines: list[int], om: bool) -> list[_Found]:
    t = family.type
    name = family_name(family) if om else family.name
    lower = name.lower()
    out: list[_Found] = []
    if not family.help:
        out.append((line, f"{name}: no help text"))
    total = name.endswith("_total")
    if t == COUNTER:
        if om and total:
            out.append(
                (
                    line,
                    f"{name}: counter family name ends in '_total'; its samples are named "
                    f"{name}_total",
                )
            )
        elif not om and not total:
            out.append((line, f'{name}: counter metrics should have "_total" suffix'))
    elif total and t not in (UNTYPED, UNKNOWN):
        out.append((line, f'{name}: non-counter metrics should not have "_total" suffix'))
    unit, base = _unit_of(name)
    if unit is not None and unit != base:
        out.append((line, f'{name}: use base unit "{base}" instead of "{unit}"'))
    if any(_has_part(lower, a) for a in _ABBREVIATIONS):
        out.append((line, f"{name}: metric names should not contain abbreviated units"))
    if ":" in name:
        out.append(
            (line, f"{name}: metric names should not contain ':' (reserved for recording rules)")
        )
    if _CAMEL.search(name):
        out.append(
            (line, f"{name}: metric names should be written in 'snake_case' not 'camelCase'")
        )
    for word in ("counter", "gauge", "histogram", "summary"):
        if _has_part(lower, word):
            out.append((line, f"{name}: metric name should not include type '{word}'"))
    if t not in (UNTYPED, UNKNOWN):
        histogram = t in (HISTOGRAM, GAUGEHISTOGRAM)
        if not histogram and name.endswith("_bucket"):
            out.append((line, f'{name}: non-histogram metrics should not have "_bucket" suffix'))
        if not histogram and t != SUMMARY and (name.endswith("_count") or name.endswith("_sum")):
            suffix = name.rsplit("_", 1)[1]
            out.append(
                (
                    line,
                    f"{name}: non-histogram and non-summary metrics "
                    f'should not have "_{suffix}" suffix',
                )
            )
    for sample, sample_line in zip(family.samples, sample_lines):
        for label, _ in sample.labels:
            if _CAMEL.search(label):
                out.append(
                    (
                        sample_line,
                        f"{name}: label names should be written in 'snake_case' not 'camelCase'",
                    )
                )
            if label == "le" and t not in (HISTOGRAM, GAUGEHISTOGRAM):
                out.append(
                    (sample_line, f'{name}: non-histogram metrics should not have "le" label')
                )
            if label == "quantile" and t != SUMMARY:
                out.append(
                    (sample_line, f'{name}: non-summary metrics should not have "quantile" label')
                )
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        data, fmt = _read(args.source, args.format, args.timeout)
    except urllib.error.HTTPError as exc:
        print(f"error: {args.source}: HTTP {exc.code} {exc.reason}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {args.source}: {exc}", file=sys.stderr)
        return 2
    result = check(data, fmt)
    problems = [(p.line, 0, p.message) for p in result.errors]
    problems += [(p.line, 1, "warning: " + p.message) for p in result.warnings]
    for line, _, message in sorted(problems, key=lambda p: p[:2]):
        print(f"{line}: {message}")
    if result.errors:
        return 1
    return 3 if result.warnings else 0
