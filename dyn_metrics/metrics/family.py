"""The family core shared by every metric type, and the base of the label-less metrics.

A :class:`MetricFamily` is one collector: a validated :class:`~.desc.Desc` plus
a map from label-value tuples to value cells (the *children*). The plain
metrics (``Counter``, ``Gauge``, ``Histogram`` and the Int variants) are
families with no label names and one child, whose methods they expose
directly (:func:`expose_only_child`), so ``counter.inc()`` costs exactly one
call into the cell. The Vec types (``vec.py``) add access by label values.

A family renders itself in two ways that give the same bytes:
:meth:`MetricFamily.collect` builds the plain model (``model.Family``) and
``write_text`` writes text 0.0.4 directly; :class:`ScalarFamily` (counters and
gauges) keeps its lines as block templates (``order.py``), so a steady scrape
formats values only.

The exposition order is kept up to date incrementally: creating or removing a
child logs its key (one ``list.append``), and the next read replays the log on
a copy of the last order (``order.replay``) instead of sorting again.
"""

import itertools
import operator
import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Generic, Optional, Protocol, TypeVar, cast

from ..exposition import text as expfmt
from ..model import COUNTER, HISTOGRAM, SUMMARY, Family, Labels, Number, Sample
from . import backends
from .cells import drop, take
from .desc import Desc, LabelsArg
from .order import Blocks, Order, build, fill, replay, worth_replaying

#: The label values of one child, in the declared order of the label names.
Key = tuple[str, ...]
#: One child's labels and samples (what registries merge by).
Group = tuple[Labels, tuple[Sample, ...]]
#: Where ``write_text`` writes: ``list.append`` of a list of parts, or a stream's write.
Write = Callable[[str], object]

_C = TypeVar("_C")  # the child cell type
_V = TypeVar("_V")  # what reading one child gives

#: Keys logged since the last read beyond which the log is dropped and the
#: next read sorts afresh (bounds the memory of a family that is never read).
LOG_LIMIT = 4096
_INTS = {int}

# Types whose OpenMetrics form may carry a `_created` sample.
_HAS_CREATED = (COUNTER, HISTOGRAM, SUMMARY)


class CellClass(Protocol[_C, _V]):
    """What a family needs of its cell class: make a cell, and read many at once.

    ``_read_many`` returns a ``list`` of values, one per cell; a read that
    leaves some child out of this scrape (a gauge whose function failed)
    returns a list *subclass* with None for that child, so the steady path
    tests one class instead of scanning for None.
    """

    def __call__(self, lock: threading.Lock, /) -> _C: ...

    def _read_many(self, cells: list[_C], /) -> list[_V]: ...


