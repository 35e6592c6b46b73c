"""The base of metric vectors: families whose children are reached by label values.

``with_label_values(*values)`` takes the values in the declared order of the
label names; ``with_labels(mapping)`` matches them by name. Both return the
child (a value cell with the scalar type's methods). The hit path is one
unlocked ``dict.get`` on the tuple of values; a miss validates the values and
creates the child under the family lock (re-checking there), as
rust-prometheus and client_golang do. Each metric type's Vec lives with the
type (``counter.py``, ``gauge.py``, ``histogram.py``).
"""

from collections.abc import Iterable, Sequence
from typing import ClassVar, Optional, TypeVar

from ..errors import CardinalityError, InvalidLabelsError
from .desc import Desc, LabelsArg, check_utf8, const_label_pairs
from .family import Key, MetricFamily

_C = TypeVar("_C")
_V = TypeVar("_V")


class MetricVec(MetricFamily[_C, _V]):
    """Core of every Vec type: the child map and label-value access."""

    _type: ClassVar[str]

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: LabelsArg = None,
        *,
        buckets: Optional[Iterable[float]] = None,
    ) -> None:
        # ``buckets`` only so that a Vec of another type refuses them as Desc does.
        super().__init__(Desc(name, help, self._type, const_labels, label_names, buckets=buckets))

    def with_label_values(self, *values: str) -> _C:
        """The child for ``values`` (declared label order), created on first use.

        Raises :class:`CardinalityError` for a wrong number of values and
        :class:`InvalidLabelsError` for a value that is not a string.
        """
        try:
            return self._children[values]
        except (KeyError, TypeError):  # TypeError: an unhashable value, refused below
            return self._get_or_create_child(self._check_values(values))

    def with_labels(self, labels: LabelsArg) -> _C:
        """The child for a ``{label name: value}`` mapping, matched by name.

        Raises :class:`InvalidLabelsError` if a name is missing or unknown.
        """
        return self.with_label_values(*self._values_from_mapping(labels))

    def remove_label_values(self, *values: str) -> None:
        """Drop the child for ``values``; :class:`InvalidLabelsError` if there is none."""
        if not self._remove(self._check_values(values)):
            raise InvalidLabelsError(f"no child with label values {values!r} in {self.desc.name!r}")

    def remove_labels(self, labels: LabelsArg) -> None:
        """Drop the child for a ``{label name: value}`` mapping."""
        self.remove_label_values(*self._values_from_mapping(labels))

    def clear(self) -> None:
        """Drop every child."""
        self._clear()

    def _check_values(self, values: Sequence[object]) -> Key:
        names = self.desc.label_names
        if len(values) != len(names):
            raise CardinalityError(
                f"Inconsistent label cardinality, expect {len(names)} label values, "
                f"but got {len(values)}: {values!r} for label names {list(names)!r}",
                expected=len(names),
                got=len(values),
            )
        checked = []
        for name, value in zip(names, values):
            if not isinstance(value, str):
                raise InvalidLabelsError(
                    f"label {name!r} of {self.desc.name!r} needs a string value, got {value!r}"
                )
            check_utf8(value, InvalidLabelsError, f"label {name!r} of {self.desc.name!r}")
            # A str subclass would hash like its text but print differently.
            checked.append(str.__str__(value))
        return tuple(checked)

    def _values_from_mapping(self, labels: LabelsArg) -> Key:
        names = self.desc.label_names
        pairs = dict(const_label_pairs(labels))
        missing = [n for n in names if n not in pairs]
        if missing:
            raise InvalidLabelsError(
                f"label name {missing[0]} missing in label map {pairs!r} "
                f"(expected names {list(names)!r})"
            )
        extra = sorted(set(pairs) - set(names))
        if extra:
            raise InvalidLabelsError(
                f"unknown label name {extra[0]!r} in label map {pairs!r} "
                f"(expected names {list(names)!r})"
            )
        return tuple(pairs[n] for n in names)
