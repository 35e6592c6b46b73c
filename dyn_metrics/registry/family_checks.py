"""The rules a custom collector's :class:`~dyn_metrics.model.Family` records are held to.

:func:`shape_problem` checks a family once per *structure* (its names, type,
help, unit and every sample's name and labels): record shapes and field
types, label names and values, units, exemplars, and OpenMetrics' own rules;
``custom.py`` then has the strict parser read its text rendering, and keeps
the structure as known-good. While a collector returns families of a known
structure with new values, :func:`value_problem` checks only what values can
break (numbers, timestamps, exemplars, info/stateset values, histogram
buckets), so a steady engine of thousands of samples costs one pass, not a
parse.
"""

import math
from typing import Optional

from ..errors import InvalidNameError
from ..metrics import bucket_index, check_unit, overflow_index
from ..model import (
    COUNTER,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    LABEL_NAME_RE,
    OPENMETRICS_TYPES,
    STATESET,
    SUMMARY,
    TEXT_TYPES,
    Exemplar,
    Family,
    Labels,
    NativeHistogram,
    Sample,
)

_TYPES = OPENMETRICS_TYPES | TEXT_TYPES
_CREATED = "_created"
#: Exemplar labels: at most this many characters in names and values (OpenMetrics).
_MAX_EXEMPLAR_CHARS = 128

#: A family's structure: what :func:`shape_problem` and the parser judged.
Structure = tuple[str, str, str, str, tuple[tuple[str, Labels], ...]]


def structure_of(family: Family) -> Optional[Structure]:
    """The structure of a well-typed family (None when its samples are not hashable records)."""
    try:
        key = (
            family.name,
            family.type,
            family.help,
            family.unit,
            tuple((s.name, s.labels) for s in family.samples),
        )
        hash(key)
    except (TypeError, AttributeError):
        return None
    return key


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, complex)


def _labels_problem(labels: object, what: str) -> Optional[str]:
    if not isinstance(labels, tuple):
        return f"{what} labels must be a tuple of (name, value) pairs, got {labels!r}"
    for pair in labels:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            return f"{what} label {pair!r} is not a (name, value) pair"
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            return f"{what} label {pair!r} must be a pair of strings"
        if LABEL_NAME_RE.fullmatch(name) is None:
            return f"{what} label name {name!r} is not valid"
        if name.startswith("__"):
            return f"{what} label name {name!r} is reserved (names starting with '__')"
        if not _encodable(value):
            return f"{what} label {name!r} has a value that is not valid Unicode: {value!r}"
    return None


def _encodable(text: str) -> bool:
    """False for text with a lone surrogate: it would fail the whole scrape when encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _exemplar_problem(exemplar: object) -> Optional[str]:
    if not isinstance(exemplar, Exemplar):
        return f"an exemplar must be a dyn_metrics.Exemplar, got {exemplar!r}"
    problem = _labels_problem(exemplar.labels, "exemplar")
    if problem:
        return problem
    if sum(len(k) + len(v) for k, v in exemplar.labels) > _MAX_EXEMPLAR_CHARS:
        return f"exemplar labels {exemplar.labels!r} exceed {_MAX_EXEMPLAR_CHARS} characters"
    ts = exemplar.timestamp
    if not _is_number(exemplar.value) or not (ts is None or (_is_number(ts) and math.isfinite(ts))):
        return f"exemplar {exemplar!r} needs a number value and a finite timestamp"
    return None


def _openmetrics_problem(family: Family) -> Optional[str]:
    """What OpenMetrics refuses in a family whose text 0.0.4 form is fine.

    Exemplars only on counter values and histogram buckets; info values are
    1; stateset values 0 or 1, each sample carrying the state label.
    """
    t = family.type
    bucket = family.name + "_bucket"
    for s in family.samples:
        if s.exemplar is not None:
            on_counter = t == COUNTER and not created_sample(family, s)
            on_bucket = t in (HISTOGRAM, GAUGEHISTOGRAM) and s.name == bucket
            if not (on_counter or on_bucket):
                return f"sample {s.name!r} of a {t} cannot carry an exemplar"
        if t == INFO and s.value != 1:
            return f"info sample {s.name!r} must have the value 1, got {s.value!r}"
        if t == STATESET:
            if s.value not in (0, 1):
                return f"stateset sample {s.name!r} must be 0 or 1, got {s.value!r}"
            if family.name not in dict(s.labels):
                return f"stateset sample {s.name!r} lacks its state label {family.name!r}"
    return None


def shape_problem(family: object) -> Optional[str]:
    """Why ``family`` is not a well-formed :class:`Family` of :class:`Sample`; None if it is.

    Only the record shapes and field types are checked here: the exposition
    rules (names per type, histogram buckets, duplicates) are the parser's.
    """
    if not isinstance(family, Family):
        return f"collect() must return dyn_metrics.Family records, got {family!r}"
    for field in ("name", "type", "help", "unit"):
        if not isinstance(getattr(family, field), str):
            return f"family {field} must be a string, got {getattr(family, field)!r}"
    if family.type not in _TYPES:
        return f"unknown family type {family.type!r}"
    if family.unit:
        try:
            check_unit(family.name, family.type, family.unit)
        except InvalidNameError as exc:
            return str(exc)
    if not _encodable(family.help):
        return f"help of {family.name!r} is not valid Unicode: {family.help!r}"
    if "\r" in family.help:
        # The text format has no escape for it, and parsers take it for a line end.
        return f"help of {family.name!r} contains a carriage return: {family.help!r}"
    samples: object = family.samples  # as given: any object
    if not isinstance(samples, (tuple, list)):
        return f"family samples must be a tuple of Sample, got {samples!r}"
    for sample in samples:
        if not isinstance(sample, Sample) or not isinstance(sample.name, str):
            return f"a family's samples must be dyn_metrics.Sample records, got {sample!r}"
        problem = _labels_problem(sample.labels, "sample") or _sample_value_problem(sample)
        if problem:
            return problem
    return _native_problem(family) or _openmetrics_problem(family)


def _sample_value_problem(sample: Sample) -> Optional[str]:
    """What a sample's value, timestamp or exemplar breaks; None if nothing."""
    value = sample.value
    if value.__class__ is not float and value.__class__ is not int and not _is_number(value):
        return f"sample {sample.name!r} needs an int or float value, got {value!r}"
    ts = sample.timestamp
    if ts is not None and not (_is_number(ts) and math.isfinite(ts)):
        return f"sample {sample.name!r} has a timestamp that is not a number: {ts!r}"
    if sample.exemplar is not None:
        return _exemplar_problem(sample.exemplar)
    return None


