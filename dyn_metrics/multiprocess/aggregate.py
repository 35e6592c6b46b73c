"""The aggregation both multiprocess readers share: per-process entries in, families out.

A reader turns each distinct file key into an :class:`Entry` once (readers
cache them by the key's bytes, so a steady scrape decodes nothing) and feeds
a :class:`Scrape` one file at a time with :meth:`Scrape.add` (a file whose
entries a reader caches goes through ``plans.add``, the same sum in bulk). The
rules are prometheus_client's ``MultiProcessCollector``'s:

* counters, summaries (``_sum``, ``_count``) and histograms (per-bucket counts
  and ``_sum``) are summed per series; at the end buckets are made cumulative
  and a histogram's ``_count`` is its ``+Inf`` total;
* gauges (and the other gauge-like types) by the mode of each entry (its
  key's, or a prometheus_client file name's): ``all``/``liveall`` (and any
  unknown mode) keep one series per process with a ``pid`` label (a later
  file's value wins for the same pid: files are added aggregate first, live
  last); ``min``/``max``/``sum`` and their ``live`` forms fold the processes
  (dropping any ``pid`` label, as prometheus_client does); ``min``/``max``
  skip NaN values, so the result does not depend on the order files are read
  in (NaN only when every process's value is NaN; prometheus_client's result
  there depends on file order); ``sum`` with a NaN is NaN;
  ``mostrecent``/``livemostrecent`` keep the value with the latest timestamp,
  a value of timestamp 0 (never set) not served. (prometheus_client applies
  the mode of the last file read to a whole metric; the two differ only for
  a gauge given different modes in different processes.)
* a dead process (``dead=True``) adds no ``live`` gauge entries.
* info and state-set entries (key types ``info`` and ``stateset``) are
  gauge-like: kept per process by their mode (``liveall`` as written: a
  ``pid`` label, gone once the process is dead) and served as families of
  their own type; an info entry of value 0 (a label set replaced by a later
  ``info()``, or the placeholder of the labels before it) is not served.
  Entries written with type ``gauge`` are gauges whatever they hold: an info
  or state set written so is served as a ``gauge`` family with a ``pid``
  label, an info's replaced label sets and its placeholder of the labels
  before ``info()`` included at 0.

A family's type, help and unit are those of the first entry seen. An entry
of another type, or from another *source* with other help, does not join it
(the first source keeps the family; the conflict is logged once).

:meth:`Scrape.families` gives model families (labels sorted, ``le`` last,
families sorted by name); :meth:`Scrape.entries` gives the folded values as
layout entries (buckets per bound, ``all`` gauges with their ``pid`` label,
``mostrecent`` with its timestamp) for compaction.
"""

import logging
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Optional

from ..model import COUNTER, HISTOGRAM, INFO, SUMMARY, Family, Labels, Sample
from .layout import Key

_log = logging.getLogger(__name__)

#: Entry kinds: summed, kept at the minimum (``_created``), a gauge of a folding mode,
#: ignored, an aggregate file's record of a folded file (its name as ``Entry.family``),
#: and a gauge kept per process (``all``, ``liveall``, any unknown mode).
SUM, CREATED, GAUGE_KIND, SKIP, FOLD, PER_PID = 0, 1, 2, 3, 4, 5
SUMMED_TYPES = frozenset((COUNTER, HISTOGRAM, SUMMARY))
#: The folding gauge modes, by how they fold.
MIN_MODES = frozenset(("min", "livemin"))
MAX_MODES = frozenset(("max", "livemax"))
SUM_MODES = frozenset(("sum", "livesum"))
RECENT_MODES = frozenset(("mostrecent", "livemostrecent"))
FOLDED_MODES = MIN_MODES | MAX_MODES | SUM_MODES | RECENT_MODES
#: Distinct series kept across scrapes; past this many the tables start afresh.
SERIES_LIMIT = 200_000
PidLabel = Optional[tuple[str, str]]
# Sample records built without namedtuple's Python-level __new__ (half the cost,
# thousands per scrape): the fields in Sample's order, the optional ones None.
_new_tuple = tuple.__new__


class Series(NamedTuple):
    """One series as served: its family, sample name, labels (sorted, ``le`` last)."""

    family: str
    sample: str
    labels: Labels
    bound: Optional[float]  # a histogram bucket's bound, else None
    child: Labels  # labels without ``le``
    order: int  # 0 the family's own sample, 1 ``_sum``, 2 ``_count``, 3 others
    pid_at: int  # where a ``pid`` label goes in ``labels``


