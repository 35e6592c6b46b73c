"""A file's entries sorted by what an aggregation does with them, made once per file shape.

:meth:`.aggregate.Scrape.add` looks at every entry of every file on every
scrape. A steady file keeps its keys, so a reader keeps its :class:`Plan`
with its cached entries, and :func:`add` adds the file's values with a few
C-level ``dict.update`` calls instead: summed series (counters, histograms,
summaries), ``sum``/``livesum`` gauges and per-process gauges; the rest
(``min``, ``max``, ``mostrecent`` gauges, info entries, ``_created``) go
entry by entry through :meth:`Scrape.put`.

The result is :meth:`Scrape.add`'s exactly: the same updates of the same
dicts, each dict's in file order (an ``update`` draws its pairs lazily, so a
series met twice adds to its own sum). When one of the file's families does
not join the scrape's (another type, or other help from another source),
:func:`add` hands the file to :meth:`Scrape.add`, which sorts that out entry
by entry.
"""

import operator
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Optional

from ..model import INFO
from .aggregate import CREATED, GAUGE_KIND, PER_PID, SUM, SUM_MODES, Entry, Scrape


class Plan:
    """What :func:`add` does with a file's entries (positions in ``entries``, file order)."""

    __slots__ = (
        "entries",
        "starts",
        "modes",
        "sums",
        "totals",
        "totals_dead",
        "alls",
        "alls_dead",
        "rest",
    )

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = entries
        #: The first entry of each run of a family, one per (family, type, help):
        #: what Scrape.add checks when a run starts.
        starts: dict[tuple[str, str, str], Entry] = {}
        #: The mode a family's gauges leave in its meta (the last run's, as Scrape.add).
        self.modes: dict[str, str] = {}
        sums: list[int] = []
        totals: list[int] = []
        totals_dead: list[int] = []
        alls: list[int] = []
        alls_dead: list[int] = []
        self.rest: list[int] = []
        family = type_word = ""
        for at, entry in enumerate(entries):
            if entry.family != family or entry.type != type_word:
                family, type_word = entry.family, entry.type
                starts.setdefault((family, type_word, entry.help), entry)
                if entry.kind == GAUGE_KIND or entry.kind == PER_PID:
                    self.modes[family] = entry.mode
            kind, live = entry.kind, entry.mode.startswith("live")
            if kind == SUM:
                sums.append(at)
            elif kind == GAUGE_KIND and entry.mode in SUM_MODES:
                totals.append(at)
                if not live:  # a dead process adds no live gauge
                    totals_dead.append(at)
            elif kind == PER_PID and entry.type != INFO:
                alls.append(at)
                if not live:
                    alls_dead.append(at)
            elif kind in (PER_PID, GAUGE_KIND, CREATED):
                self.rest.append(at)
        self.starts = list(starts.values())
        self.sums = (sums, [entries[at].slot for at in sums])
        self.totals = (totals, [entries[at].fold for at in totals])
        self.totals_dead = (totals_dead, [entries[at].fold for at in totals_dead])
        self.alls = (alls, [(entries[at].fold, entries[at].pid) for at in alls])
        self.alls_dead = (alls_dead, [(entries[at].fold, entries[at].pid) for at in alls_dead])


def add(
    scrape: Scrape,
    plan: Plan,
    values: Sequence[float],
    stamps: Sequence[float],
    pid: Optional[str],
    source: str,
    dead: bool = False,
) -> None:
    """``scrape.add(plan.entries, values, stamps, pid, source, dead)``, in bulk (module doc)."""
    # A conflict sends the file entry by entry (which logs what is left to log).
    if not all(scrape.joins(entry, source) for entry in plan.starts):
        scrape.add(plan.entries, values, stamps, pid, source, dead)
        return
    metas = scrape.metas
    for family, mode in plan.modes.items():
        metas[family].mode = mode
    at, slots = plan.sums
    _add_into(scrape.sums, slots, map(values.__getitem__, at))
    at, folds = plan.totals_dead if dead else plan.totals
    _add_into(scrape.totals, folds, map(values.__getitem__, at))
    pid_label = None if pid is None else ("pid", pid)  # a process's file: it labels the series
    at, own = plan.alls_dead if dead else plan.alls
    keys = own if pid_label is None else zip(map(operator.itemgetter(0), own), repeat(pid_label))
    scrape.alls.update(zip(keys, map(values.__getitem__, at)))
    entries, put = plan.entries, scrape.put
    for at_one in plan.rest:
        put(entries[at_one], values[at_one], stamps[at_one], pid_label, dead)


def _add_into(sums: dict[int, float], keys: list[int], values: Iterable[float]) -> None:
    """``sums[k] = sums.get(k, 0.0) + v`` for each pair in turn, in one C call."""
    sums.update(zip(keys, map(operator.add, map(sums.get, keys, repeat(0.0)), values)))
