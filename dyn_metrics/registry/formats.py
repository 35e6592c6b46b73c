"""The families of a combined scrape for the formats that re-encode records.

Text 0.0.4 is written family by family and appends callback text as it is
(``Registry.prometheus_expfmt``). OpenMetrics and the protobuf format cannot
pass text through: they encode :class:`~dyn_metrics.model.Family` records, so
the callback blocks that the screening keeps are parsed families here,
served beside the native ones. :func:`scrape_families` gives them for both.
"""

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Optional, Protocol

from ..exposition import select
from ..model import Family
from . import callbacks
from .merge import (
    Plan,
    fold_created,
    log_left_out,
    merge_plan,
    openmetrics_expressible,
    selected_names,
)
from .stats import count_dropped_families

Screened = list[tuple[callbacks.Source, str, list[callbacks.Block]]]


class Scraped(Protocol):
    """What a scrape needs of a :class:`~dyn_metrics.registry.Registry` (no import cycle)."""

    def registries(self) -> Sequence["Scraped"]: ...

    def execute_update_callbacks(self) -> object: ...

    def _plan(self, registries: Iterable[Any]) -> Plan: ...

    def _screened_texts(
        self, registries: Sequence[Any], taken: Callable[[], set[str]]
    ) -> Screened: ...


def scrape_families(
    registry: Scraped, names: Optional[Collection[str]], openmetrics: bool
) -> list[Family]:
    """The families of one scrape of ``registry`` and its descendants, sorted by name.

    The steps of a text scrape (update callbacks, the merged native families
    with their ``_created`` samples, the screened callback text, a family
    block that does not parse or repeats a name dropped, logged once per
    callback and reason, and counted), then: a ``X_created`` gauge, as
    prometheus_client's text format writes a counter's or histogram's
    creation time, becomes the ``_created`` samples of family ``X``
    (:func:`~.merge.fold_created`). With ``openmetrics``, the families
    OpenMetrics cannot express (a name or label name starting with ``_``,
    which it reserves; names clashing with an earlier family's samples, as
    counter ``foo_total`` and gauge ``foo`` do) are left out with a log line
    too, native families winning over callbacks'; the protobuf format
    serves them all.

    ``names`` (``name[]``) keeps only the families it selects, by family or
    sample name in either format's spelling, before they are read; None
    keeps all.
    """
    # The OpenMetrics names pair a `_created` gauge with its family.
    from ..exposition import openmetrics as omfmt

    wanted = None if names is None else frozenset(names)
    registries = registry.registries()
    for reg in registries:
        reg.execute_update_callbacks()
    plan = registry._plan(registries)
    families = merge_plan(plan, selected_names(plan, wanted), created=True)
    served = registry._screened_texts(
        registries, lambda: callbacks.native_claims((f.name, (f.type,)) for f in families)
    )
    # Callback families by name (unique: a repeated name was dropped).
    origin: dict[str, tuple[callbacks.Source, callbacks.Block]] = {}
    extra: list[Family] = []
    for source, _, blocks in served:
        for block in blocks:
            chosen = block.families or ()
            if wanted is not None:
                chosen = tuple(select.select_families(chosen, wanted))
            for family in chosen:
                origin[family.name] = (source, block)
                extra.append(family)

    def left_out(family: Family, why: str) -> None:
        # Counted; a callback's family logged once per callback, a native one each time.
        count_dropped_families()
        found = origin.get(family.name)
        if found is None:
            log_left_out(family, why)
            return
        (callback, screener, _), block = found
        screener.drop(callback, callbacks.INEXPRESSIBLE, block, [f"{family.name}: {why}"])

    # Natives first: they win an OpenMetrics clash with a callback's family.
    families = fold_created(families + extra, omfmt.family_name, left_out)
    if openmetrics:
        families = openmetrics_expressible(families, omfmt.family_name, left_out)
    families.sort(key=lambda f: f.name)
    return families
