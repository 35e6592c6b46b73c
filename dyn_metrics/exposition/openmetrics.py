"""OpenMetrics 1.0 text encoder over the same model as :mod:`dyn_metrics.exposition.text`.

``write_families(write, families)`` writes :class:`~dyn_metrics.model.Family`
records through any ``str -> None`` callable and ends with ``# EOF``;
``encode_to_string`` joins the pieces. As in the text encoder the input is
trusted: nothing here validates (:mod:`dyn_metrics.exposition.check` is the
strict half).

How the text 0.0.4 view of the model is spelled in OpenMetrics:

* metadata per family in the recommended order ``# TYPE``, ``# UNIT`` (when
  ``Family.unit`` is set), ``# HELP`` (when the help is non-empty; OpenMetrics
  treats an empty HELP as absent); families without samples are skipped, as
  the text encoder skips them;
* a counter family is named without ``_total`` and its value samples with it:
  model ``requests_total`` -> family ``requests``, sample ``requests_total``;
  Dynamo's ``dynamo_component_testcounter`` (no ``_total``) -> family
  ``dynamo_component_testcounter``, sample ``dynamo_component_testcounter_total``;
* ``untyped`` becomes ``unknown``; the OpenMetrics-only types pass through;
* values: ``int`` prints its digits, ``float`` its shortest round-trip
  digits with a ``.0`` or exponent (``1.0``, ``0.25``, ``1e-07``), and
  ``NaN``, ``+Inf``, ``-Inf``; timestamps are seconds in the same style;
* ``le`` and ``quantile`` values are respelled canonically (Go ``%g`` plus
  ``.0``: ``1.0``, ``0.005``, ``1e-05``, ``1e+06``, ``+Inf``);
* HELP escapes ``\\``, newline and ``"``; label values ``\\``, ``"``, newline.

``_created`` samples are written exactly as given: the encoder never invents
them. A collector that wants them (``Registry(created=True)``) puts them in the
family it belongs to, after the samples of the same labels, named
``<family>_created`` with the OpenMetrics family name (``requests_created`` for
the counter ``requests_total``) and the creation time in seconds as value.
Any sample of a counter family whose name ends in ``_created`` is written as
``<family>_created``. The text 0.0.4 encoder has no place for them, so leave
them out of families meant for text.
"""

import math
from collections.abc import Iterable, Sequence
from typing import Callable, Optional, SupportsFloat

from ..model import (
    COUNTER,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    SUMMARY,
    UNKNOWN,
    UNTYPED,
    Family,
    Labels,
    Number,
    Sample,
)
from .text import escape_label_value

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_TOTAL = "_total"
_CREATED = "_created"
_INFO = "_info"


def format_value(value: SupportsFloat) -> str:
    """An OpenMetrics number: ``int`` digits, float ``repr`` (always with ``.``
    or an exponent), ``NaN``, ``+Inf``, ``-Inf``."""
    if value.__class__ is int:
        return str(value)
    v = float(value)
    return _special(v) or repr(v)


def _special(v: float) -> Optional[str]:
    """The OpenMetrics spelling of NaN and the infinities; ``None`` for a finite ``v``."""
    if v != v:
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    return None


def format_canonical(value: SupportsFloat) -> str:
    """The canonical spelling of an ``le``/``quantile`` number.

    Go's ``%g`` with the shortest digits (exponent form when the decimal
    exponent is below -4 or at least 6, two exponent digits minimum) and
    ``.0`` appended when there is neither a point nor an exponent:
    ``0.0``, ``0.005``, ``1.0``, ``100000.0``, ``1e+06``, ``1e-05``, ``+Inf``.
    """
    v = float(value)
    special = _special(v)
    if special:
        return special
    r = repr(v)
    sign = ""
    if r[0] == "-":
        sign, r = "-", r[1:]
    mantissa, _, exp = r.partition("e")
    whole, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return sign + "0.0"
    x = point - 1
    if x < -4 or x >= 6:
        out = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        out += "e" + ("-" if x < 0 else "+") + f"{abs(x):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + digits
    elif point >= len(digits):
        out = digits + "0" * (point - len(digits)) + ".0"
    else:
        out = digits[:point] + "." + digits[point:]
    return sign + out


def escape_help(text: str) -> str:
    """Escape OpenMetrics HELP text: ``\\``, newline and ``"``."""
    if "\\" in text or "\n" in text or '"' in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return text


