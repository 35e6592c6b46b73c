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

import time
from collections.abc import Mapping

from ..errors import InvalidLabelsError
from ..model import LABEL_NAME_RE, Exemplar, Number
from .desc import check_utf8

#: OpenMetrics: "The combined length of the label names and values of an
#: Exemplar's LabelSet MUST NOT exceed 128 UTF-8 character code points."
MAX_EXEMPLAR_CHARS = 128


def exemplar_labels(labels: object) -> tuple[tuple[str, str], ...]:
    """``labels`` as ``(name, value)`` pairs, in the given order, if OpenMetrics allows them."""
    if not isinstance(labels, Mapping):
        raise InvalidLabelsError(
            f"an exemplar must be a {{label name: value}} dict, got {labels!r}"
        )
    pairs = []
    length = 0
    for name, value in labels.items():
        if not isinstance(name, str) or LABEL_NAME_RE.fullmatch(name) is None:
            raise InvalidLabelsError(f"invalid exemplar label name {name!r}")
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


def make_exemplar(labels: object, value: Number) -> Exemplar:
    """An :class:`~dyn_metrics.model.Exemplar` of ``value``, stamped now (``time.time()``)."""
    return Exemplar(exemplar_labels(labels), value, time.time())
