"""Strict parser for text format 0.0.4 and OpenMetrics 1.0 expositions.

``parse(text, format="text")`` returns the same :class:`~dyn_metrics.model.Family`
records the encoders consume, or raises :class:`~dyn_metrics.errors.ParseError`
for the first problem (lowest line number; lines are 1-based). It rejects
everything :mod:`dyn_metrics.exposition.check` reports as an error: the grammar, what
Prometheus 2.42 or promtool refuse, and the structural rules nobody else checks
(duplicate series, interleaved families, histogram and summary shape).

How input becomes the model:

* Values: an integer literal (``42``, ``-7``, ``0042``) becomes an ``int``,
  anything else a ``float`` (``-0`` stays the float ``-0.0``).
* Timestamps become seconds: text 0.0.4 milliseconds are divided by 1000,
  OpenMetrics seconds are kept.
* Label pairs keep the order they were written in; HELP text is unescaped.

OpenMetrics input is normalised to the text 0.0.4 view the model uses, so
that ``text.encode_to_string(parse(openmetrics.encode_to_string(f), "openmetrics"))``
equals ``text.encode_to_string(f)`` for the families our registries make:

* a counter family ``foo`` becomes ``foo_total`` (its samples keep their
  names, ``foo_total`` and ``foo_created``). A counter the model named
  without ``_total`` therefore comes back with it: OpenMetrics cannot say
  otherwise;
* the samples of a colon family ``a:b`` that prometheus_client spells
  ``a_b_total``, ``a_b_bucket``... (its OpenMetrics escaping) are read as the
  family's, under its spelling (``a:b_total``), unless a family ``a_b`` exists;
* type ``unknown`` becomes ``untyped``; ``info``, ``stateset`` and
  ``gaugehistogram`` keep their OpenMetrics type words;
* ``le`` and ``quantile`` values are respelled from the canonical OpenMetrics
  form (``1.0``, ``1e-05``) to the Rust spelling of text 0.0.4 (``1``,
  ``0.00001``); ``+Inf`` stays ``+Inf``.

The work is split by job, in the modules of this package:
:mod:`~dyn_metrics.exposition.parse.text_lines` and
:mod:`~dyn_metrics.exposition.parse.om_lines` turn one line into a metadata
or sample token (from the shared pieces of
:mod:`~dyn_metrics.exposition.parse.tokens` and
:mod:`~dyn_metrics.exposition.parse.numbers`),
:mod:`~dyn_metrics.exposition.parse.families` files the tokens into families,
and :mod:`~dyn_metrics.exposition.parse.family_rules` checks each family as a
whole. This module drives them and builds the model.
"""

from typing import Optional, Union

from ...errors import ParseError
from ...model import COUNTER, GAUGEHISTOGRAM, HISTOGRAM, SUMMARY, UNKNOWN, UNTYPED, Family, Sample
from .families import Grouper
from .family_rules import check_family
from .numbers import parse_number, text_spelling
from .om_lines import lex_om_line
from .text_lines import lex_text_line
from .tokens import BLANKS, Metadata

__all__ = [
    "AUTO",
    "FORMATS",
    "OPENMETRICS",
    "TEXT",
    "Analysis",
    "analyse",
    "detect_format",
    "parse",
    "parse_number",
]

TEXT = "text"
OPENMETRICS = "openmetrics"
AUTO = "auto"
FORMATS = (TEXT, OPENMETRICS, AUTO)


def parse(text: Union[str, bytes, bytearray], format: str = TEXT) -> list[Family]:
    """Parse an exposition strictly into a list of :class:`Family` records.

    ``text`` is a ``str``, or ``bytes`` that must be UTF-8 (as served).
    ``format`` is ``"text"`` (0.0.4), ``"openmetrics"`` (1.0) or ``"auto"``
    (OpenMetrics when the last line is ``# EOF``). Raises :class:`ParseError`
    for the first problem (bytes that are not UTF-8 included), ``ValueError``
    for an unknown ``format`` and ``TypeError`` for anything but text or bytes.
    Thread-safe (no shared state).
    """
    if isinstance(text, (bytes, bytearray)):
        data = bytes(text)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ParseError(line, f"invalid UTF-8 at byte {exc.start}") from None
    elif not isinstance(text, str):
        raise TypeError(f"parse() takes an exposition as str or bytes, got {text!r}")
    result = analyse(text, format, warnings=False)
    if result.errors:
        line, _, msg = min(result.errors, key=lambda p: p[0])
        raise ParseError(line, msg)
    return result.families


