"""Metric descriptors and the family core shared by every metric type.

A :class:`MetricFamily` is one collector: a validated :class:`Desc` plus a
map from label-value tuples to value cells (the *children*). The plain metrics
(:class:`Counter`, :class:`Gauge`, :class:`Histogram` and the Int variants)
are families with no label names and one child, whose methods they expose
directly, so ``counter.inc()`` costs exactly one call into the cell. The Vec
types (``vec.py``) add access by label values.

Everything is validated here, at construction; the cells do no validation
beyond a counter's sign check. A family renders itself in two ways that give
the same bytes: :meth:`MetricFamily.collect` builds the plain model
(``model.Family``) and :meth:`MetricFamily.write_text` writes text 0.0.4
directly, caching each child's line prefix so a scrape formats values only.
"""

import math
import operator
import threading
import time

from ..errors import InvalidBucketsError, InvalidLabelsError, InvalidValueError
from ..exposition import text as expfmt
from ..model import COUNTER, GAUGE, HISTOGRAM, Family, Sample
from ..prometheus_names import validate_label_name, validate_metric_name
from .values import GaugeCell, HistogramCell, IntGaugeCell, counter_cell_class

# Types whose OpenMetrics form may carry a `_created` sample.
_HAS_CREATED = (COUNTER, HISTOGRAM)

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def linear_buckets(start, width, count):
    """``count`` buckets: ``start``, ``start + width``, ... (rust-prometheus' rule)."""
    if count < 1:
        raise InvalidBucketsError(f"linear_buckets needs a positive count, got {count!r}")
    if width <= 0:
        raise InvalidBucketsError(f"linear_buckets needs a positive width, got {width!r}")
    return [start + i * width for i in range(count)]


def exponential_buckets(start, factor, count):
    """``count`` buckets: ``start``, ``start * factor``, ... (rust-prometheus' rule)."""
    if count < 1:
        raise InvalidBucketsError(f"exponential_buckets needs a positive count, got {count!r}")
    if start <= 0:
        raise InvalidBucketsError(f"exponential_buckets needs a positive start, got {start!r}")
    if factor <= 1:
        raise InvalidBucketsError(
            f"exponential_buckets needs a factor greater than 1, got {factor!r}"
        )
    return [start * factor**i for i in range(count)]


def _check_buckets(buckets):
    """Validated bucket bounds as a tuple of floats (rust-prometheus' rules).

    ``None`` or empty means :data:`DEFAULT_BUCKETS`; a trailing ``+Inf`` is
    dropped because the ``+Inf`` bucket is always there.
    """
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, (str, bytes)):
        raise InvalidBucketsError(f"buckets must be a sequence of numbers, got {buckets!r}")
    try:
        bounds = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise InvalidBucketsError(f"buckets must be numbers, got {buckets!r}") from None
    if bounds and bounds[-1] == math.inf:
        bounds.pop()
    if not bounds:
        return DEFAULT_BUCKETS
    for b in bounds:
        if math.isnan(b):
            raise InvalidBucketsError(f"bucket bounds must not be NaN, got {buckets!r}")
    for lower, upper in zip(bounds, bounds[1:]):
        if lower >= upper:
            raise InvalidBucketsError(
                "histogram buckets must be in increasing order: "
                f"{expfmt.format_value(lower)} >= {expfmt.format_value(upper)}"
            )
    return tuple(bounds)


def check_utf8(text, error, what):
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


def const_label_pairs(labels):
    """A dict, a sequence of ``(name, value)`` pairs or None, as a list of pairs."""
    if labels is None:
        return []
    if isinstance(labels, dict):
        return list(labels.items())
    if isinstance(labels, (str, bytes)):
        raise InvalidLabelsError(f"labels must be a dict or (name, value) pairs, got {labels!r}")
    pairs = []
    for item in labels:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidLabelsError(f"labels must be (name, value) pairs, got {item!r}")
        pairs.append((item[0], item[1]))
    return pairs