class Entry(NamedTuple):
    """What one file key means to the aggregation (cached per distinct key)."""

    family: str
    type: str
    help: str
    unit: str
    mode: str
    kind: int
    slot: int  # index of its :class:`Series` in :attr:`SeriesTable.table`
    fold: int  # the slot of its labels without ``pid`` (gauges fold and re-label on it)
    pid: PidLabel  # its own ``pid`` label (the aggregate's ``all`` gauges carry one)


def sorted_labels(labels: Labels) -> Labels:
    """``labels`` sorted by name, ``le`` last."""
    pairs = sorted(p for p in labels if p[0] != "le")
    return tuple(pairs) + tuple(p for p in labels if p[0] == "le")


class SeriesTable:
    """Series numbered once and kept across scrapes (a reader owns one)."""

    def __init__(self) -> None:
        self.slots: dict[tuple[str, str, Labels], int] = {}
        self.table: list[Series] = []
        #: The labels a per-process gauge is served with, by (fold slot, pid label).
        self.served: dict[tuple[int, PidLabel], Labels] = {}
        #: The readers' caches of what refers to slots (entries, file shapes), emptied
        #: with the table: nothing cached may outlive the numbering it was made with.
        self.caches: list[dict[Any, Any]] = []

    def cache(self) -> dict[Any, Any]:
        """A new cache of this table's entries or shapes (emptied by :meth:`trim`)."""
        made: dict[Any, Any] = {}
        self.caches.append(made)
        return made

    def trim(self) -> None:
        """Start afresh once past :data:`SERIES_LIMIT`; call between scrapes only."""
        big = len(self.table) > SERIES_LIMIT or len(self.served) > SERIES_LIMIT
        if big or sum(map(len, self.caches)) > SERIES_LIMIT:
            self.slots, self.table, self.served = {}, [], {}
            for cache in self.caches:
                cache.clear()

    def _slot(self, family: str, sample: str, labels: Labels, bound: Optional[float]) -> int:
        ident = (family, sample, labels)
        slot = self.slots.get(ident)
        if slot is None:
            slot = self.slots[ident] = len(self.table)
            child = labels if bound is None else labels[:-1]
            order = 0 if sample == family else 1 if sample.endswith("_sum") else 3
            order = 2 if sample.endswith("_count") else order
            pid_at = sum(1 for k, _ in child if k < "pid")
            self.table.append(Series(family, sample, labels, bound, child, order, pid_at))
        return slot

    def entry(
        self,
        family: str,
        type_word: str,
        help_text: str,
        unit: str,
        mode: str,
        sample: str,
        labels: Labels,
    ) -> Entry:
        """The :class:`Entry` of a key; ValueError for a bucket without a numeric ``le``."""
        labels = sorted_labels(labels)
        bound: Optional[float] = None
        kind = GAUGE_KIND
        if type_word in SUMMED_TYPES:
            kind = SUM
            if sample == family + "_bucket" and type_word == HISTOGRAM:
                le = [v for k, v in labels if k == "le"]
                if len(le) != 1:
                    raise ValueError(f"bucket {sample!r} {labels!r} has no single le label")
                bound = float(le[0])
            elif sample.endswith("_created") and sample != family:
                kind = CREATED
            elif type_word == SUMMARY and any(k == "quantile" for k, _ in labels):
                kind = SKIP  # quantiles of several processes cannot be added
        slot = self._slot(family, sample, labels, bound)
        fold, pid = slot, None
        if kind == GAUGE_KIND:
            kind = GAUGE_KIND if mode in FOLDED_MODES else PER_PID
            pids = [p for p in labels if p[0] == "pid"]
            if pids:
                pid = pids[0]
                fold = self._slot(family, sample, tuple(p for p in labels if p[0] != "pid"), None)
        return Entry(family, type_word, help_text, unit, mode, kind, slot, fold, pid)


class _Meta:
    __slots__ = ("type", "help", "unit", "mode", "source")

    def __init__(self, entry: Entry, source: str) -> None:
        self.type, self.help, self.unit, self.mode = entry.type, entry.help, entry.unit, entry.mode
        self.source = source


