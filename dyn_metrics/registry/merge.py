"""The scrape plan: which families a scrape covers, and how they are merged.

A *plan* maps each family name to the collectors that hold it, registry by
registry, in traversal order (a :class:`~dyn_metrics.registry.Registry` makes
one per scrape). From it:

* :func:`selected_names` picks the names a ``name[]`` scrape asked for, by
  name and type, before anything is read;
* :func:`merge` builds one family across registries as Dynamo does: the first
  registry with samples fixes HELP and TYPE (a later disagreement raises
  :class:`DescriptorConflictError`), a repeated series is dropped with a
  warning (first wins), samples follow registry order;
* :func:`merge_parsed` adds the families parsed from exposition-text
  callbacks to the native ones for OpenMetrics (natives win), and
  :func:`openmetrics_expressible` leaves out what OpenMetrics cannot express;
* :func:`join_texts` joins callback texts with Dynamo's rule.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Optional, Protocol

from ..errors import DescriptorConflictError
from ..exposition import select
from ..exposition import text as expfmt
from ..metrics import Desc
from ..model import OPENMETRICS_SUFFIXES, Family, Labels, Sample

_log = logging.getLogger(__name__)


#: One child's labels and samples, as a collector gives them.
Group = tuple[Labels, tuple[Sample, ...]]


class Collector(Protocol):
    """What a registry needs of a collector: every metric and Vec is one."""

    @property
    def desc(self) -> Desc: ...

    def describe(self) -> list[Desc]: ...

    def collect_groups(self, created: bool = False) -> list[Group]: ...

    def write_text(self, write: Callable[[str], object]) -> None: ...


#: ``{family name: [[collectors of one registry], ...]}`` in registry order.
Plan = dict[str, list[list[Collector]]]


def selected_names(plan: Plan, wanted: Optional[frozenset[str]]) -> list[str]:
    """The family names of ``plan`` to scrape, sorted; all of them when ``wanted`` is None.

    A family is chosen by its name and the type of any of its collectors
    (a merge takes one of those types, or fails), before anything is read.
    """
    if wanted is None:
        return sorted(plan)
    return [
        name
        for name in sorted(plan)
        if any(
            not select.wanted_names(name, t).isdisjoint(wanted)
            for t in {c.desc.type for collectors in plan[name] for c in collectors}
        )
    ]


def merge_plan(plan: Plan, names: Iterable[str], created: bool) -> list[Family]:
    """The merged families ``names`` of ``plan``, in that order, empty ones left out."""
    families = []
    for name in names:
        family = merge(name, plan[name], created)
        if family is not None:
            families.append(family)
    return families


def join_texts(texts: Iterable[str]) -> str:
    """Join texts, skipping empty ones and adding ``\\n`` only where one is missing."""
    out = ""
    for text in texts:
        if not text:
            continue
        if out and not out.endswith("\n"):
            out += "\n"
        out += text
    return out


def _group_sort_key(group: Group) -> tuple[object, ...]:
    pairs = group[0]
    return (len(pairs),) + tuple(v for _, v in pairs)


def local_groups(collectors: Sequence[Collector], created: bool = False) -> list[Group]:
    """One registry's groups for one name: rust-prometheus merges and sorts them."""
    if len(collectors) == 1:
        return collectors[0].collect_groups(created)
    groups = [g for c in collectors for g in c.collect_groups(created)]
    groups.sort(key=_group_sort_key)
    return groups


def merge(
    name: str, sources: Iterable[Sequence[Collector]], created: bool = False
) -> Optional[Family]:
    """Merge one family across registries (first wins); None if it has no samples."""
    first: Optional[Desc] = None
    seen: set[Labels] = set()
    samples: list[Sample] = []
    for collectors in sources:
        groups = local_groups(collectors, created)
        if not groups:
            continue
        desc = collectors[0].desc
        if first is None:
            first = desc
        elif (desc.help, desc.type) != (first.help, first.type):
            raise DescriptorConflictError(
                f"Metric family '{name}' has inconsistent help/type across sources: "
                f"{first.type} {first.help!r} then {desc.type} {desc.help!r}"
            )
        for pairs, group in groups:
            identity = tuple(sorted(pairs))
            if identity in seen:
                _log.warning(
                    "Duplicate Prometheus series while merging; dropping later sample: %s%s",
                    name,
                    expfmt.format_labels(pairs),
                )
                continue
            seen.add(identity)
            samples.extend(group)
    if first is None:
        return None
    return Family(name, first.type, first.help, tuple(samples))


def _series_identity(sample: Sample) -> Labels:
    return tuple(sorted(p for p in sample.labels if p[0] not in ("le", "quantile")))


def merge_parsed(families: Iterable[Family], extra: Iterable[Family]) -> list[Family]:
    """Native families plus parsed callback families, merged by name (natives win)."""
    by_name = {f.name: f for f in families}
    for family in extra:
        native = by_name.get(family.name)
        if native is None:
            by_name[family.name] = family
            continue
        if (native.type, native.help) != (family.type, family.help):
            _log.error(
                "Metric family '%s' has inconsistent help/type across sources; "
                "dropping the exposition-text callback's family",
                family.name,
            )
            continue
        seen = {_series_identity(s) for s in native.samples}
        kept = [s for s in family.samples if _series_identity(s) not in seen]
        if len(kept) < len(family.samples):
            _log.warning(
                "Duplicate Prometheus series while merging; dropping later sample of %s",
                family.name,
            )
        by_name[family.name] = native._replace(samples=native.samples + tuple(kept))
    return [by_name[name] for name in sorted(by_name)]


def openmetrics_expressible(
    families: Iterable[Family], family_name: Callable[[Family], str]
) -> list[Family]:
    """``families`` less those OpenMetrics cannot express (each one logged)."""
    taken: set[str] = set()
    kept = []
    for family in families:
        name = family_name(family)
        claimed = {name} | {name + suffix for suffix in OPENMETRICS_SUFFIXES.get(family.type, ())}
        reserved = sorted({k for s in family.samples for k, _ in s.labels if k.startswith("_")})
        if name.startswith("_") or reserved:
            _log.error(
                "family %r left out of the OpenMetrics scrape: names starting with '_' "
                "are reserved there (%s)",
                family.name,
                ", ".join(reserved) or name,
            )
        elif claimed & taken:
            _log.error(
                "family %r left out of the OpenMetrics scrape: its samples would clash "
                "with an earlier family's (%s)",
                family.name,
                ", ".join(sorted(claimed & taken)),
            )
        else:
            taken |= claimed
            kept.append(family)
    return kept