class Desc:
    """Validated metadata of one metric family (rust-prometheus' ``Desc``).

    ``const_labels`` is a tuple of ``(name, value)`` pairs sorted by name;
    ``label_names`` keeps the declared order (the order of label values in
    ``with_label_values``). Raises :class:`InvalidNameError`,
    :class:`InvalidLabelsError`, :class:`InvalidValueError` (empty help) or
    :class:`InvalidBucketsError`, with rust-prometheus' message first.
    """

    __slots__ = ("name", "help", "type", "const_labels", "label_names", "buckets")

    def __init__(self, name, help, type_word, const_labels=None, label_names=(), buckets=None):
        validate_metric_name(name)
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
        seen = set()
        for key, value in pairs:
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
        label_names = tuple(label_names)
        variable = set()
        for key in label_names:
            validate_label_name(key)
            if key in variable:
                raise InvalidLabelsError(f"duplicate variable label name {key} (metric {name!r})")
            if key in seen:
                raise InvalidLabelsError(
                    f"label name {key!r} is both a constant and a variable label of {name!r}"
                )
            variable.add(key)
        if type_word == HISTOGRAM:
            if "le" in seen or "le" in variable:
                raise InvalidLabelsError(
                    f"`le` is not allowed as label name in histograms (metric {name!r})"
                )
            buckets = _check_buckets(buckets)
        elif buckets is not None:
            raise InvalidBucketsError(f"buckets are only valid for histograms, not a {type_word}")
        self.name = name
        self.help = help
        self.type = type_word
        self.const_labels = tuple(sorted(pairs))
        self.label_names = label_names
        self.buckets = buckets

    def dimensions(self):
        """What must agree between same-named collectors of one registry."""
        return (
            self.help,
            self.type,
            tuple(sorted(k for k, _ in self.const_labels)),
            tuple(sorted(self.label_names)),
        )

    def identity(self):
        """Name plus constant label values: what makes a collector a duplicate."""
        return (self.name, self.const_labels)

    def __repr__(self):
        return (
            f"Desc(name={self.name!r}, help={self.help!r}, type={self.type!r}, "
            f"const_labels={dict(self.const_labels)!r}, label_names={list(self.label_names)!r})"
        )