class Scrape:
    """One aggregation in progress: :meth:`add` files, then :meth:`families` or :meth:`entries`."""

    def __init__(self, series: SeriesTable, logged: Optional[dict[str, object]] = None) -> None:
        self.table = series.table
        self.served = series.served
        self.metas: dict[str, _Meta] = {}
        self.sums: dict[int, float] = {}
        self.created: dict[int, float] = {}
        # Gauges, keyed by their fold slot: `all` ones per pid label too.
        self.alls: dict[tuple[int, PidLabel], float] = {}
        self.mins: dict[int, float] = {}
        self.maxes: dict[int, float] = {}
        self.totals: dict[int, float] = {}
        self.recents: dict[int, tuple[float, float]] = {}
        self._logged = {} if logged is None else logged

    def add(
        self,
        entries: Sequence[Entry],
        values: Sequence[float],
        stamps: Sequence[float],
        pid: Optional[str],
        source: str,
        dead: bool = False,
    ) -> None:
        """Add one file's entries (with their values and timestamps) written by ``pid``.

        ``pid`` None: the entries already carry what they need (the aggregate).
        """
        sums = self.sums
        pid_label = None if pid is None else ("pid", pid)
        family = type_word = ""
        joins = False
        for entry, value, stamp in zip(entries, values, stamps):
            # Entries of one family come together: its checks run once per run of them.
            if entry.family != family or entry.type != type_word:
                family, type_word = entry.family, entry.type
                joins = self.joins(entry, source)
                if joins and (entry.kind == GAUGE_KIND or entry.kind == PER_PID):
                    self.metas[family].mode = entry.mode
            if not joins:
                continue
            if entry.kind == SUM:
                slot = entry.slot
                sums[slot] = sums.get(slot, 0.0) + value
            else:
                self.put(entry, value, stamp, pid_label, dead)

    def joins(self, entry: Entry, source: str) -> bool:
        """Whether ``entry`` (starting a run of its family) joins the family seen first.

        The family is made from ``entry`` when it is new; a conflict is logged once.
        """
        meta = self.metas.get(entry.family)
        if meta is None:
            meta = self.metas[entry.family] = _Meta(entry, source)
        return self._joins(meta, entry, source)

    def put(
        self, entry: Entry, value: float, stamp: float, pid_label: PidLabel, dead: bool
    ) -> None:
        """Add one joined entry of a kind other than ``SUM`` (see :meth:`add`)."""
        kind = entry.kind
        if kind == PER_PID:
            if not (dead and entry.mode.startswith("live")):
                if value == 0.0 and entry.type == INFO:
                    # An info label set no longer current (or the one before info()).
                    self.alls.pop((entry.fold, pid_label or entry.pid), None)
                else:
                    self.alls[(entry.fold, pid_label or entry.pid)] = value
        elif kind == GAUGE_KIND:
            if not (dead and entry.mode.startswith("live")):
                self._fold(entry.fold, entry.mode, value, stamp)
        elif kind == CREATED:
            slot = entry.slot
            if slot not in self.created or value < self.created[slot]:
                self.created[slot] = value

    def _fold(self, fold: int, mode: str, value: float, stamp: float) -> None:
        if mode in SUM_MODES:
            self.totals[fold] = self.totals.get(fold, 0.0) + value
        elif mode in MAX_MODES:
            # NaN is skipped (`not <=` keeps a value over a NaN kept so far): the
            # result does not depend on file order; NaN only when every value is.
            if fold not in self.maxes or not value <= self.maxes[fold]:
                if value == value or fold not in self.maxes:
                    self.maxes[fold] = value
        elif mode in MIN_MODES:
            if fold not in self.mins or not value >= self.mins[fold]:
                if value == value or fold not in self.mins:
                    self.mins[fold] = value
        else:
            # prometheus_client starts from timestamp 0: a value of time 0 (never set)
            # is not served.
            stamp = float(stamp or 0)
            if self.recents.get(fold, (0.0, 0.0))[1] < stamp:
                self.recents[fold] = (value, stamp)

    def _joins(self, meta: _Meta, entry: Entry, source: str) -> bool:
        if meta.type == entry.type and (meta.source == source or meta.help == entry.help):
            return True
        token = object()
        if self._logged.setdefault(f"conflict:{entry.family}:{source}", token) is token:
            _log.error(
                "multiprocess family %r from %s (%s %r) differs from the one from %s "
                "(%s %r): the first is served (logged once)",
                entry.family,
                source,
                entry.type,
                entry.help,
                meta.source,
                meta.type,
                meta.help,
            )
        return False

    def _gauges(self, per_pid: bool = True) -> Iterator[tuple[Series, Labels, float, float]]:
        """Every gauge series as served: (series, labels, value, timestamp)."""
        table = self.table
        for key, value in self.alls.items() if per_pid else ():
            s = table[key[0]]
            yield s, self._served(key, s), value, 0.0
        for folded in (self.mins, self.maxes, self.totals):
            for fold, value in folded.items():
                s = table[fold]
                yield s, s.labels, value, 0.0
        for fold, (value, stamp) in self.recents.items():
            s = table[fold]
            yield s, s.labels, value, stamp

    def _served(self, key: tuple[int, PidLabel], s: Series) -> Labels:
        labels = s.labels
        pid = key[1]
        if pid is not None:
            labels = labels[: s.pid_at] + (pid,) + labels[s.pid_at :]
        self.served[key] = labels
        return labels

    def families(self) -> list[Family]:
        """The aggregate as model families, sorted by name; series in file order."""
        table, new = self.table, _new_tuple
        grouped: dict[str, dict[Labels, list[tuple[Series, float]]]] = {}
        for values in (self.sums, self.created):
            for slot, value in values.items():
                s = table[slot]
                by_child = grouped.get(s.family)
                if by_child is None:
                    by_child = grouped[s.family] = {}
                items = by_child.get(s.child)
                if items is None:
                    by_child[s.child] = [(s, value)]
                else:
                    items.append((s, value))
        gauges: dict[str, list[Sample]] = {}
        served, family, found = self.served, "", []
        for key, value in self.alls.items():  # inline: the bulk of a gauge-heavy scrape
            s = table[key[0]]
            labels = served.get(key)
            if labels is None:
                labels = self._served(key, s)
            if s.family != family:
                family = s.family
                found = gauges.setdefault(family, [])
            found.append(new(Sample, (s.sample, labels, value, None, None, None)))
        for s, labels, value, _ in self._gauges(per_pid=False):
            found = gauges.setdefault(s.family, [])
            found.append(new(Sample, (s.sample, labels, value, None, None, None)))
        out = []
        for name in sorted(grouped.keys() | gauges.keys()):
            meta = self.metas[name]
            samples = gauges.get(name, [])
            histogram = meta.type == HISTOGRAM
            for child, items in grouped.get(name, {}).items():
                if histogram:
                    _histogram_child(name, child, items, samples)
                    continue
                if len(items) > 1:
                    items.sort(key=_sample_order)
                for s, value in items:
                    samples.append(
                        _new_tuple(Sample, (s.sample, s.labels, value, None, None, None))
                    )
            out.append(Family(name, meta.type, meta.help, tuple(samples), meta.unit))
        return out

    def entries(self) -> list[tuple[Key, float, float]]:
        """The aggregate as layout entries (per-bucket counts, gauges folded), for compaction.

        ``all`` gauges carry their ``pid`` label, ``mostrecent`` ones their timestamp.
        """
        table, metas = self.table, self.metas
        out: list[tuple[Key, float, float]] = []
        for values in (self.sums, self.created):
            for slot, value in values.items():
                s = table[slot]
                m = metas[s.family]
                out.append((Key(s.family, m.type, m.help, m.unit, s.sample, s.labels), value, 0.0))
        for s, labels, value, stamp in self._gauges():
            m = metas[s.family]
            key = Key(s.family, m.type, m.help, m.unit, s.sample, labels, m.mode)
            out.append((key, value, stamp))
        return out