def created_sample(family: Family, sample: Sample) -> bool:
    return (
        family.type in (COUNTER, HISTOGRAM, SUMMARY)
        and sample.name.endswith(_CREATED)
        and sample.name != family.name
    )


def text_family(family: Family) -> Family:
    """``family`` without what text 0.0.4 cannot write (``_created`` samples)."""
    if any(created_sample(family, s) for s in family.samples):
        return family._replace(
            samples=tuple(s for s in family.samples if not created_sample(family, s))
        )
    return family


def value_problem(family: Family) -> Optional[str]:
    """What the values of a family of known-good structure break; None if nothing.

    The checks of :func:`shape_problem` and of the parser that depend on
    values: numbers, finite timestamps, exemplars, info and stateset values,
    and for histograms cumulative, non-negative, integral buckets with
    ``_count`` equal to the ``+Inf`` bucket.
    """
    for sample in family.samples:
        problem = _sample_value_problem(sample)
        if problem:
            return problem
    if family.type in (HISTOGRAM, GAUGEHISTOGRAM):
        problem = _bucket_problem(family) or _native_problem(family)
        if problem:
            return problem
    return _openmetrics_problem(family)


def _int(value: object) -> bool:
    return value.__class__ is int


def _as_float(value: float) -> float:
    """``value`` as a float; NaN when it does not fit one (an int past the double range)."""
    try:
        return float(value)
    except OverflowError:
        return math.nan


def _native_problem(family: Family) -> Optional[str]:
    """What the native buckets of a family break (the protobuf scrape); None if nothing.

    Native buckets ride on a histogram's ``_count`` samples, on all of them
    or none (Prometheus 2.42 judges a whole family by its first metric):
    a schema in -4..8, a finite zero threshold >= 0, int counts > 0 at
    ascending int indices, and no more observations in the buckets than the
    count.
    """
    count_name = family.name + "_count"
    natives = [s for s in family.samples if s.native is not None]
    if not natives:
        return None
    if family.type != HISTOGRAM:
        return f"native buckets on a {family.type} family {family.name!r}"
    counts = [s for s in family.samples if s.name == count_name]
    if len(natives) != len(counts) or any(s.name != count_name for s in natives):
        return f"native buckets of {family.name!r} must ride on every _count sample"
    for s in natives:
        nh = s.native
        if not isinstance(nh, NativeHistogram):
            return f"native buckets of {family.name!r} must be a NativeHistogram, got {nh!r}"
        if not (_int(nh.schema) and -4 <= nh.schema <= 8):
            return f"native schema of {family.name!r} must be an int from -4 to 8: {nh.schema!r}"
        zt = nh.zero_threshold
        if not (_is_number(zt) and 0 <= _as_float(zt) < math.inf) or not (
            _int(nh.zero_count) and nh.zero_count >= 0
        ):
            return f"native zero bucket of {family.name!r} is not valid: {zt!r}, {nh.zero_count!r}"
        total = nh.zero_count
        # The indices a float can reach at this schema (they fit the wire's sint32).
        lowest, highest = bucket_index(5e-324, nh.schema), overflow_index(nh.schema)
        for side in (nh.positive, nh.negative):
            previous = None
            try:
                for index, c in side:
                    if not (_int(index) and _int(c) and c > 0 and lowest <= index <= highest) or (
                        previous is not None and index <= previous
                    ):
                        return f"native buckets of {family.name!r} are not valid: {side!r}"
                    previous = index
                    total += c
            except (TypeError, ValueError):
                return f"native buckets of {family.name!r} are not (index, count) pairs: {side!r}"
        if total > s.value:
            return f"native buckets of {family.name!r} hold {total} observations, count {s.value!r}"
    return None


def _bucket_problem(family: Family) -> Optional[str]:
    """Buckets in their (already checked) order: cumulative, >= 0, whole, +Inf == count."""
    bucket, count = (
        family.name + "_bucket",
        family.name + ("_count", "_gcount")[family.type == GAUGEHISTOGRAM],
    )
    last: dict[Labels, float] = {}
    counts: dict[Labels, float] = {}
    for s in family.samples:
        key = tuple(p for p in s.labels if p[0] != "le")
        if s.name == bucket:
            v = s.value
            if not (v >= 0 and float(v).is_integer()) or v < last.get(key, 0):
                return f"bucket {s.name}{s.labels!r} of {family.name!r} is {v!r}: not cumulative"
            last[key] = v
        elif s.name == count:
            counts[key] = s.value
    for key, c in counts.items():
        if key in last and c != last[key]:
            return f"{count} {c!r} differs from the +Inf bucket {last[key]!r} in {family.name!r}"
    return None
