"""Metric vectors: families whose children are reached by label values.

``with_label_values(*values)`` takes the values in the declared order of the
label names; ``with_labels(mapping)`` matches them by name. Both return the
child (a value cell with the scalar type's methods). The hit path is one
unlocked ``dict.get`` on the tuple of values; a miss validates the values and
creates the child under the family lock (re-checking there), as
rust-prometheus and client_golang do.
"""

from ..errors import CardinalityError, InvalidLabelsError
from ..model import COUNTER, GAUGE, HISTOGRAM
from .family import Desc, HistogramFamily, MetricFamily, check_utf8, const_label_pairs
from .values import GaugeCell, IntGaugeCell, counter_cell_class


class MetricVec(MetricFamily):
    """Core of every Vec type: the child map and label-value access."""

    _type = None

    def __init__(self, name, help, label_names, const_labels=None, **kwargs):
        super().__init__(Desc(name, help, self._type, const_labels, label_names, **kwargs))

    def with_label_values(self, *values):
        """The child for ``values`` (declared label order), created on first use.

        Raises :class:`CardinalityError` for a wrong number of values and
        :class:`InvalidLabelsError` for a value that is not a string.
        """
        try:
            return self._children[values]
        except (KeyError, TypeError):  # TypeError: an unhashable value, refused below
            return self._get_or_create_child(self._check_values(values))

    def with_labels(self, labels):
        """The child for a ``{label name: value}`` mapping, matched by name.

        Raises :class:`InvalidLabelsError` if a name is missing or unknown.
        """
        return self.with_label_values(*self._values_from_mapping(labels))

    def remove_label_values(self, *values):
        """Drop the child for ``values``; :class:`InvalidLabelsError` if there is none."""
        if not self._remove(self._check_values(values)):
            raise InvalidLabelsError(f"no child with label values {values!r} in {self.desc.name!r}")

    def remove_labels(self, labels):
        """Drop the child for a ``{label name: value}`` mapping."""
        self.remove_label_values(*self._values_from_mapping(labels))

    def clear(self):
        """Drop every child."""
        self._clear()

    def _check_values(self, values):
        names = self.desc.label_names
        if len(values) != len(names):
            raise CardinalityError(
                f"Inconsistent label cardinality, expect {len(names)} label values, "
                f"but got {len(values)}: {values!r} for label names {list(names)!r}",
                expected=len(names),
                got=len(values),
            )
        for name, value in zip(names, values):
            if not isinstance(value, str):
                raise InvalidLabelsError(
                    f"label {name!r} of {self.desc.name!r} needs a string value, got {value!r}"
                )
            check_utf8(value, InvalidLabelsError, f"label {name!r} of {self.desc.name!r}")
        # A str subclass would hash like its text but print differently.
        return tuple(str.__str__(v) for v in values)

    def _values_from_mapping(self, labels):
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


class CounterVec(MetricVec):
    """Float counters by label values (rust-prometheus ``CounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False)


class IntCounterVec(MetricVec):
    """Integer counters by label values (``IntCounterVec``)."""

    _type = COUNTER
    _cell_class = counter_cell_class(integer=True)


class GaugeVec(MetricVec):
    """Float gauges by label values (``GaugeVec``)."""

    _type = GAUGE
    _cell_class = GaugeCell


class IntGaugeVec(MetricVec):
    """Integer gauges by label values (``IntGaugeVec``)."""

    _type = GAUGE
    _cell_class = IntGaugeCell


class HistogramVec(HistogramFamily, MetricVec):
    """Histograms by label values (``HistogramVec``); ``buckets`` as for Histogram."""

    _type = HISTOGRAM

    def __init__(self, name, help, label_names, const_labels=None, buckets=None):
        HistogramFamily.__init__(
            self, Desc(name, help, HISTOGRAM, const_labels, label_names, buckets=buckets)
        )