class MetricFamily:
    """One collector: a :class:`Desc` and its children, keyed by label-value tuples.

    Thread safety: children are created under the family lock (re-checked
    there, so two threads never create the same child twice) and looked up
    without it. Reads for a scrape take the family lock once for all children.
    """

    _cell_class = None  # set by each concrete type

    def __init__(self, desc):
        self.desc = desc
        self._lock = threading.Lock()
        self._children = {}
        self._version = 0  # bumped when the set of children changes
        # (version, keys, cells) sorted as rust-prometheus sorts children, and
        # (version, line prefixes) for write_text: rebuilt only when the set
        # of children changes, so a steady scrape neither sorts nor escapes.
        self._order = None
        self._text = None
        self._born = time.time()
        self._created_at = None  # {key: creation time} once track_created() is called
        names = desc.label_names
        # Label pairs of a child in exposition order: every label sorted by
        # name, each either a constant value or an index into the key.
        slots = [(k, v, None) for k, v in desc.const_labels]
        slots += [(k, None, i) for i, k in enumerate(names)]
        slots.sort(key=operator.itemgetter(0))
        self._slots = tuple(slots)
        # Sort key of a child: its values in label-name order (constant
        # labels are equal for all children, so they cannot decide).
        order = [i for _, _, i in slots if i is not None]
        if order == list(range(len(names))):
            self._sort_key = None
        elif len(order) == 1:
            self._sort_key = lambda key, _i=order[0]: (key[_i],)
        else:
            self._sort_key = operator.itemgetter(*order)
        self._header = self._make_header()

    def _make_header(self):
        parts = []
        expfmt.write_header(parts.append, self.desc.name, self.desc.type, self.desc.help)
        return "".join(parts)

    # -- children ---------------------------------------------------------

    def _new_cell(self):
        return self._cell_class(self._lock)

    def _get_or_create_child(self, key):
        """The child for a validated key, created if missing (slow path)."""
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._new_cell()
                self._children[key] = child
                self._version += 1
                if self._created_at is not None:
                    self._created_at[key] = time.time()
            return child

    def _remove(self, key):
        with self._lock:
            if self._children.pop(key, None) is None:
                return False
            self._version += 1
            if self._created_at is not None:
                self._created_at.pop(key, None)
            return True

    def _clear(self):
        with self._lock:
            if self._children:
                self._children.clear()
                self._version += 1
                if self._created_at is not None:
                    self._created_at.clear()

    def track_created(self):
        """Remember each child's creation time, for OpenMetrics ``_created`` samples.

        Children that exist already are dated to the creation of this metric.
        """
        with self._lock:
            if self._created_at is None:
                self._created_at = dict.fromkeys(self._children, self._born)

    def _sorted_children_locked(self):
        """``(version, keys, cells)`` in exposition order; the family lock is held."""
        order = self._order
        if order is None or order[0] != self._version:
            children = self._children
            keys = sorted(children, key=self._sort_key)
            order = self._order = (self._version, keys, [children[k] for k in keys])
        return order

    def _label_pairs(self, key):
        return tuple((k, key[i] if i is not None else v) for k, v, i in self._slots)

    # -- collection -------------------------------------------------------

    def _snapshot(self):
        """``[(key, value, created)]`` in exposition order, read under the family lock."""
        with self._lock:
            _, keys, cells = self._sorted_children_locked()
            created = self._created_at or {}
            values = self._cell_class.read_many(cells)
            return [(key, value, created.get(key)) for key, value in zip(keys, values)]

    def _samples(self, pairs, value):
        """The samples of one child (scalar types; histograms override)."""
        return (Sample(self.desc.name, pairs, value),)

    def collect_groups(self, created=False):
        """``[(label_pairs, samples)]``: one group per child, in exposition order.

        ``label_pairs`` are the child's labels (no ``le``); registries use
        them to merge same-named collectors and to spot duplicate series.
        With ``created`` (for OpenMetrics), counters and histograms that
        track creation times (:meth:`track_created`) add a ``<name>_created``
        sample to each group.
        """
        created = created and self.desc.type in _HAS_CREATED
        groups = []
        for key, value, born in self._snapshot():
            pairs = self._label_pairs(key)
            samples = self._samples(pairs, value)
            if created and born is not None:
                samples += (Sample(self.desc.name + "_created", pairs, born),)
            groups.append((pairs, samples))
        return groups

    def collect(self):
        """This collector's family as ``[model.Family]`` (empty when no children)."""
        samples = [s for _, group in self.collect_groups() for s in group]
        if not samples:
            return []
        d = self.desc
        return [Family(d.name, d.type, d.help, tuple(samples))]

    def write_text(self, write):
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        with self._lock:
            version, keys, cells = self._sorted_children_locked()
            text = self._text
            if text is None or text[0] != version:
                text = self._text = (version, [self._line_prefix(key) for key in keys])
            values = self._cell_class.read_many(cells)
        if values:
            write(self._header)
            write("\n".join(map(operator.add, text[1], expfmt.format_values(values))))
            write("\n")

    def _line_prefix(self, key):
        return self.desc.name + expfmt.format_labels(self._label_pairs(key)) + " "

    def describe(self):
        """The descriptors of this collector (one)."""
        return [self.desc]

    def __repr__(self):
        return f"<{type(self).__name__} {self.desc.name!r} children={len(self._children)}>"


def _expose_only_child(metric):
    """Create the one child of a label-less metric and bind its methods on it.

    Instance attributes shadow the documenting stubs on the class, so
    ``counter.inc()`` goes straight to the cell: one call, no forwarding.
    """
    child = metric._get_or_create_child(())
    for method in metric._methods:
        setattr(metric, method, getattr(child, method))


class _ScalarMetric(MetricFamily):
    """A family with no label names and its single child exposed directly."""

    _type = None
    _methods = ()

    def __init__(self, name, help, const_labels=None):
        super().__init__(Desc(name, help, self._type, const_labels))
        _expose_only_child(self)


