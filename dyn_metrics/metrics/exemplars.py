"""Exemplars: the ``{label: value}`` an update may carry, checked once, kept as the latest.

A counter keeps the exemplar of its latest increment that carried one (its
value is the increment, api.md), a histogram the latest per bucket (on the
bucket its observation falls in). They are written only in OpenMetrics (and
protobuf): text 0.0.4 has no place for them.

:func:`make_exemplar` checks the labels as OpenMetrics requires: a mapping of
valid label names to strings whose names and values add up to at most 128
characters (code points). Anything else raises :class:`InvalidLabelsError`
and the update is not made, so nothing stored can fail a later scrape.
"""

from collections.abc import Mapping
from time import time as make_time

from ..errors import InvalidLabelsError
from ..model import LABEL_NAME_RE, Exemplar, Number
from .desc import check_utf8

#: OpenMetrics: "The combined length of the label names and values of an
#: Exemplar's LabelSet MUST NOT exceed 128 UTF-8 character code points."
MAX_EXEMPLAR_CHARS = 128


#: Label names already checked (bounded: past the limit names are checked each time).
_KNOWN_NAMES: set[str] = set()
_KNOWN_LIMIT = 1024


def exemplar_labels(labels: object) -> tuple[tuple[str, str], ...]:
    """``labels`` as ``(name, value)`` pairs, in the given order, if OpenMetrics allows them."""
    # The common case first (a dict of ASCII strings under names seen before):
    # an exemplar rides on an increment, so its check is on a hot path.
    if labels.__class__ is dict:
        pairs = tuple(labels.items())
        length = 0
        for name, value in pairs:
            if name not in _KNOWN_NAMES or value.__class__ is not str or not value.isascii():
                return _checked_labels(labels)
            length += len(name) + len(value)
        if length <= MAX_EXEMPLAR_CHARS:
            return pairs
    return _checked_labels(labels)


def _checked_labels(labels: object) -> tuple[tuple[str, str], ...]:
    """:func:`exemplar_labels` the long way: every rule, with the error it breaks."""
    if not isinstance(labels, Mapping):
        raise InvalidLabelsError(
            f"an exemplar must be a {{label name: value}} dict, got {labels!r}"
        )
    pairs = []
    length = 0
    for name, value in labels.items():
        _check_name(name)
        if not isinstance(value, str):
            raise InvalidLabelsError(f"exemplar label {name!r} needs a string value, got {value!r}")
        check_utf8(value, InvalidLabelsError, f"exemplar label {name!r}")
        length += len(name) + len(value)
        pairs.append((str.__str__(name), str.__str__(value)))
    if length > MAX_EXEMPLAR_CHARS:
        raise InvalidLabelsError(
            f"exemplar labels {dict(labels)!r} have {length} characters in their names and "
            f"values; OpenMetrics allows at most {MAX_EXEMPLAR_CHARS}"
        )
    return tuple(pairs)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or LABEL_NAME_RE.fullmatch(name) is None:
        raise InvalidLabelsError(f"invalid exemplar label name {name!r}")
    if len(_KNOWN_NAMES) < _KNOWN_LIMIT and name.__class__ is str:
        _KNOWN_NAMES.add(name)


#: What a cell stores: ``(labels, value, timestamp)`` as a plain tuple, which is
#: several times cheaper to build than an Exemplar; reads turn it into one.
RawExemplar = tuple[tuple[tuple[str, str], ...], Number, float]


def make_exemplar(labels: object, value: Number) -> RawExemplar:
    """The exemplar of ``value`` with ``labels`` (checked), stamped now (``time.time()``)."""
    return (exemplar_labels(labels), value, make_time())


def as_exemplar(raw: RawExemplar) -> Exemplar:
    """The :class:`~dyn_metrics.model.Exemplar` record of a stored exemplar."""
    return Exemplar(*raw)