class MetricFamily(Generic[_C, _V]):
    """One collector: a :class:`Desc` and its children, keyed by label-value tuples.

    Thread and re-entrancy safety: no lock guards the child map. A child is
    created with one ``dict.setdefault`` (atomic: two threads, or a signal
    handler and the code it interrupted, creating the same child get the same
    one), removed with one ``dict.pop``, and a scrape copies the map with one
    ``list(dict.items())``, so a metric call nested anywhere (signal handler,
    GC callback, finalizer) neither waits nor breaks the scrape it interrupts.
    The sorted order is an :class:`~.order.Order` published with one
    assignment and never changed afterwards; the order lock stops two reads
    replaying the log at once (a read nested in one that holds it sorts a
    private copy). The family lock only keeps :meth:`track_created` from
    racing itself, and keeps a vec with ``max_children`` within its limit
    (``vec.py``).
    """

    # Set by each concrete type as a class attribute (not a ClassVar: a
    # ClassVar may not mention the class's type variables).
    _cell_class: CellClass[_C, _V]

    def __init__(self, desc: Desc) -> None:
        self.desc = desc
        self._lock = threading.Lock()
        self._children: dict[Key, _C] = {}
        # A new number whenever the set of children changes (next() is atomic).
        self._versions = itertools.count(1)
        self._version = 0
        # The children sorted as rust-prometheus sorts them, as of a version,
        # and the keys created or removed since (None: sort afresh next time;
        # also before the first read, so an unread family logs nothing).
        self._order: Optional[Order[_C]] = None
        self._log: Optional[list[Key]] = None
        self._order_lock = threading.Lock()
        # (version, line prefixes) of types that cache their own lines (stateset).
        self._text: Optional[tuple[int, list[str]]] = None
        # {key: label pairs} for collect_groups, filled as it goes.
        self._pairs: dict[Key, Labels] = {}
        self._born = time.time()
        # {key: creation time} once track_created() is called
        self._created_at: Optional[dict[Key, float]] = None
        names = desc.label_names
        # Label pairs of a child in exposition order: every label sorted by
        # name, each either a constant value or an index into the key.
        slots: list[tuple[str, str, Optional[int]]] = [(k, v, None) for k, v in desc.const_labels]
        slots += [(k, "", i) for i, k in enumerate(names)]
        slots.sort(key=operator.itemgetter(0))
        self._slots = tuple(slots)
        # Sort key of a child: its values in label-name order (constant
        # labels are equal for all children, so they cannot decide).
        order = [i for _, _, i in slots if i is not None]
        self._sort_key: Optional[Callable[[Key], tuple[str, ...]]]
        if order == list(range(len(names))):
            self._sort_key = None
        elif len(order) == 1:
            self._sort_key = lambda key, _i=order[0]: (key[_i],)
        else:
            self._sort_key = operator.itemgetter(*order)
        self._header = self._make_header()
        # A cell backend installed now (multiprocess mode) makes every child's
        # cell; captured here so a family made without one never looks again.
        self._backend: Optional[backends.CellBackend] = None
        backend = backends.installed()
        if backend is not None:
            cell_class = backend.cell_class(self)
            if cell_class is not None:
                self._cell_class = cell_class  # type: ignore[assignment]  # the backend's cells
                self._backend = backend
        # How a child's cell is made: the class's own C-level maker when it
        # has one (counters), else _new_cell.
        fresh = getattr(self._cell_class, "_fresh", None)
        if fresh is None or type(self)._new_cell is not MetricFamily._new_cell:
            self._make: Callable[[], _C] = self._new_cell
        else:
            self._make = fresh

    def _make_header(self) -> str:
        parts: list[str] = []
        expfmt.write_header(parts.append, self.desc.name, self.desc.type, self.desc.help)
        return "".join(parts)

    # -- children ---------------------------------------------------------

    def _new_cell(self) -> _C:
        return self._cell_class(self._lock)

    def _get_or_create_child(self, key: Key) -> _C:
        """The child for a validated key, created if missing (slow path, lock-free)."""
        backend = self._backend
        cell = self._make() if backend is None else cast(_C, backend.new_cell(self, key))
        child = self._children.setdefault(key, cell)
        if child is cell:
            if backend is not None:  # only the cell that won: a loser never touches the backend
                backend.adopt(cell)
            self._logged(key)
            created = self._created_at
            if created is not None:
                created.setdefault(key, time.time())
        return child

    def _logged(self, key: Key) -> None:
        """Log a created or removed child, then move the version on.

        Logged first: a read that sees the new version finds the key in the log.
        """
        log = self._log
        if log is not None:
            log.append(key)
            if len(log) > LOG_LIMIT:
                self._log = None
        self._version = next(self._versions)

    def _remove(self, key: Key) -> bool:
        if self._children.pop(key, None) is None:
            return False
        self._logged(key)
        if self._created_at is not None:
            self._created_at.pop(key, None)
        return True

    def _clear(self) -> None:
        if self._children:
            self._children.clear()
            self._log = None
            self._version = next(self._versions)
            if self._created_at is not None:
                self._created_at.clear()

    def track_created(self) -> None:
        """Remember each child's creation time, for OpenMetrics ``_created`` samples.

        Children that exist already are dated to the creation of this metric.
        """
        lock = self._lock
        if take(lock):
            try:
                if self._created_at is None:
                    self._created_at = dict.fromkeys(self._children.copy(), self._born)
            finally:
                drop(lock)

    def _sorted_children(self) -> Order[_C]:
        """The children in exposition order, brought up to date with the child map."""
        order = self._order
        if order is not None and order.version == self._version:
            return order
        lock = self._order_lock
        if not take(lock):
            # A read nested in one replaying the log (a signal handler, a GC
            # callback): sort a private copy, touching nothing shared.
            return build(self._version, self._children.copy(), self._sort_key, self._line_of())
        try:
            return self._update_order()
        finally:
            drop(lock)

    def _update_order(self) -> Order[_C]:
        """Replay the log onto the last order, or sort afresh; the order lock is held."""
        version = self._version  # read before the log: a change after it is seen next time
        order = self._order
        if order is not None and order.version == version:
            return order
        log = self._log
        changed: list[Key] = []
        if log is not None and order is not None:
            n = len(log)
            changed = log[:n]
            del log[:n]  # appenders only add at the end
        if log is None or order is None or not worth_replaying(len(changed), len(order.keys)):
            # A new log first: a child created after the copy below is logged.
            self._log = []
            # dict.copy() is one atomic C call; list(d.items()) is not: its
            # tuples may start a GC pass whose callbacks create children.
            order = build(version, self._children.copy(), self._sort_key, self._line_of())
        else:
            order = replay(order, version, changed, self._children, self._sort_key, self._line_of())
        self._order = order
        return order

    def _line_of(self) -> Optional[Callable[[Key], str]]:
        """The block-template line of a key, for types whose text uses block templates."""
        return None

    def _label_pairs(self, key: Key) -> Labels:
        return tuple((k, key[i] if i is not None else v) for k, v, i in self._slots)

    # -- collection -------------------------------------------------------

    def _snapshot(self) -> list[tuple[Key, _V, Optional[float], _C]]:
        """``[(key, value, created, cell)]`` in exposition order.

        A cell class may read a child as None (a gauge whose function failed):
        that child has no samples in this scrape.
        """
        order = self._sorted_children()
        keys, cells = order.keys, order.cells
        created = self._created_at or {}
        values = self._cell_class._read_many(cells)
        return [
            (key, value, created.get(key), cell)
            for key, value, cell in zip(keys, values, cells)
            if value is not None
        ]

    def _samples(self, pairs: Labels, value: _V) -> tuple[Sample, ...]:
        """The samples of one child; each kind of family says how."""
        raise NotImplementedError

    def _with_exemplars(self, samples: tuple[Sample, ...], cell: _C) -> tuple[Sample, ...]:
        """``samples`` with the exemplars ``cell`` keeps; counters and histograms have some."""
        return samples

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        raise NotImplementedError

    def collect_groups(self, created: bool = False) -> list[Group]:
        """``[(label_pairs, samples)]``: one group per child, in exposition order.

        ``label_pairs`` are the child's labels (no ``le``); registries use
        them to merge same-named collectors and to spot duplicate series.
        With ``created`` (for OpenMetrics), counters, histograms and summaries that
        track creation times (:meth:`track_created`) add a ``<name>_created``
        sample to each group.
        """
        created = created and self.desc.type in _HAS_CREATED
        groups = []
        pairs_of = self._pairs
        if len(pairs_of) > 2 * len(self._children) + 64:  # removed children linger: start over
            pairs_of = self._pairs = {}
        for key, value, born, cell in self._snapshot():
            pairs = pairs_of.get(key)
            if pairs is None:
                pairs = pairs_of[key] = self._label_pairs(key)
            samples = self._with_exemplars(self._samples(pairs, value), cell)
            if created and born is not None:
                samples += (Sample(self.desc.name + "_created", pairs, born),)
            groups.append((pairs, samples))
        return groups

    def collect(self) -> list[Family]:
        """This collector's family as ``[model.Family]`` (empty when no children)."""
        samples = [s for _, group in self.collect_groups() for s in group]
        if not samples:
            return []
        d = self.desc
        return [Family(d.name, d.type, d.help, tuple(samples), d.unit)]

    def describe(self) -> list[Desc]:
        """The descriptors of this collector (one)."""
        return [self.desc]

    # -- Dynamo's Python binding spellings (read from the Desc, as there) --

    def name(self) -> str:
        """The full metric name, e.g. ``dynamo_component_requests_total``."""
        return self.desc.name

    def const_labels(self) -> dict[str, str]:
        """A new ``{name: value}`` dict of the constant labels (auto labels included).

        In name order, the order of rust-prometheus' ``Desc`` (Dynamo's
        binding returns them in a dict too).
        """
        return dict(self.desc.const_labels)

    def variable_labels(self) -> list[str]:
        """A new list of the variable label names in declared order (``[]`` if none)."""
        return list(self.desc.label_names)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.desc.name!r} children={len(self._children)}>"


