"""Strict parser for text format 0.0.4 and OpenMetrics 1.0 expositions.

``parse(text, format="text")`` returns the same :class:`~dyn_metrics.model.Family`
records the encoders consume, or raises :class:`~dyn_metrics.errors.ParseError`
for the first problem (lowest line number; lines are 1-based). It rejects
everything :mod:`dyn_metrics.check` reports as an error: the grammar, what
Prometheus 2.42 or promtool refuse, and the structural rules nobody else checks
(duplicate series, interleaved families, histogram and summary shape).

How input becomes the model:

* Values: an integer literal (``42``, ``-7``, ``0042``) becomes an ``int``,
  anything else a ``float`` (``-0`` stays the float ``-0.0``).
* Timestamps become seconds: text 0.0.4 milliseconds are divided by 1000,
  OpenMetrics seconds are kept.
* Label pairs keep the order they were written in; HELP text is unescaped.

OpenMetrics input is normalised to the text 0.0.4 view the model uses, so
that ``expfmt.encode_to_string(parse(omfmt.encode_to_string(f), "openmetrics"))``
equals ``expfmt.encode_to_string(f)`` for the families our registries make:

* a counter family ``foo`` becomes ``foo_total`` (its samples keep their
  names, ``foo_total`` and ``foo_created``). A counter the model named
  without ``_total`` therefore comes back with it: OpenMetrics cannot say
  otherwise;
* type ``unknown`` becomes ``untyped``; ``info``, ``stateset`` and
  ``gaugehistogram`` keep their OpenMetrics type words;
* ``le`` and ``quantile`` values are respelled from the canonical OpenMetrics
  form (``1.0``, ``1e-05``) to the Rust spelling of text 0.0.4 (``1``,
  ``0.00001``); ``+Inf`` stays ``+Inf``.
"""

import math
import re

from . import expfmt
from .omfmt import format_canonical
from .errors import ParseError
from .model import (
    COUNTER,
    GAUGE,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    OPENMETRICS_TYPES,
    STATESET,
    SUMMARY,
    TEXT_TYPES,
    UNKNOWN,
    UNTYPED,
    Exemplar,
    Family,
    Sample,
)

TEXT = "text"
OPENMETRICS = "openmetrics"
AUTO = "auto"
FORMATS = (TEXT, OPENMETRICS, AUTO)

