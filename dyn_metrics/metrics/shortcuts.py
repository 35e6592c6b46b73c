"""Dynamo's Python binding spellings on counter and gauge vecs: updates by a labels dict.

Code written against Dynamo's older Python binding updates a vec with a
``{label name: value}`` dict in each call:

* ``CounterVec`` / ``IntCounterVec``: ``inc(labels)``, ``inc_by(labels, value)``,
  ``get(labels)``;
* ``GaugeVec`` / ``IntGaugeVec``: ``set(value, labels)`` (the value first, as
  there), ``get(labels)``, ``inc(labels)``, ``dec(labels)``, ``add(labels, value)``,
  ``sub(labels, value)``.

Each is ``with_labels(labels)`` followed by the child's method, with one
difference from Dynamo: values are matched to label names **by name**. The
binding passes ``labels.values()`` positionally, in the iteration order of a
Rust hash map, so a value can land on another label (and a dict of the wrong
size trips the cardinality check); here a dict in any order reaches the same
child, and a missing or unknown name raises :class:`InvalidLabelsError`, as
``with_labels`` does. So does anything that is not a mapping, naming it.

A call that fails changes nothing: on a child's first use the labels and
then the value are checked before the child is made, so a refused amount
leaves no empty series behind. ``get(labels)`` makes the child, as Dynamo's
``with_label_values(...).get()`` does, so the series is scraped (at 0) from
then on.

The bases here are :class:`~.vec.MetricVec` subclasses that only add methods:
``with_label_values``, ``labels``, ``with_labels`` and the children are untouched.
For an exact ``dict`` of the right size the hit path is one ``dict.get`` on the
tuple of values taken by name; anything else goes through ``with_labels``' checks.
The children expose the metric API only: these shortcuts are the vec's.
"""

from collections.abc import Callable, Mapping
from typing import Any, Optional, Protocol, TypeVar, cast

from ..errors import InvalidLabelsError
from ..model import Number
from .family import Key
from .vec import MetricVec

#: The labels argument of the shortcuts: ``{label name: value}``.
LabelDict = Mapping[str, str]


class _CounterChild(Protocol):
    def inc(self) -> None: ...

    def inc_by(self, amount: Number, /) -> None: ...

    def get(self) -> Number: ...


class _GaugeChild(Protocol):
    def set(self, value: Number, /) -> None: ...

    def inc(self) -> None: ...

    def dec(self) -> None: ...

    def add(self, amount: Number, /) -> None: ...

    def sub(self, amount: Number, /) -> None: ...

    def get(self) -> Number: ...


_C = TypeVar("_C")
_CC = TypeVar("_CC", bound=_CounterChild)
_GC = TypeVar("_GC", bound=_GaugeChild)


class _DictVec(MetricVec[_C, Number]):
    """Children reached by a ``{label name: value}`` dict, matched by name."""

    def _lookup(self, labels: LabelDict) -> Optional[_C]:
        """The existing child for an exact dict holding every label name, else None."""
        names = self.desc.label_names
        # A dict of the right size holding every name has no other name; only
        # exact dicts (a subclass may create keys on lookup, as defaultdict does).
        if labels.__class__ is dict and len(labels) == len(names):
            try:
                return self._children.get(tuple(map(labels.__getitem__, names)))
            except (KeyError, TypeError):  # a name missing, or unhashable: checked by _key
                pass
        return None

    def _child(self, labels: LabelDict) -> _C:
        """The child for ``labels``, created on first use."""
        child = self._lookup(labels)
        return self._get_or_create_child(self._key(labels)) if child is None else child

    def _checked_child(
        self, labels: LabelDict, value: object, check: Callable[[Any], object]
    ) -> _C:
        """The child for ``labels``; on its first use ``check(value)`` runs before it exists."""
        child = self._lookup(labels)
        if child is None:
            key = self._key(labels)  # the labels first, as with_labels(...).method(value)
            child = self._children.get(key)
            if child is None:
                check(value)  # raises for a value the child would refuse: no child is made
                child = self._get_or_create_child(key)
        return child

    def _key(self, labels: object) -> Key:
        """The checked label values of a labels mapping, in declared order."""
        if not isinstance(labels, Mapping):
            raise InvalidLabelsError(
                f"labels must be a dict of label name to value, got {labels!r} "
                f"for {self.desc.name!r} (label names {list(self.desc.label_names)!r})"
            )
        return self._check_values(self._values_from_mapping(dict(labels)))


class _CounterCells(Protocol):
    @staticmethod
    def _increment(amount: Any) -> Number: ...


class _GaugeCells(Protocol):
    @staticmethod
    def _number(value: Any) -> Number: ...


class CounterVecShortcuts(_DictVec[_CC]):
    """The base of ``CounterVec`` and ``IntCounterVec``: Dynamo's dict-taking updates."""

    def _check_amount(self, amount: object) -> object:
        # The cells' own check (finite and >= 0; an int >= 0 for int counters).
        return cast(_CounterCells, self._cell_class)._increment(amount)

    def inc(self, labels: LabelDict) -> None:
        """Add 1 to the child for ``labels`` (``{label name: value}``)."""
        self._child(labels).inc()

    def inc_by(self, labels: LabelDict, value: Number) -> None:
        """Add ``value`` (finite, >= 0; an int for int counters) to the child for ``labels``."""
        self._checked_child(labels, value, self._check_amount).inc_by(value)

    def get(self, labels: LabelDict) -> Number:
        """The value of the child for ``labels`` (made at 0 if new, as Dynamo does)."""
        return self._child(labels).get()


class GaugeVecShortcuts(_DictVec[_GC]):
    """The base of ``GaugeVec`` and ``IntGaugeVec``: Dynamo's dict-taking updates."""

    def _check_number(self, value: object) -> object:
        # The cells' own check (a real number; an integer for int gauges).
        return cast(_GaugeCells, self._cell_class)._number(value)

    def set(self, value: Number, labels: LabelDict) -> None:
        """Set the child for ``labels`` to ``value`` (the value first, as Dynamo's binding)."""
        self._checked_child(labels, value, self._check_number).set(value)

    def get(self, labels: LabelDict) -> Number:
        """The value of the child for ``labels`` (made at 0 if new, as Dynamo does)."""
        return self._child(labels).get()

    def inc(self, labels: LabelDict) -> None:
        """Add 1 to the child for ``labels``."""
        self._child(labels).inc()

    def dec(self, labels: LabelDict) -> None:
        """Subtract 1 from the child for ``labels``."""
        self._child(labels).dec()

    def add(self, labels: LabelDict, value: Number) -> None:
        """Add ``value`` to the child for ``labels``."""
        self._checked_child(labels, value, self._check_number).add(value)

    def sub(self, labels: LabelDict, value: Number) -> None:
        """Subtract ``value`` from the child for ``labels``."""
        self._checked_child(labels, value, self._check_number).sub(value)
