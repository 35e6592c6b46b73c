"""The base of metric vectors: families whose children are reached by label values.

``with_label_values(*values)`` takes the values in the declared order of the
label names; ``with_labels(mapping)`` matches them by name; ``labels(*values,
**by_name)`` is prometheus_client's spelling of either. Each returns the
child (a value cell exposing the metric API only). The hit path is one
unlocked ``dict.get`` on the tuple of values; a miss validates the values and
creates the child with one atomic ``dict.setdefault`` (see ``family.py``), so
two threads, or a signal handler and the code it interrupted, get the same
child. Each metric type's Vec lives with the
type (``counter.py``, ``gauge.py``, ``histogram.py``).

Cardinality limit: ``max_children=None`` (unlimited, Dynamo's behaviour), or
N: the first N distinct label sets get their own children, and every later
one shares one *overflow* child whose label values are all
:data:`OVERFLOW_VALUE`. The first overflow logs one WARNING per vec; nothing
raises on the update path. :func:`overflow_children_total` counts the
overflow children created in the process (for the self metrics).
"""

import itertools
from collections.abc import Iterable, Sequence
from typing import ClassVar, Optional, TypeVar

from ..errors import CardinalityError, InvalidLabelsError, InvalidValueError, LazyLogger
from .cells import count_of, drop, take
from .desc import Desc, LabelsArg, check_utf8, const_label_pairs
from .family import Key, MetricFamily

_log = LazyLogger(__name__)

#: Every label value of the shared child that label sets beyond ``max_children`` get.
OVERFLOW_VALUE = "__overflow__"

# Ticked once per overflow child created; read by its repr (which changes nothing).
_overflows = itertools.count()


def overflow_children_total() -> int:
    """How many overflow children the vecs of this process have created so far.

    One per vec that reached its ``max_children`` (again after each ``clear()``
    or removal of the overflow child). Read by the ``dyn_metrics_overflow_children_total``
    self metric.
    """
    return count_of(_overflows)


def check_max_children(max_children: object) -> Optional[int]:
    """``max_children`` if it is None or an int >= 0; :class:`InvalidValueError` otherwise."""
    if max_children is None:
        return None
    if not isinstance(max_children, int) or max_children.__class__ is bool or max_children < 0:
        raise InvalidValueError(
            f"max_children must be None or an integer >= 0, got {max_children!r}"
        )
    return int(max_children)


_C = TypeVar("_C")
_V = TypeVar("_V")


class MetricVec(MetricFamily[_C, _V]):
    """Core of every Vec type: the child map and label-value access."""

    _type: ClassVar[str]
    #: The cardinality limit (None: unlimited) and the overflow child's key.
    _max_children: Optional[int] = None
    _overflow_key: Key = ()
    _overflow_warned = False

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: LabelsArg = None,
        *,
        buckets: Optional[Iterable[float]] = None,
        max_children: Optional[int] = None,
        unit: str = "",
    ) -> None:
        limit = check_max_children(max_children)
        # ``buckets`` only so that a Vec of another type refuses them as Desc does.
        super().__init__(
            Desc(name, help, self._type, const_labels, label_names, buckets=buckets, unit=unit)
        )
        self._set_limit(limit)

    def _set_limit(self, limit: Optional[int]) -> None:
        if limit is not None:
            self._max_children = limit
            self._overflow_key = (OVERFLOW_VALUE,) * len(self.desc.label_names)

    @property
    def max_children(self) -> Optional[int]:
        """The cardinality limit given at creation (None: unlimited)."""
        return self._max_children

    def _get_or_create_child(self, key: Key) -> _C:
        """The child for a validated key; beyond ``max_children``, the overflow child."""
        limit = self._max_children
        if limit is None:
            return super()._get_or_create_child(key)
        children = self._children
        child = children.get(key)
        if child is not None:
            return child
        # Counted under the family lock, so threads cannot overshoot the limit
        # together (a call nested in this very section only tries it).
        lock = self._lock
        locked = take(lock)
        try:
            overflow = self._overflow_key
            own = len(children) - (overflow in children)
            if key != overflow and own >= limit and key not in children:
                return self._overflow_child(overflow)
            return super()._get_or_create_child(key)
        finally:
            if locked:
                drop(lock)

    def _overflow_child(self, overflow: Key) -> _C:
        child = self._children.get(overflow)
        if child is None:
            child = super()._get_or_create_child(overflow)
            next(_overflows)
            if not self._overflow_warned:
                self._overflow_warned = True
                _log.warning(
                    "metric %r reached max_children=%d: further label sets share the child "
                    "with every label value %r",
                    self.desc.name,
                    self._max_children,
                    OVERFLOW_VALUE,
                )
        return child

    def with_label_values(self, *values: str) -> _C:
        """The child for ``values`` (declared label order), created on first use.

        Raises :class:`CardinalityError` for a wrong number of values and
        :class:`InvalidLabelsError` for a value that is not a string.
        """
        try:
            # get, not []: a miss raising KeyError would cost more than the lookup.
            child = self._children.get(values)
        except TypeError:  # an unhashable value, refused below
            child = None
        if child is not None:
            return child
        key = self._check_values(values)
        if self._max_children is None:  # unlimited: no limit check to go through
            return MetricFamily._get_or_create_child(self, key)
        return self._get_or_create_child(key)

    def labels(self, *values: object, **by_name: object) -> _C:
        """The child for label values given in order or by name, as prometheus_client's ``labels``.

        As there, each value is turned into text with ``str()`` (``code=200``
        is ``"200"``). Raises :class:`InvalidLabelsError` when both forms are
        mixed or a name is missing or unknown, :class:`CardinalityError` for
        a wrong number of values.
        """
        if by_name:
            if values:
                raise InvalidLabelsError(
                    f"labels() takes label values in order or by name, not both: "
                    f"{values!r} and {by_name!r} for {self.desc.name!r}"
                )
            values = self._values_from_mapping({k: str(v) for k, v in by_name.items()})
        try:
            return self._children[values]  # type: ignore[index]  # any values: str keys only hit
        except (KeyError, TypeError):
            return self.with_label_values(*map(str, values))

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
        """``values`` as a key: exact ``str`` texts, as many as label names; else an error."""
        if values.__class__ is tuple and len(values) == len(self.desc.label_names):
            for value in values:
                # ASCII text always encodes: the common case skips the UTF-8 check.
                if value.__class__ is not str or not value.isascii():
                    break
            else:
                return values
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