# re.ASCII everywhere: with Unicode matching, IGNORECASE would let the
# dotless "ı" match the "i" of "inf".
_NAME_AT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.A)
_LABEL_AT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*", re.A)
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z", re.A)
_UNIT = re.compile(r"[a-zA-Z0-9_:]*\Z", re.A)
_INT = re.compile(r"[+-]?[0-9]+\Z", re.A)
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z", re.A)
_INF = re.compile(r"([+-]?)inf(?:inity)?\Z", re.A | re.I)
_NAN = re.compile(r"nan\Z", re.A | re.I)
_DIGITS = re.compile(r"[0-9]+\Z", re.A)
# A quoted string body up to its closing quote; escapes are checked afterwards.
_QUOTED = re.compile(r'((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_TEXT_NAME_END = re.compile(r"[ \t{]")
_BLANKS = " \t"

_INT64_MAX = 2 ** 63 - 1
# An OpenMetrics timestamp this large is far more likely milliseconds than a
# date after the year 5000.
_MS_LOOKING = 1e11
_EXEMPLAR_MAX_CHARS = 128

_TEXT_SUFFIXES = {
    COUNTER: ("",),
    GAUGE: ("",),
    UNTYPED: ("",),
    HISTOGRAM: ("_bucket", "_sum", "_count"),
    SUMMARY: ("", "_sum", "_count"),
}
_OM_SUFFIXES = {
    COUNTER: ("_total", "_created"),
    GAUGE: ("",),
    UNKNOWN: ("",),
    STATESET: ("",),
    INFO: ("_info",),
    HISTOGRAM: ("_bucket", "_count", "_sum", "_created"),
    GAUGEHISTOGRAM: ("_bucket", "_gcount", "_gsum"),
    SUMMARY: ("", "_count", "_sum", "_created"),
}
_OM_RESERVED = ("_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info")


class _Bad(Exception):
    """A token that does not parse; the message says why."""


def parse(text, format=TEXT):
    """Parse an exposition strictly into a list of :class:`Family` records.

    ``format`` is ``"text"`` (0.0.4), ``"openmetrics"`` (1.0) or ``"auto"``
    (OpenMetrics when the last line is ``# EOF``). Raises :class:`ParseError`
    for the first problem, and ``ValueError`` for an unknown ``format``.
    Thread-safe (no shared state).
    """
    result = analyse(text, format, warnings=False)
    if result.errors:
        line, msg = min(result.errors, key=lambda p: p[0])
        raise ParseError(line, msg)
    return result.families


def detect_format(text):
    """``"openmetrics"`` when the last non-empty line is ``# EOF``, else ``"text"``."""
    tail = text.rstrip("\n")
    return OPENMETRICS if tail.rsplit("\n", 1)[-1] == "# EOF" else TEXT


def parse_number(token):
    """Parse a sample value the way Go's ``strconv.ParseFloat`` and the OpenMetrics ABNF agree on.

    Returns an ``int`` for integer literals and a ``float`` otherwise; raises
    ``ValueError`` for anything else (hex, ``1_000``, ``1,5``, out of range).
    """
    try:
        return _number(token)
    except _Bad as exc:
        raise ValueError(str(exc)) from None


def _number(token):
    if _INT.match(token):
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
                raise _Bad(f"value {token!r} is out of the float64 range") from None
            return n
    if _REAL.match(token):
        v = float(token)
        if math.isinf(v):
            raise _Bad(f"value {token!r} is out of the float64 range")
        return v
    m = _INF.match(token)
    if m:
        return -math.inf if m.group(1) == "-" else math.inf
    if _NAN.match(token):
        return math.nan
    raise _Bad(f"invalid number {token!r}")


def _labels_text(labels):
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else ""


def _series_key(name, labels):
    # Empty label values count as absent: Prometheus drops them on ingestion.
    return name, frozenset(p for p in labels if p[1] != "")


class _Fam:
    """A family while it is being read."""

    __slots__ = ("name", "type", "help", "unit", "line", "seen", "samples",
                 "unit_line", "last_metric", "done_metrics")

    def __init__(self, name, line):
        self.name = name
        self.type = None
        self.help = None
        self.unit = None
        self.line = line
        self.seen = []          # metadata kinds in the order they came
        self.samples = []       # (Sample, line)
        self.unit_line = line
        self.last_metric = None
        self.done_metrics = set()


class Analysis:
    """What :func:`analyse` found: model families, their line numbers, problems.

    ``errors`` and ``warnings`` are lists of ``(line, message)``;
    ``family_lines[i]`` is ``(first_line, [line of each sample])`` for
    ``families[i]``.
    """

    __slots__ = ("format", "families", "family_lines", "errors", "warnings")

    def __init__(self, fmt):
        self.format = fmt
        self.families = []
        self.family_lines = []
        self.errors = []
        self.warnings = []


def analyse(text, format=TEXT, warnings=True):
    """Read an exposition, collecting every problem instead of stopping at the first."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS!r}, got {format!r}")
    if format == AUTO:
        format = detect_format(text)
    return _Reader(text, format == OPENMETRICS, warnings).run()


class _Reader:
    def __init__(self, text, om, warnings):
        self.text = text
        self.om = om
        self.want_warnings = warnings
        self.result = Analysis(OPENMETRICS if om else TEXT)
        self.fams = []
        self.by_name = {}
        self.cur = None
        self.series = {}

    # -- reporting -------------------------------------------------------

    def error(self, line, msg):
        self.result.errors.append((line, msg))

    def warn(self, line, msg):
        if self.want_warnings:
            self.result.warnings.append((line, msg))

    # -- driver ----------------------------------------------------------

    def run(self):
        text = self.text
        if text.startswith("\ufeff"):
            self.error(1, "byte order mark at the start of the input (UTF-8 without BOM required)")
            text = text[1:]
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        elif not self.om and lines[-1].strip(_BLANKS):
            self.error(len(lines), "last line does not end with a line feed")
        eof_line = None
        for number, line in enumerate(lines, 1):
            if line.endswith("\r"):
                self.error(number, "line ends with a carriage return (CRLF); "
                                   "only LF line endings are allowed")
                line = line.rstrip("\r")
            if self.om:
                if eof_line is not None:
                    self.error(number, "unexpected data after # EOF")
                    break
                if line == "# EOF":
                    eof_line = number
                    continue
                self._om_line(number, line)
            else:
                self._text_line(number, line)
        if self.om and eof_line is None:
            self.error(max(len(lines), 1), "missing '# EOF' at the end of the exposition")
        for fam in self.fams:
            self._finish(fam)
        if self.om:
            self._check_clashes()
        self._build()
        return self.result

    # -- text 0.0.4 lines --------------------------------------------------

    def _text_line(self, number, line):
        stripped = line.lstrip(_BLANKS)
        if not stripped:
            return
        if stripped[0] == "#":
            self._text_comment(number, stripped)
            return
        if len(stripped) != len(line):
            self.error(number, "whitespace before the metric name (Prometheus 2.42 rejects such a sample)")
        self._text_sample(number, stripped)

    def _text_comment(self, number, line):
        rest = line[1:]
        body = rest.lstrip(_BLANKS)
        keyword, _, after = _split_blank(body)
        if keyword not in ("HELP", "TYPE"):
            if keyword in ("EOF", "UNIT") and len(body) != len(rest):
                self.warn(number, f"'# {keyword}' is OpenMetrics syntax; "
                                  "text 0.0.4 reads it as a plain comment")
            return
        if len(body) == len(rest):
            self.warn(number, f"no blank after '#': promtool reads a {keyword} line, "
                              "Prometheus a plain comment")
        name, _, after = _split_blank(after.lstrip(_BLANKS))
        if not name:
            self.error(number, f"{keyword} line without a metric name")
            return
        if not _METRIC_NAME.match(name):
            self.error(number, f"invalid metric name {name!r} in {keyword} line")
            return
        after = after.lstrip(_BLANKS)
        if keyword == "HELP":
            self._metadata(number, "HELP", name, self._unescape_help_text(number, after))
            return
        if after not in TEXT_TYPES:
            if not after:
                self.error(number, f"TYPE line for {name!r} without a type")
            elif after.rstrip(_BLANKS) in TEXT_TYPES:
                self.error(number, f"unknown metric type {after!r}: trailing whitespace")
            elif after in OPENMETRICS_TYPES:
                self.error(number, f"metric type {after!r} exists only in OpenMetrics; text 0.0.4 "
                                   "allows counter, gauge, histogram, summary, untyped")
            else:
                self.error(number, f"unknown metric type {after!r}")
            after = None
        self._metadata(number, "TYPE", name, after)

    def _unescape_help_text(self, number, text):
        if "\\" not in text:
            return text
        out = []
        i = 0
        n = len(text)
        while i < n:
            c = text[i]
            if c != "\\":
                out.append(c)
                i += 1
                continue
            if i + 1 >= n:
                self.error(number, "HELP text ends with a lone backslash")
                out.append(c)
                break
            nxt = text[i + 1]
            if nxt == "\\":
                out.append("\\")
            elif nxt == "n":
                out.append("\n")
            else:
                self.error(number, f"invalid escape sequence '\\{nxt}' in HELP (text 0.0.4 allows only "
                                   "\\\\ and \\n)")
                out.append(c + nxt)
            i += 2
        return "".join(out)

    def _text_sample(self, number, line):
        n = len(line)
        m = _TEXT_NAME_END.search(line)
        end = m.start() if m else n
        name = line[:end]
        if not _METRIC_NAME.match(name):
            self.error(number, f"invalid metric name {name!r}" if name else "missing metric name")
            return
        pos = _skip_blanks(line, end)
        labels = ()
        if pos < n and line[pos] == "{":
            labels, pos = self._labels(number, line, pos + 1, name)
            if labels is None:
                return
            pos = _skip_blanks(line, pos)
        if pos >= n:
            self.error(number, f"sample {name!r} has no value")
            return
        vend = _find_blank(line, pos)
        token = line[pos:vend]
        try:
            value = _number(token)
        except _Bad as exc:
            self.error(number, f"{exc} for {name!r}")
            return
        timestamp = None
        if vend < n:
            tpos = _skip_blanks(line, vend)
            if tpos >= n:
                self.error(number, "trailing whitespace after the value (promtool rejects it)")
            else:
                tend = _find_blank(line, tpos)
                token = line[tpos:tend]
                if token == "#":
                    self.error(number, "exemplars exist only in OpenMetrics, not in text 0.0.4")
                    return
                if _DIGITS.match(token):
                    ms = int(token)
                    if ms > _INT64_MAX:
                        self.error(number, f"timestamp {token!r} is out of the int64 range")
                    else:
                        timestamp = ms / 1000
                elif _INT.match(token):
                    self.error(number, f"signed timestamp {token!r}: Prometheus 2.42 accepts only digits")
                else:
                    self.error(number, f"invalid timestamp {token!r}: expected integer milliseconds")
                if tend < n:
                    if line[tend:].strip(_BLANKS):
                        self.error(number, "unexpected text after the timestamp: "
                                           f"{line[tend:].strip(_BLANKS)!r}")
                    else:
                        self.error(number, "trailing whitespace after the timestamp (promtool rejects it)")
        self._sample(number, Sample(name, labels, value, timestamp))

    # -- OpenMetrics lines --------------------------------------------------

    def _om_line(self, number, line):
        if not line:
            self.error(number, "blank line (not allowed in OpenMetrics)")
            return
        first = line[0]
        if first == "#":
            for keyword in ("TYPE", "HELP", "UNIT"):
                if line.startswith(f"# {keyword} "):
                    self._om_metadata(number, keyword, line[len(keyword) + 3:])
                    return
            words = line[1:].split()
            if words and words[0] in ("TYPE", "HELP", "UNIT", "EOF"):
                self.error(number, f"malformed '# {words[0]}' line: "
                                   "expected single spaces between its fields")
            else:
                self.error(number, "comment lines are not allowed in OpenMetrics (only # TYPE, # UNIT, "
                                   "# HELP and # EOF)")
            return
        if first in _BLANKS:
            self.error(number, "whitespace at the start of a line")
            return
        self._om_sample(number, line)

    def _om_metadata(self, number, keyword, rest):
        name, sep, value = rest.partition(" ")
        if not _METRIC_NAME.match(name):
            self.error(number, f"invalid metric name {name!r} in {keyword} line")
            return
        if not sep:
            what = {"HELP": "text", "TYPE": "a type", "UNIT": "a unit"}[keyword]
            self.error(number, f"expected {what} in {keyword} line for {name!r} (after a single space)")
            return
        if keyword == "TYPE":
            if value not in OPENMETRICS_TYPES:
                hint = ""
                if value == UNTYPED:
                    hint = " (OpenMetrics calls it 'unknown')"
                elif value.lower() in OPENMETRICS_TYPES:
                    hint = " (type words are lowercase)"
                self.error(number, f"invalid metric type {value!r}{hint}")
                value = None
            self._metadata(number, "TYPE", name, value)
        elif keyword == "UNIT":
            if not _UNIT.match(value):
                self.error(number, f"invalid unit {value!r}: only [a-zA-Z0-9_:] allowed")
                value = ""
            self._metadata(number, "UNIT", name, value)
        else:
            self._metadata(number, "HELP", name, self._unescape_om(number, value, "HELP text"))

    def _unescape_om(self, number, text, what):
        if "\\" not in text and '"' not in text:
            return text
        bare = _ESCAPE.sub("", text)
        if '"' in bare:
            self.error(number, f"unescaped '\"' in {what} (OpenMetrics requires \\\")")
        if "\\" in bare:
            self.error(number, f"{what} ends with a lone backslash")
        return _ESCAPE.sub(lambda m: self._om_escape(number, m.group(1), what), text)

    def _om_escape(self, number, char, what):
        if char == "n":
            return "\n"
        if char in '"\\':
            return char
        self.warn(number, f"undefined escape '\\{char}' in {what}; write '\\\\' for a backslash")
        return "\\" + char

    def _om_sample(self, number, line):
        n = len(line)
        m = _NAME_AT.match(line)
        if not m:
            self.error(number, f"invalid metric name at the start of {line[:40]!r}")
            return
        name = m.group()
        pos = m.end()
        labels = ()
        if pos < n and line[pos] == "{":
            labels, pos = self._labels(number, line, pos + 1, name)
            if labels is None:
                return
        if pos >= n:
            self.error(number, f"sample {name!r} has no value")
            return
        if line[pos] != " ":
            self.error(number, f"invalid character {line[pos]!r} after {name!r}: expected a single "
                               "space and the value")
            return
        pos += 1
        end = line.find(" ", pos)
        end = n if end < 0 else end
        token = line[pos:end]
        try:
            value = _number(token)
        except _Bad as exc:
            msg = "expected a single space before the value" if token == "" else str(exc)
            self.error(number, f"{msg} for {name!r}")
            return
        timestamp = None
        exemplar = None
        pos = end
        if pos < n and not line.startswith(" # ", pos):
            end = line.find(" ", pos + 1)
            end = n if end < 0 else end
            timestamp = self._om_timestamp(number, line[pos + 1:end])
            if timestamp is _BAD:
                return
            pos = end
        if pos < n:
            if not line.startswith(" # ", pos):
                self.error(number, f"unexpected text after the timestamp: {line[pos:]!r}")
                return
            exemplar = self._om_exemplar(number, line[pos + 3:], name)
            if exemplar is _BAD:
                return
        self._sample(number, Sample(name, labels, value, timestamp, exemplar))

    def _om_timestamp(self, number, token, exemplar=False):
        if not _REAL.match(token):
            if token == "":
                self.error(number, "empty timestamp field (a double or trailing space)")
            else:
                self.error(number, f"invalid timestamp {token!r}: expected seconds")
            return _BAD
        ts = float(token)
        if math.isinf(ts):
            self.error(number, f"timestamp {token!r} is out of the float64 range")
            return _BAD
        if abs(ts) >= _MS_LOOKING:
            self.warn(number, f"timestamp {token} looks like milliseconds; "
                              "OpenMetrics timestamps are seconds")
        elif not exemplar:
            self.warn(number, "explicit timestamp: OpenMetrics says MetricPoints SHOULD NOT have one")
        return ts

    def _om_exemplar(self, number, rest, name):
        if not rest.startswith("{"):
            self.error(number, "exemplar must start with a label set '{...}' (use '{}' for none)")
            return _BAD
        labels, pos = self._labels(number, rest, 1, name)
        if labels is None:
            return _BAD
        chars = sum(len(k) + len(v) for k, v in labels)
        if chars > _EXEMPLAR_MAX_CHARS:
            self.error(number, f"exemplar labels have {chars} characters; "
                               f"at most {_EXEMPLAR_MAX_CHARS} allowed")
        fields = rest[pos:].split(" ")
        if fields[0] != "" or len(fields) < 2:
            self.error(number, "expected a single space and the exemplar value after its labels")
            return _BAD
        try:
            value = _number(fields[1])
        except _Bad as exc:
            self.error(number, f"{exc} in exemplar")
            return _BAD
        timestamp = None
        if len(fields) > 2:
            timestamp = self._om_timestamp(number, fields[2], exemplar=True)
            if timestamp is _BAD:
                return _BAD
        if len(fields) > 3:
            self.error(number, f"unexpected text after the exemplar: {' '.join(fields[3:])!r}")
            return _BAD
        return Exemplar(labels, value, timestamp)

    # -- shared pieces ----------------------------------------------------

    def _labels(self, number, line, pos, metric):
        """Parse labels after '{'; returns (labels, position after '}') or (None, _)."""
        om = self.om
        n = len(line)
        labels = []
        names = set()
        while True:
            if not om:
                pos = _skip_blanks(line, pos)
            if pos < n and line[pos] == "}" and (not om or not labels):
                return tuple(labels), pos + 1
            m = _LABEL_AT.match(line, pos)
            end = pos
            while end < n and line[end] not in '= \t,}"':
                end += 1
            token = line[pos:end]
            if not m or m.end() != end:
                if pos >= n:
                    self.error(number, f"unterminated label set for {metric!r}")
                elif om and line[pos] == "}":
                    self.error(number, f"trailing comma in the label set of {metric!r} (not allowed in "
                                       "OpenMetrics)")
                elif om and line[pos] == " ":
                    self.error(number, f"space inside the label set of {metric!r} (not allowed in "
                                       "OpenMetrics)")
                else:
                    self.error(number, f"invalid label name {token or line[pos]!r} for {metric!r}")
                return None, pos
            label = token
            pos = end if om else _skip_blanks(line, end)
            if pos >= n or line[pos] != "=":
                found = line[pos] if pos < n else "end of line"
                self.error(number, f"expected '=' after label name {label!r}, found {found!r}")
                return None, pos
            pos = pos + 1 if om else _skip_blanks(line, pos + 1)
            if pos >= n or line[pos] != '"':
                self.error(number, f"expected '\"' to open the value of label {label!r}")
                return None, pos
            q = _QUOTED.match(line, pos + 1)
            if not q:
                self.error(number, f"unterminated value of label {label!r} for {metric!r}")
                return None, pos
            raw = q.group(1)
            value = raw if "\\" not in raw else self._unescape_label(number, raw)
            pos = q.end()
            if label in names:
                self.error(number, f"duplicate label name {label!r} for {metric!r}")
            names.add(label)
            if om and label.startswith("_"):
                self.error(number, f"label names starting with '_' are reserved in OpenMetrics: {label!r}")
            elif label.startswith("__"):
                self.warn(number, "label names starting with '__' are reserved for Prometheus' "
                                  f"internal use: {label!r}")
            labels.append((label, value))
            if not om:
                pos = _skip_blanks(line, pos)
            if pos < n and line[pos] == ",":
                pos += 1
                continue
            if pos < n and line[pos] == "}":
                return tuple(labels), pos + 1
            found = line[pos] if pos < n else "end of line"
            self.error(number, f"expected ',' or '}}' after the value of label {label!r}, found {found!r}")
            return None, pos

    def _unescape_label(self, number, raw):
        if self.om:
            return self._unescape_om(number, raw, "label value")

        def replace(m):
            c = m.group(1)
            if c == "n":
                return "\n"
            if c in '"\\':
                return c
            self.error(number, f"invalid escape sequence '\\{c}' in label value (allowed: \\\\ \\\" \\n)")
            return "\\" + c

        return _ESCAPE.sub(replace, raw)

    def _metadata(self, number, kind, name, value):
        fam = self.by_name.get(name)
        if fam is None:
            fam = self._new_family(name, number)
        elif fam is not self.cur:
            if kind in fam.seen:
                self.error(number, f"second {kind} line for {name!r}")
            else:
                self.error(number, f"{kind} line for {name!r} after its family ended (families must not "
                                   "be interleaved)")
            return
        elif kind in fam.seen:
            self.error(number, f"second {kind} line for {name!r}")
            return
        elif fam.samples:
            self.error(number, f"{kind} line for {name!r} after its samples")
            return
        if self.om and fam.seen:
            order = ("TYPE", "UNIT", "HELP")
            if any(order.index(k) > order.index(kind) for k in fam.seen):
                self.warn(number, f"metadata of {name!r} should be in the order TYPE, UNIT, HELP")
        fam.seen.append(kind)
        if kind == "TYPE":
            fam.type = value
        elif kind == "HELP":
            fam.help = value
        else:
            fam.unit = value
            fam.unit_line = number

    def _new_family(self, name, number):
        if self.om and name.startswith("_"):
            self.error(number, f"metric family names starting with '_' are reserved in OpenMetrics: {name!r}")
        fam = _Fam(name, number)
        self.fams.append(fam)
        self.by_name[name] = fam
        self.cur = fam
        return fam

    def _type(self, fam):
        if fam.type:
            return fam.type
        return UNKNOWN if self.om else UNTYPED

    def _owns(self, fam, name):
        if not name.startswith(fam.name):
            return False
        suffixes = (_OM_SUFFIXES if self.om else _TEXT_SUFFIXES)[self._type(fam)]
        return name[len(fam.name):] in suffixes

    def _owner(self, name):
        fam = self.by_name.get(name)
        if fam is not None and self._owns(fam, name):
            return fam
        for suffix in _OM_RESERVED:
            if name.endswith(suffix):
                fam = self.by_name.get(name[: -len(suffix)])
                if fam is not None and self._owns(fam, name):
                    return fam
        return None

    def _family_for(self, number, name):
        cur = self.cur
        if cur is not None and self._owns(cur, name):
            return cur
        fam = self._owner(name)
        if fam is not None:
            if fam.samples:
                self.error(number, f"samples of {fam.name!r} are interleaved with another family (one "
                                   "uninterrupted group required)")
            else:
                self.error(number, f"metadata of {fam.name!r} is separated from its samples "
                                   "by another family")
            self.cur = fam
            return fam
        if cur is not None and name == cur.name:
            suffixes = (_OM_SUFFIXES if self.om else _TEXT_SUFFIXES)[self._type(cur)]
            expected = " or ".join(repr(cur.name + s) for s in suffixes)
            self.error(number, f"sample name {name!r} does not fit {self._type(cur)} family "
                               f"{cur.name!r} (expected {expected})")
            return None
        fam = self.by_name.get(name)
        if fam is not None:
            self.error(number, f"sample {name!r} does not fit the {self._type(fam)} family of the same name")
            return None
        if cur is not None and not cur.samples and not self.om and name.startswith(cur.name):
            self.warn(cur.line, f"metadata for {cur.name!r} has no samples; the samples that follow are "
                                f"named {name!r}")
        return self._new_family(name, number)

    def _sample(self, number, sample):
        fam = self._family_for(number, sample.name)
        if fam is None:
            return
        key = _series_key(sample.name, sample.labels)
        seen = self.series.get(key)
        if seen is not None:
            first, ts = seen
            if not (self.om and ts is not None and sample.timestamp is not None and sample.timestamp > ts):
                self.error(number, f"duplicate series {sample.name}{_labels_text(sample.labels)} (first "
                                   f"on line {first})")
        self.series[key] = (seen[0] if seen else number, sample.timestamp)
        if self.om:
            metric = self._metric_key(fam, sample.labels)
            if metric != fam.last_metric:
                if metric in fam.done_metrics:
                    self.error(number, f"metric {fam.name}{_labels_text(sorted(metric))} is interleaved "
                                       "with other metrics of the family")
                if fam.last_metric is not None:
                    fam.done_metrics.add(fam.last_metric)
                fam.last_metric = metric
        fam.samples.append((sample, number))

    def _metric_key(self, fam, labels):
        t = self._type(fam)
        drop = {HISTOGRAM: "le", GAUGEHISTOGRAM: "le", SUMMARY: "quantile", STATESET: fam.name}.get(t)
        return frozenset(p for p in labels if p[0] != drop and p[1] != "")

    # -- per-family rules, after the whole input is read -----------------

    def _finish(self, fam):
        t = self._type(fam)
        om = self.om
        if t in (HISTOGRAM, GAUGEHISTOGRAM):
            self._check_histogram(fam, t)
        elif t == SUMMARY:
            self._check_summary(fam)
        elif t == COUNTER:
            for s, line in fam.samples:
                if s.name.endswith("_created") and s.name != fam.name:
                    self._check_created(s, line)
                    continue
                v = s.value
                if v != v or v < 0:
                    what = "NaN" if v != v else "negative"
                    if om:
                        self.error(line, f"counter {s.name!r} is {what}")
                    else:
                        self.warn(line, f"counter {s.name!r} is {what}")
        elif t == INFO:
            for s, line in fam.samples:
                if s.value != 1:
                    self.error(line, f"info sample {s.name!r} must have the value 1, got {s.value!r}")
        elif t == STATESET:
            for s, line in fam.samples:
                if not any(k == fam.name for k, _ in s.labels):
                    self.error(line, f"stateset sample needs a label named {fam.name!r} holding the state")
                if s.value not in (0, 1):
                    self.error(line, f"stateset sample values must be 0 or 1, got {s.value!r}")
        if om:
            if fam.unit:
                if t in (INFO, STATESET):
                    self.error(fam.unit_line, f"{t} family {fam.name!r} must not have a unit")
                elif not fam.name.endswith("_" + fam.unit):
                    self.error(fam.unit_line, f"unit {fam.unit!r} is not a suffix of the family name "
                                              f"{fam.name!r}")
            for s, line in fam.samples:
                if s.exemplar is not None and not (
                        (t == COUNTER and s.name.endswith("_total"))
                        or (t in (HISTOGRAM, GAUGEHISTOGRAM) and s.name.endswith("_bucket"))):
                    self.error(line, f"{s.name!r} cannot carry an exemplar (only counter _total and "
                                     "histogram _bucket samples can)")

    def _check_created(self, sample, line):
        if self.om and abs(sample.value) >= _MS_LOOKING:
            self.warn(line, f"{sample.name} = {sample.value!r} looks like milliseconds; "
                            "_created holds seconds")

    def _counterlike(self, sample, line, what, integer):
        v = sample.value
        if v != v or v < 0:
            self.error(line, f"{what} {sample.name!r} must not be {'NaN' if v != v else 'negative'}")
        elif integer and self.om and not float(v).is_integer():
            self.error(line, f"{what} {sample.name!r} must be an integer, got {v!r}")

    def _check_histogram(self, fam, t):
        om = self.om
        gauge = t == GAUGEHISTOGRAM
        count_sfx, sum_sfx = ("_gcount", "_gsum") if gauge else ("_count", "_sum")
        metrics = {}
        for s, line in fam.samples:
            suffix = s.name[len(fam.name):]
            key = frozenset(p for p in s.labels if p[0] != "le" and p[1] != "")
            m = metrics.get(key)
            if m is None:
                m = metrics[key] = {"buckets": [], "count": None, "sum": None, "line": line}
            if suffix == "_bucket":
                le = [v for k, v in s.labels if k == "le"]
                if not le:
                    self.error(line, f"histogram bucket {s.name!r} has no 'le' label")
                    continue
                try:
                    bound = float(_number(le[0]))
                except _Bad:
                    bound = math.nan
                if bound != bound:
                    self.error(line, f"invalid 'le' value {le[0]!r}: expected a number")
                    continue
                if om and le[0] != format_canonical(bound):
                    self.warn(line, f"le={le[0]!r} is not canonical; OpenMetrics spells it "
                                    f"{format_canonical(bound)!r}")
                m["buckets"].append((bound, s, line, le[0]))
                self._counterlike(s, line, "bucket", True)
                if s.exemplar is not None and om and float(s.exemplar.value) > bound:
                    self.error(line, f"exemplar value {s.exemplar.value!r} is above the bucket's le={le[0]}")
                continue
            if any(k == "le" for k, _ in s.labels):
                self.error(line, f"'le' label on {s.name!r}: only _bucket samples may have it")
            if suffix == count_sfx:
                m["count"] = (s, line)
                self._counterlike(s, line, "count", True)
            elif suffix == sum_sfx:
                m["sum"] = (s, line)
                if gauge:
                    if s.value != s.value:
                        self.error(line, f"{s.name!r} must not be NaN")
                elif om:
                    self._counterlike(s, line, "sum", False)
            elif suffix == "_created":
                self._check_created(s, line)
        for key, m in metrics.items():
            where = f"{fam.name}{_labels_text(sorted(key))}"
            buckets = m["buckets"]
            if not buckets:
                self.error(m["line"], f"histogram {where} has no buckets; a le=\"+Inf\" bucket is required")
            else:
                ordered = True
                for (b0, s0, _, _), (b1, s1, line, le) in zip(buckets, buckets[1:]):
                    if b1 == b0:
                        self.error(line, f"duplicate bucket threshold le={le!r} in {where}")
                        ordered = False
                    elif b1 < b0:
                        self.error(line, f"buckets of {where} are not in increasing 'le' order")
                        ordered = False
                    elif ordered and s1.value < s0.value:
                        self.error(line, f"bucket counts of {where} are not cumulative: le={le!r} has "
                                         f"{s1.value!r} < {s0.value!r}")
                inf = [s for b, s, _, _ in buckets if b == math.inf]
                if not inf:
                    self.error(buckets[-1][2], f"histogram {where} has no le=\"+Inf\" bucket")
                count, total = m["count"], m["sum"]
                if count is not None and inf and not _same(count[0].value, inf[0].value):
                    self.error(count[1], f"{count[0].name} = {count[0].value!r} differs from the +Inf "
                                         f"bucket {inf[0].value!r}")
                if total is not None and om and not gauge and buckets[0][0] < 0:
                    self.error(total[1], f"histogram {where} has negative bucket thresholds, so it must "
                                         f"not have {sum_sfx}")
            count, total = m["count"], m["sum"]
            if om:
                if total is not None and count is None:
                    self.error(total[1], f"histogram {where} has {sum_sfx} but no {count_sfx}")
                elif count is not None and total is None:
                    self.error(count[1], f"histogram {where} has {count_sfx} but no {sum_sfx} "
                                         "(OpenMetrics: both or neither)")
                elif total is None and buckets and buckets[0][0] >= 0:
                    self.warn(m["line"], f"histogram {where} has no {sum_sfx}")
            else:
                if count is None:
                    self.error(m["line"], f"histogram {where} has no {count_sfx} "
                                          "(it must equal the +Inf bucket)")
                if total is None:
                    self.warn(m["line"], f"histogram {where} has no {sum_sfx}")

    def _check_summary(self, fam):
        om = self.om
        quantiles = {}
        for s, line in fam.samples:
            suffix = s.name[len(fam.name):]
            q = [v for k, v in s.labels if k == "quantile"]
            if suffix == "":
                if not q:
                    self.error(line, f"summary sample {s.name!r} has no 'quantile' label")
                    continue
                try:
                    value = float(_number(q[0]))
                except _Bad:
                    value = math.nan
                if not 0 <= value <= 1:
                    self.error(line, f"invalid quantile {q[0]!r}: expected a number from 0 to 1")
                    continue
                if om and s.value < 0:
                    self.error(line, f"quantile value {s.value!r} must not be negative")
                if om and q[0] != format_canonical(value):
                    self.warn(line, f"quantile={q[0]!r} is not canonical; OpenMetrics spells it "
                                    f"{format_canonical(value)!r}")
                key = frozenset(p for p in s.labels if p[0] != "quantile" and p[1] != "")
                quantiles.setdefault(key, []).append((value, line))
                continue
            if q:
                self.error(line, f"'quantile' label on {s.name!r}: only quantile samples may have it")
            if suffix == "_created":
                self._check_created(s, line)
            elif om:
                self._counterlike(s, line, suffix[1:], suffix == "_count")
        for key, qs in quantiles.items():
            where = f"{fam.name}{_labels_text(sorted(key))}"
            seen = set()
            for i, (value, line) in enumerate(qs):
                if value in seen:
                    self.error(line, f"duplicate quantile {value!r} in {where}")
                elif not om and i and value < qs[i - 1][0]:
                    self.error(line, f"quantiles of {where} are not in increasing order")
                seen.add(value)

    def _check_clashes(self):
        claimed = {}
        for fam in self.fams:
            for suffix in _OM_SUFFIXES[self._type(fam)]:
                name = fam.name + suffix
                other = claimed.get(name)
                if other is not None and other is not fam:
                    self.error(fam.line, f"family {fam.name!r} clashes with family {other.name!r}: both "
                                         f"can have samples named {name!r}")
                    break
                claimed[name] = fam

    # -- model -----------------------------------------------------------

    def _build(self):
        out = self.result
        for fam in self.fams:
            t = self._type(fam)
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


_BAD = object()


def _respell(sample, type_word, family_name):
    """Rewrite canonical OpenMetrics ``le``/``quantile`` values in the text spelling."""
    if type_word == SUMMARY:
        if sample.name != family_name:
            return sample
        key = "quantile"
    elif sample.name.endswith("_bucket"):
        key = "le"
    else:
        return sample
    labels = []
    for k, v in sample.labels:
        if k == key:
            try:
                x = float(_number(v))
            except _Bad:
                x = math.nan
            if x == math.inf:
                v = "+Inf"
            elif x == -math.inf:
                v = "-Inf"
            elif x == x:
                v = expfmt.format_value(x)
        labels.append((k, v))
    return sample._replace(labels=tuple(labels))


def _same(a, b):
    return a == b or (a != a and b != b)


def _split_blank(s):
    """First blank-or-tab-separated token and the rest (rest keeps its blanks)."""
    for i, c in enumerate(s):
        if c in _BLANKS:
            return s[:i], "", s[i:]
    return s, "", ""


def _skip_blanks(line, pos):
    n = len(line)
    while pos < n and line[pos] in _BLANKS:
        pos += 1
    return pos


def _find_blank(line, pos):
    n = len(line)
    while pos < n and line[pos] not in _BLANKS:
        pos += 1
    return pos