def _sample_order(item: tuple[Series, float]) -> tuple[int, str]:
    """The family's own sample first, then ``_sum``, ``_count``, the rest by name."""
    return item[0].order, item[0].sample


def _histogram_child(
    name: str, child: Labels, items: list[tuple[Series, float]], samples: list[Sample]
) -> None:
    """One histogram child: cumulative buckets by bound, ``_sum``, ``_count`` (the +Inf total)."""
    labels_of: dict[float, Labels] = {}  # bound -> its labels; "1" and "1.0" merge
    counts: dict[float, float] = {}
    rest: dict[str, float] = {}
    for s, value in items:
        if s.bound is None:
            rest[s.sample] = value
        else:
            labels_of.setdefault(s.bound, s.labels)
            counts[s.bound] = counts.get(s.bound, 0.0) + value
    acc = 0.0
    bucket = name + "_bucket"
    for bound in sorted(counts):
        acc += counts[bound]
        samples.append(_new_tuple(Sample, (bucket, labels_of[bound], acc, None, None, None)))
    if name + "_sum" in rest:
        samples.append(Sample(name + "_sum", child, rest.pop(name + "_sum")))
    count = rest.pop(name + "_count", None)
    if counts:
        samples.append(Sample(name + "_count", child, acc))
    elif count is not None:
        samples.append(Sample(name + "_count", child, count))
    for sample in sorted(rest):
        samples.append(Sample(sample, child, rest[sample]))
