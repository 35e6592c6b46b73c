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
* :func:`fold_created` turns prometheus_client's separate ``X_created``
  gauges (its text format) into the ``_created`` samples of counter,
  histogram or summary ``X`` for OpenMetrics, and
  :func:`openmetrics_expressible` leaves out what OpenMetrics cannot express;
* :func:`join_texts` joins callback texts with Dynamo's rule.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Optional, Protocol

from ..errors import DescriptorConflictError, LazyLogger
from ..exposition import select
from ..exposition import text as expfmt
from ..metrics import Desc
from ..model import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    LABEL_NAME_RE,
    METRIC_NAME_RE,
    OPENMETRICS_SUFFIXES,
    SUMMARY,
    UNTYPED,
    Family,
    Labels,
    Sample,
)

_log = LazyLogger(__name__)


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


def _is_native(desc: Desc) -> bool:
    return getattr(desc, "native", None) is not None


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
    sources = list(sources)
    if len(sources) == 1 and len(sources[0]) == 1:
        # One collector owns the name: its children are distinct, nothing to merge.
        only = sources[0][0]
        groups = only.collect_groups(created)
        if not groups:
            return None
        d = only.desc
        return Family(name, d.type, d.help, tuple(s for _, g in groups for s in g), d.unit)
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
        for collector in collectors:
            if _is_native(collector.desc) != _is_native(first):
                # Prometheus judges a protobuf family by its first metric: a mixed
                # one loses the native buckets or the classic ones.
                raise DescriptorConflictError(
                    f"Metric family '{name}' mixes native and classic histograms across sources"
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
    return Family(name, first.type, first.help, tuple(samples), first.unit)


_CREATED = "_created"
_CREATED_OWNERS = (COUNTER, HISTOGRAM, SUMMARY)


def _metric_key(family: Family, sample: Sample) -> frozenset[tuple[str, str]]:
    drop = {HISTOGRAM: "le", SUMMARY: "quantile"}.get(family.type)
    return frozenset(p for p in sample.labels if p[0] != drop)


def _with_created(owner: Family, om_name: str, gauge: Family) -> Optional[Family]:
    """``owner`` with ``gauge``'s samples as its ``_created`` ones; None if they do not fit.

    They fit when ``owner`` has no ``_created`` sample yet and each gauge
    sample has the label set of exactly one of its metrics, each one once.
    """
    if any(s.name.endswith(_CREATED) and s.name != owner.name for s in owner.samples):
        return None
    created: dict[frozenset[tuple[str, str]], Sample] = {}
    for s in gauge.samples:
        key = frozenset(s.labels)
        if key in created:
            return None
        created[key] = Sample(om_name + _CREATED, s.labels, s.value)
    last: dict[frozenset[tuple[str, str]], int] = {}
    for i, s in enumerate(owner.samples):
        last[_metric_key(owner, s)] = i
    if not set(created) <= set(last):
        return None
    after = {i: created[key] for key, i in last.items() if key in created}
    samples: list[Sample] = []
    for i, s in enumerate(owner.samples):
        samples.append(s)
        if i in after:
            samples.append(after[i])
    return owner._replace(samples=tuple(samples))


def fold_created(
    families: Sequence[Family],
    family_name: Callable[[Family], str],
    left_out: "LeftOut" = lambda family, why: log_left_out(family, why),
) -> list[Family]:
    """prometheus_client's ``X_created`` gauges folded into counter, histogram or summary ``X``.

    Its text format writes a counter's or histogram's creation time as a
    separate gauge family ``X_created``, a name OpenMetrics gives the
    ``_created`` samples of family ``X``. The gauge's samples become those
    samples when they fit (one per metric of ``X``, which has none yet);
    otherwise the gauge is left out with a log line: ``X`` wins.
    """
    owners = {family_name(f): i for i, f in enumerate(families) if f.type in _CREATED_OWNERS}
    out = list(families)
    gone: set[int] = set()
    for i, family in enumerate(families):
        if family.type not in (GAUGE, UNTYPED) or not family.name.endswith(_CREATED):
            continue
        om_name = family.name[: -len(_CREATED)]
        j = owners.get(om_name)
        if j is None:
            continue
        gone.add(i)
        folded = _with_created(out[j], om_name, family)
        if folded is None:
            left_out(family, f"its samples would clash with family {out[j].name!r}'s _created ones")
        else:
            out[j] = folded
    return [f for i, f in enumerate(out) if i not in gone]


#: Told of a family left out of an OpenMetrics scrape, and why.
LeftOut = Callable[[Family, str], None]


def log_left_out(family: Family, why: str) -> None:
    """The default :data:`LeftOut`: one ERROR line."""
    _log.error("family %r left out of the OpenMetrics scrape: %s", family.name, why)


def _legacy_names(family: Family) -> bool:
    """True when every metric and label name of ``family`` needs no quoting."""
    if METRIC_NAME_RE.fullmatch(family.name) is None:
        return False
    return all(
        METRIC_NAME_RE.fullmatch(s.name) is not None
        and all(LABEL_NAME_RE.fullmatch(k) is not None for k, _ in s.labels)
        for s in family.samples
    )


def openmetrics_expressible(
    families: Iterable[Family],
    family_name: Callable[[Family], str],
    left_out: LeftOut = log_left_out,
) -> list[Family]:
    """``families`` less those OpenMetrics cannot express, each told to ``left_out``.

    Earlier families win a clash: pass them in priority order.
    """
    taken: set[str] = set()
    kept = []
    for family in families:
        name = family_name(family)
        claimed = {name} | {name + suffix for suffix in OPENMETRICS_SUFFIXES.get(family.type, ())}
        reserved = sorted({k for s in family.samples for k, _ in s.labels if k.startswith("_")})
        if not _legacy_names(family):
            # Prometheus 3's quoted UTF-8 names: OpenMetrics 1.0 cannot write them.
            left_out(family, "OpenMetrics 1.0 has no quoted (UTF-8) metric or label names")
        elif family.type == COUNTER and any(
            not s.value >= 0 for s in family.samples if not s.name.endswith("_created")
        ):
            # Text 0.0.4 lets a counter be negative or NaN; OpenMetrics does not.
            left_out(family, "an OpenMetrics counter cannot be negative or NaN")
        elif name.startswith("_") or reserved:
            left_out(
                family,
                f"names starting with '_' are reserved there ({', '.join(reserved) or name})",
            )
        elif claimed & taken:
            left_out(
                family,
                "its samples would clash with an earlier family's "
                f"({', '.join(sorted(claimed & taken))})",
            )
        else:
            taken |= claimed
            kept.append(family)
    return kept