class ScalarFamily(MetricFamily[_C, Number]):
    """A family whose children each hold one number: counters and gauges."""

    def _samples(self, pairs: Labels, value: Number) -> tuple[Sample, ...]:
        return (Sample(self.desc.name, pairs, value),)

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        order = self._sorted_children()
        cells = order.cells
        if not cells:
            return
        # A scalar family's orders always carry block templates (its _line_of).
        blocks = cast(Blocks, order.blocks)
        n = len(cells)
        # Counters are ticked inside the one C call that fills the lines (see
        # fill); other cells, and counters with lists, are read, then formatted.
        fast = getattr(self._cell_class, "_text_fill", None)
        text = None
        if fast is not None:
            text = fast(cells, lambda values: fill(self._header, blocks, self.desc.name, values, n))
        if text is None:
            values = self._cell_class._read_many(cells)
            if values.__class__ is not list:  # None for a failed gauge function
                self._write_lines(write, order.keys, values)
                return
            texts = values if set(map(type, values)) == _INTS else expfmt.format_values(values)
            text = fill(self._header, blocks, self.desc.name, texts, n)
        write(text)

    def _write_lines(
        self, write: Write, keys: list[Key], values: Sequence[Optional[Number]]
    ) -> None:
        """The lines one by one; a None value leaves its child out (a failed gauge function)."""
        lines = [
            self._line_prefix(key) + expfmt.format_value(v)
            for key, v in zip(keys, values)
            if v is not None
        ]
        if lines:
            write(self._header + "\n".join(lines) + "\n")

    def _line_prefix(self, key: Key) -> str:
        return self.desc.name + expfmt.format_labels(self._label_pairs(key)) + " "

    def _line_of(self) -> Optional[Callable[[Key], str]]:
        return self._template_line

    def _template_line(self, key: Key) -> str:
        labels = expfmt.format_labels(self._label_pairs(key))
        return labels.replace("%", "%%") + " %s\n"


