"""Lint in the spirit of client_golang's promlint: names, units, suffixes and labels.

:func:`lint_family` looks at one family of the model after the parser built
it, and returns the discouraged (valid) things about its names; which of
them are reported, once per family, is :mod:`dyn_metrics.exposition.check`'s
choice (its docstring lists the codes).
"""

import re
from typing import Optional

from ...model import COUNTER, GAUGEHISTOGRAM, HISTOGRAM, SUMMARY, UNKNOWN, UNTYPED, Family
from ..openmetrics import family_name

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


def lint_family(
    family: Family, line: int, sample_lines: list[int], om: bool
) -> list[tuple[int, str, str]]:
    """The naming lints of one parsed ``family`` as ``(line, code, message)``.

    ``line`` is where the family starts, ``sample_lines`` where each of its
    samples is; OpenMetrics (``om``) names a counter family without ``_total``.
    """
    t = family.type
    name = family_name(family) if om else family.name
    lower = name.lower()
    out: list[tuple[int, str, str]] = []
    if not family.help:
        out.append((line, "missing-help", f"{name}: no help text"))
    total = name.endswith("_total")
    if t == COUNTER:
        if om and total:
            out.append(
                (
                    line,
                    "counter-family-total",
                    f"{name}: counter family name ends in '_total'; its samples are named "
                    f"{name}_total",
                )
            )
        elif not om and not total:
            out.append(
                (line, "counter-total", f'{name}: counter metrics should have "_total" suffix')
            )
    elif total and t not in (UNTYPED, UNKNOWN):
        out.append(
            (line, "total-suffix", f'{name}: non-counter metrics should not have "_total" suffix')
        )
    unit, base = _unit_of(name)
    if unit is not None and unit != base:
        out.append((line, "base-unit", f'{name}: use base unit "{base}" instead of "{unit}"'))
    if any(_has_part(lower, a) for a in _ABBREVIATIONS):
        out.append(
            (
                line,
                "unit-abbreviation",
                f"{name}: metric names should not contain abbreviated units",
            )
        )
    if ":" in name:
        out.append(
            (
                line,
                "colon-name",
                f"{name}: metric names should not contain ':' (reserved for recording rules)",
            )
        )
    if _CAMEL.search(name):
        out.append(
            (
                line,
                "camel-case",
                f"{name}: metric names should be written in 'snake_case' not 'camelCase'",
            )
        )
    for word in ("counter", "gauge", "histogram", "summary"):
        if _has_part(lower, word):
            out.append(
                (line, "type-in-name", f"{name}: metric name should not include type '{word}'")
            )
    if t in (UNTYPED, UNKNOWN):
        # As promlint: the reserved suffixes and labels say nothing against no type.
        typed = False
    else:
        typed = True
        histogram = t in (HISTOGRAM, GAUGEHISTOGRAM)
        if not histogram and name.endswith("_bucket"):
            out.append(
                (
                    line,
                    "reserved-suffix",
                    f'{name}: non-histogram metrics should not have "_bucket" suffix',
                )
            )
        if not histogram and t != SUMMARY and (name.endswith("_count") or name.endswith("_sum")):
            suffix = name.rsplit("_", 1)[1]
            out.append(
                (
                    line,
                    "reserved-suffix",
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
                        "camel-case",
                        f"{name}: label names should be written in 'snake_case' not 'camelCase'",
                    )
                )
            if typed and label == "le" and t not in (HISTOGRAM, GAUGEHISTOGRAM):
                out.append(
                    (
                        sample_line,
                        "le-label",
                        f'{name}: non-histogram metrics should not have "le" label',
                    )
                )
            if typed and label == "quantile" and t != SUMMARY:
                out.append(
                    (
                        sample_line,
                        "quantile-label",
                        f'{name}: non-summary metrics should not have "quantile" label',
                    )
                )
    return out