def family_name(family: Family) -> str:
    """The name a model family has in OpenMetrics.

    Counters lose one ``_total``. An info family named like its samples
    (``build_info``, the text 0.0.4 name live metrics use) loses ``_info``;
    one named without it (as the parser returns ``build``) keeps its name.
    """
    name = family.name
    if family.type == COUNTER and name.endswith(_TOTAL):
        return name[: -len(_TOTAL)]
    if (
        family.type == INFO
        and name.endswith(_INFO)
        and family.samples
        and family.samples[0].name == name
    ):
        return name[: -len(_INFO)]
    return name


def _format_labels(pairs: Sequence[tuple[str, str]], canonical: Optional[str] = None) -> str:
    if not pairs:
        return ""
    parts: list[str] = []
    for k, v in pairs:
        if k == canonical:
            v = _canonical_label(v)
        parts.append(f'{k}="{escape_label_value(v)}"')
    return "{" + ",".join(parts) + "}"


def _canonical_label(text: str) -> str:
    try:
        return format_canonical(float(text))
    except ValueError:
        return text


def _format_timestamp(ts: Number) -> str:
    return str(ts) if ts.__class__ is int else format_value(float(ts))


def write_sample(
    write: Callable[[str], object], name: str, sample: Sample, canonical: Optional[str] = None
) -> None:
    """Write one sample line under ``name``; ``canonical`` names the label to respell."""
    line = name + _format_labels(sample.labels, canonical) + " " + format_value(sample.value)
    if sample.timestamp is not None:
        line += " " + _format_timestamp(sample.timestamp)
    ex = sample.exemplar
    if ex is not None:
        line += " # " + (_format_labels(ex.labels) or "{}") + " " + format_value(ex.value)
        if ex.timestamp is not None:
            line += " " + _format_timestamp(ex.timestamp)
    write(line + "\n")


def _sums_to_drop(family: Family, bucket: str, gauge: bool) -> dict[str, set[Labels]]:
    """``{sample name: {labels}}`` of the ``_sum``/``_count`` pairs to leave out.

    ``_count`` appears if and only if ``_sum`` does (``_gcount``, ``_gsum`` for
    a gauge histogram), so a series with one of them (text 0.0.4 allows a
    histogram without ``_sum``) loses it. The sum of a histogram is a counter
    in OpenMetrics: a histogram with a negative bucket threshold MUST NOT have
    one, and a negative or NaN sum (negative or NaN observations) cannot be
    written as one, so both go. The buckets (``+Inf`` is the count) still say
    everything else.
    """
    sum_name = family.name + ("_gsum" if gauge else "_sum")
    count_name = family.name + ("_gcount" if gauge else "_count")
    sums: dict[Labels, float] = {}
    counts: set[Labels] = set()
    for s in family.samples:
        if s.name == sum_name:
            sums[s.labels] = s.value
        elif s.name == count_name:
            counts.add(s.labels)
    bad = sums.keys() ^ counts
    if not gauge:
        negative_bound = any(
            s.name == bucket
            and not dict(s.labels).get("le", "").startswith("+")
            and parse_bound(dict(s.labels).get("le")) < 0
            for s in family.samples
        )
        bad |= {labels for labels, value in sums.items() if negative_bound or not value >= 0}
    return {sum_name: bad, count_name: bad} if bad else {}


def parse_bound(text: Optional[str]) -> float:
    """A ``le`` value as a float (``+Inf`` included); NaN when it is not a number."""
    if text is None:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def write_families(write: Callable[[str], object], families: Iterable[Family]) -> None:
    """Write families in the given order, then ``# EOF``."""
    for family in families:
        if not family.samples:
            continue
        t = family.type
        name = family_name(family)
        write(f"# TYPE {name} {UNKNOWN if t == UNTYPED else t}\n")
        if family.unit:
            write(f"# UNIT {name} {family.unit}\n")
        if family.help:
            write(f"# HELP {name} {escape_help(family.help)}\n")
        if t == COUNTER:
            for s in family.samples:
                created = s.name.endswith(_CREATED) and s.name != family.name
                write_sample(write, name + (_CREATED if created else _TOTAL), s)
        elif t in (HISTOGRAM, GAUGEHISTOGRAM):
            bucket = name + "_bucket"
            drop = _sums_to_drop(family, bucket, t == GAUGEHISTOGRAM)
            for s in family.samples:
                if s.name in drop and s.labels in drop[s.name]:
                    continue
                write_sample(write, s.name, s, "le" if s.name == bucket else None)
        elif t == SUMMARY:
            for s in family.samples:
                write_sample(write, s.name, s, "quantile" if s.name == name else None)
        else:
            for s in family.samples:
                write_sample(write, s.name, s)
    write("# EOF\n")


def encode_to_string(families: Iterable[Family]) -> str:
    """The OpenMetrics exposition of ``families`` as one string, ``# EOF`` included."""
    parts: list[str] = []
    write_families(parts.append, families)
    return "".join(parts)