def expose_only_child(metric: MetricFamily[_C, _V], methods: Sequence[str]) -> None:
    """Create the one child of a label-less metric and bind its ``methods`` on it.

    Instance attributes shadow the documenting stubs on the class, so
    ``counter.inc()`` goes straight to the cell: one call, no forwarding.
    """
    child = metric._get_or_create_child(())
    for method in methods:
        setattr(metric, method, getattr(child, method))


class ScalarMetric(ScalarFamily[_C]):
    """A counter or gauge with no label names and its single child exposed directly.

    The methods on the subclasses document the metric API; each instance
    shadows them with its child's bound methods (:func:`expose_only_child`),
    so their bodies never run.
    """

    _type: ClassVar[str]
    #: The child methods bound on the instance.
    _methods: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, name: str, help: str, const_labels: LabelsArg = None, *, unit: str = ""
    ) -> None:
        super().__init__(Desc(name, help, self._type, const_labels, unit=unit))
        expose_only_child(self, self._methods)
        # The one child never goes away: its cell list and whole line prefix are
        # fixed, so a scrape of a label-less metric reads and formats one value.
        self._only = [self._children[()]]
        self._only_prefix = self._header + self._line_prefix(())

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        value = self._cell_class._read_many(self._only)[0]
        if value is not None:  # None: a gauge function that failed
            write(self._only_prefix + expfmt.format_values((value,))[0] + "\n")
