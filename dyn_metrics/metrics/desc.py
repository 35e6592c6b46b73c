"""Metric descriptors: the validated name, help and labels of one metric family.

Every metric validates its metadata here, once, at construction (rust-prometheus'
``Desc::new`` rules and messages); nothing a :class:`Desc` lets through can make
a later scrape fail. Histogram bucket bounds are checked by the histogram
itself (``histogram.py``), after the checks here, in rust-prometheus' order.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Optional, Union

from ..errors import InvalidBucketsError, InvalidLabelsError, InvalidNameError, InvalidValueError
from ..model import COUNTER, HISTOGRAM, INFO, STATESET, Labels
from ..prometheus_names import validate_label_name, validate_metric_name

#: Constant labels as given: a ``{name: value}`` mapping, ``(name, value)`` pairs, or None.
LabelsArg = Union[Mapping[str, str], Iterable[tuple[str, str]], None]


def check_utf8(text: str, error: type[Exception], what: str) -> None:
    """Raise ``error`` if ``text`` cannot be encoded as UTF-8 (a lone surrogate).

    Such a string would make every later scrape fail when the exposition is
    encoded, so it is refused where it comes in.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(
            f"{what} is not valid Unicode text (it cannot be encoded as UTF-8): {text!r}"
        ) from exc


def const_label_pairs(labels: LabelsArg) -> list[tuple[str, str]]:
    """A dict, a sequence of ``(name, value)`` pairs or None, as a list of pairs.

    Only the shape is checked here (:class:`InvalidLabelsError`); the names and
    values are checked by :class:`Desc`.
    """
    if labels is None:
        return []
    if isinstance(labels, dict):
        return list(labels.items())
    given: object = labels  # as given: callers without a type checker pass anything
    if isinstance(given, (str, bytes)):
        raise InvalidLabelsError(f"labels must be a dict or (name, value) pairs, got {labels!r}")
    pairs = []
    for item in labels:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidLabelsError(f"labels must be (name, value) pairs, got {item!r}")
        pairs.append((item[0], item[1]))
    return pairs


_UNIT_RE = re.compile(r"[a-zA-Z0-9_:]+", re.ASCII)


def check_unit(name: str, type_word: str, unit: object) -> None:
    """Raise :class:`InvalidNameError` unless ``unit`` fits a metric ``name`` of ``type_word``.

    ``""`` means no unit. Otherwise OpenMetrics' rules: the unit is made of
    metric-name characters and the family name (for a counter, the name
    without its ``_total``) ends in ``_<unit>``; info and stateset families
    have no unit. Text 0.0.4 does not show units.
    """
    if not isinstance(unit, str):
        raise InvalidNameError(f"unit must be a string, got {unit!r}")
    if not unit:
        return
    if type_word in (INFO, STATESET):
        raise InvalidNameError(f"a {type_word} metric has no unit, got {unit!r} for {name!r}")
    if _UNIT_RE.fullmatch(unit) is None:
        raise InvalidNameError(
            f"unit must be made of the characters [a-zA-Z0-9_:], got {unit!r} for {name!r}"
        )
    family = name[: -len("_total")] if type_word == COUNTER and name.endswith("_total") else name
    if not family.endswith("_" + unit):
        raise InvalidNameError(
            f"metric name {name!r} must end in '_{unit}' (its unit {unit!r})"
            + (", before '_total'" if type_word == COUNTER else "")
        )


class Desc:
    """Validated metadata of one metric family (rust-prometheus' ``Desc``).

    ``const_labels`` is a tuple of ``(name, value)`` pairs sorted by name;
    ``label_names`` keeps the declared order (the order of label values in
    ``with_label_values``). Raises :class:`InvalidNameError`,
    :class:`InvalidLabelsError` or :class:`InvalidValueError` (empty help),
    with rust-prometheus' message first; :class:`InvalidNameError` for a
    ``unit`` that the name does not end in (:func:`check_unit`). A plain Desc refuses ``buckets``
    (:class:`InvalidBucketsError`); a histogram's is a
    ``histogram.HistogramDesc``, which checks and keeps them.
    """

    __slots__ = ("name", "help", "type", "const_labels", "label_names", "buckets", "unit")

    name: str
    help: str
    type: str
    const_labels: Labels
    label_names: tuple[str, ...]
    buckets: Optional[tuple[float, ...]]
    unit: str

    def __init__(
        self,
        name: str,
        help: str,
        type_word: str,
        const_labels: LabelsArg = None,
        label_names: Iterable[str] = (),
        buckets: Optional[Iterable[float]] = None,
        unit: str = "",
    ) -> None:
        validate_metric_name(name)
        check_unit(name, type_word, unit)
        if not isinstance(help, str):
            raise InvalidValueError(f"help must be a string, got {help!r}")
        if not help:
            raise InvalidValueError(f"empty help string (metric {name!r})")
        if "\r" in help:
            # The text format has no escape for it, and a parser takes it
            # for the end of a CRLF line.
            raise InvalidValueError(
                f"help of {name!r} must not contain a carriage return: {help!r}"
            )
        check_utf8(help, InvalidValueError, f"help of {name!r}")
        pairs = const_label_pairs(const_labels)
        # Values as given, checked below (untyped callers may pass anything).
        given_pairs: Sequence[tuple[str, object]] = pairs
        seen = set()
        for key, value in given_pairs:
            validate_label_name(key)
            if key in seen:
                raise InvalidLabelsError(f"duplicate const label name {key} (metric {name!r})")
            if not isinstance(value, str):
                raise InvalidLabelsError(
                    f"const label {key!r} must have a string value, got {value!r}"
                )
            check_utf8(value, InvalidLabelsError, f"const label {key!r}")
            seen.add(key)
        if isinstance(label_names, str):
            raise InvalidLabelsError(
                f"label names must be a sequence of strings, got the string {label_names!r}"
            )
        names = tuple(label_names)
        variable = set()
        for key in names:
            validate_label_name(key)
            if key in variable:
                raise InvalidLabelsError(f"duplicate variable label name {key} (metric {name!r})")
            if key in seen:
                raise InvalidLabelsError(
                    f"label name {key!r} is both a constant and a variable label of {name!r}"
                )
            variable.add(key)
        if type_word == HISTOGRAM and ("le" in seen or "le" in variable):
            raise InvalidLabelsError(
                f"`le` is not allowed as label name in histograms (metric {name!r})"
            )
        self.name = name
        self.help = help
        self.type = type_word
        self.const_labels = tuple(sorted(pairs))
        self.label_names = names
        self.buckets = self._check_buckets(buckets)
        self.unit = unit

    def _check_buckets(self, buckets: Optional[Iterable[float]]) -> Optional[tuple[float, ...]]:
        """The bucket bounds to keep, checked last: none here.

        ``histogram.HistogramDesc`` overrides this to check and keep a
        histogram's bounds.
        """
        if buckets is not None:
            raise InvalidBucketsError(f"buckets are only valid for histograms, not a {self.type}")
        return None

    def dimensions(self) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
        """What must agree between same-named collectors of one registry."""
        return (
            self.help,
            self.type,
            tuple(sorted(k for k, _ in self.const_labels)),
            tuple(sorted(self.label_names)),
        )

    def identity(self) -> tuple[str, Labels]:
        """Name plus constant label values: what makes a collector a duplicate."""
        return (self.name, self.const_labels)

    def __repr__(self) -> str:
        return (
            f"Desc(name={self.name!r}, help={self.help!r}, type={self.type!r}, "
            f"const_labels={dict(self.const_labels)!r}, label_names={list(self.label_names)!r})"
        )