class Counter(_ScalarMetric):
    """A float counter: ``inc()``, ``inc_by(v)`` (finite, >= 0), ``get()``.

    Negative, NaN or infinite increments raise :class:`InvalidValueError`.
    Mirrors rust-prometheus' ``Counter``.
    """

    _type = COUNTER
    _cell_class = counter_cell_class(integer=False)
    _methods = ("inc", "inc_by", "get")

    def inc(self):
        """Add 1."""

    def inc_by(self, amount):
        """Add ``amount`` (finite, >= 0)."""

    def get(self):
        """The current value."""


class IntCounter(Counter):
    """An integer counter; ``inc_by`` takes non-negative ints (values are unbounded)."""

    _cell_class = counter_cell_class(integer=True)


class Gauge(_ScalarMetric):
    """A float gauge: ``set``, ``inc``, ``dec``, ``add``, ``sub``, ``get``."""

    _type = GAUGE
    _cell_class = GaugeCell
    _methods = ("set", "inc", "dec", "add", "sub", "inc_by", "dec_by", "get")

    def set(self, value):
        """Set the value."""

    def inc(self):
        """Add 1."""

    def dec(self):
        """Subtract 1."""

    def add(self, amount):
        """Add ``amount``."""

    def sub(self, amount):
        """Subtract ``amount``."""

    def get(self):
        """The current value."""


class IntGauge(Gauge):
    """An integer gauge (values are unbounded Python ints)."""

    _cell_class = IntGaugeCell


class HistogramFamily(MetricFamily):
    """Family core of histograms: per-child buckets, sum and count."""

    _cell_class = HistogramCell

    def __init__(self, desc):
        # Explicit base: HistogramVec puts MetricVec next in the MRO.
        MetricFamily.__init__(self, desc)
        bounds = desc.buckets
        self._le = tuple(expfmt.format_value(b) for b in bounds) + ("+Inf",)

    def _new_cell(self):
        return HistogramCell(self._lock, self.desc.buckets)

    def _samples(self, pairs, value):
        cumulative, total, count = value
        name = self.desc.name
        samples = [
            Sample(name + "_bucket", pairs + (("le", le),), c)
            for le, c in zip(self._le, cumulative)
        ]
        samples.append(Sample(name + "_sum", pairs, total))
        samples.append(Sample(name + "_count", pairs, count))
        return tuple(samples)

    def write_text(self, write):
        snapshot = self._snapshot()
        if not snapshot:
            return
        name = self.desc.name
        fmt = expfmt.format_value
        out = [self._header]
        bucket_open = name + "_bucket{"
        for key, (cumulative, total, count), _ in snapshot:
            labels = expfmt.format_labels(self._label_pairs(key))
            inner = labels[1:-1] + "," if labels else ""
            out.extend(
                f'{bucket_open}{inner}le="{le}"}} {c}\n' for le, c in zip(self._le, cumulative)
            )
            out.append(f"{name}_sum{labels} {fmt(total)}\n{name}_count{labels} {count}\n")
        write("".join(out))


class Histogram(HistogramFamily):
    """A histogram: ``observe(v)``, ``time()``, ``start_timer()``,
    ``get_sample_count()``, ``get_sample_sum()``.

    ``buckets`` defaults to :data:`DEFAULT_BUCKETS`; bounds must increase
    strictly. Observations count in every bucket whose bound is >= the value.
    """

    _methods = ("observe", "time", "start_timer", "get_sample_count", "get_sample_sum")

    def __init__(self, name, help, const_labels=None, buckets=None):
        super().__init__(Desc(name, help, HISTOGRAM, const_labels, buckets=buckets))
        _expose_only_child(self)

    def observe(self, value):
        """Record one observation."""

    def time(self):
        """Context manager / decorator observing elapsed seconds."""

    def start_timer(self):
        """A started timer; call ``observe_duration()`` on it."""

    def get_sample_count(self):
        """Number of observations."""

    def get_sample_sum(self):
        """Sum of observations."""