def detect_format(text: str) -> str:
    """``"openmetrics"`` when the last non-empty line is ``# EOF``, else ``"text"``."""
    tail = text.rstrip("\n")
    return OPENMETRICS if tail.rsplit("\n", 1)[-1] == "# EOF" else TEXT


class Analysis:
    """What :func:`analyse` found: model families, their line numbers, problems.

    ``errors`` and ``warnings`` are lists of ``(line, code, message)``;
    ``family_lines[i]`` is ``(first_line, [line of each sample])`` for
    ``families[i]``.
    """

    __slots__ = ("format", "families", "family_lines", "errors", "warnings")

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        self.families: list[Family] = []
        self.family_lines: list[tuple[int, list[int]]] = []
        self.errors: list[tuple[int, str, str]] = []
        self.warnings: list[tuple[int, str, str]] = []


def analyse(text: str, format: str = TEXT, warnings: bool = True) -> Analysis:
    """Read an exposition, collecting every problem instead of stopping at the first."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS!r}, got {format!r}")
    if format == AUTO:
        format = detect_format(text)
    return _Reader(text, format == OPENMETRICS, warnings).run()


class _Reader:
    """One pass over one input; also the report the lexers, grouper and family rules write to."""

    def __init__(self, text: str, om: bool, warnings: bool) -> None:
        self.text = text
        self.om = om
        self.want_warnings = warnings
        self.result = Analysis(OPENMETRICS if om else TEXT)
        self.groups = Grouper(self, om)

    # -- reporting -------------------------------------------------------

    def error(self, line: int, code: str, msg: str) -> None:
        self.result.errors.append((line, code, msg))

    def warn(self, line: int, code: str, msg: str) -> None:
        if self.want_warnings:
            self.result.warnings.append((line, code, msg))

    # -- driver ----------------------------------------------------------

    def run(self) -> Analysis:
        text = self.text
        if text.startswith("\ufeff"):
            self.error(
                1, "bom", "byte order mark at the start of the input (UTF-8 without BOM required)"
            )
            text = text[1:]
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        elif not self.om and lines[-1].strip(BLANKS):
            self.error(len(lines), "final-newline", "last line does not end with a line feed")
        eof_line: Optional[int] = None
        token: Union[Metadata, Sample, None]
        for number, line in enumerate(lines, 1):
            if line.endswith("\r"):
                self.error(
                    number,
                    "crlf",
                    "line ends with a carriage return (CRLF); only LF line endings are allowed",
                )
                line = line.rstrip("\r")
            if self.om:
                if eof_line is not None:
                    self.error(number, "after-eof", "unexpected data after # EOF")
                    break
                if line == "# EOF":
                    eof_line = number
                    continue
                token = lex_om_line(self, number, line)
            else:
                token = lex_text_line(self, number, line)
            if isinstance(token, Sample):
                self.groups.sample(number, token)
            elif token is not None:
                self.groups.metadata(number, *token)
        if self.om and eof_line is None:
            self.error(
                max(len(lines), 1), "missing-eof", "missing '# EOF' at the end of the exposition"
            )
        for fam in self.groups.fams:
            check_family(self, fam, self.groups.type_of(fam), self.om)
        if self.om:
            self.groups.check_clashes()
        self._build()
        return self.result

    # -- model -----------------------------------------------------------

    def _build(self) -> None:
        out = self.result
        for fam in self.groups.fams:
            t = self.groups.type_of(fam)
            name = fam.name
            samples = [s for s, _ in fam.samples]
            if self.om:
                if t == UNKNOWN:
                    t = UNTYPED
                elif t == COUNTER:
                    name += "_total"
                if t in (HISTOGRAM, GAUGEHISTOGRAM, SUMMARY):
                    samples = [_respell(s, t, fam.name) for s in samples]
            out.families.append(Family(name, t, fam.help or "", tuple(samples), fam.unit or ""))
            out.family_lines.append((fam.line, [line for _, line in fam.samples]))


def _respell(sample: Sample, type_word: str, family_name: str) -> Sample:
    """Rewrite canonical OpenMetrics ``le``/``quantile`` values in the text spelling."""
    if type_word == SUMMARY:
        if sample.name != family_name:
            return sample
        key = "quantile"
    elif sample.name.endswith("_bucket"):
        key = "le"
    else:
        return sample
    labels = tuple((k, text_spelling(v) if k == key else v) for k, v in sample.labels)
    return sample._replace(labels=labels)
