"""Custom collectors: objects whose ``collect()`` returns ``dyn_metrics.model.Family`` records.

``Registry.register(obj)`` takes, besides the metrics of this package, any
object with a ``collect()`` method (prometheus_client's protocol, with this
package's plain records): the default collectors (``ProcessCollector``,
``PlatformCollector``, ``GCCollector``) are such objects, and so is a user's
bridge to another system. :class:`CustomCollector` adapts one for the scrape:

* ``collect()`` runs at every scrape, outside every lock of the package; an
  exception is logged and counted (``dyn_metrics_callback_errors_total``,
  kind ``typed``) and that collector adds nothing to that scrape;
* each family it returns is checked before it is served: it must be a
  ``Family`` of ``Sample`` records with string names and labels and real
  number values, and its text 0.0.4 rendering must pass the strict parser
  (so a histogram without ``+Inf``, a duplicate series or a bad name is
  caught). A family that fails is dropped, counted in
  ``dyn_metrics_dropped_families_total`` and logged once per (collector,
  reason) per registry; the rest of the scrape is served. The parse of an
  unchanged rendering is reused, so a steady collector costs one string
  comparison per scrape.
* ``describe()`` is optional. When present, the families it returns (samples
  are not needed) reserve their names at registration, so a clash with an
  existing metric is refused there; without it a clash shows at scrape, as
  :class:`DescriptorConflictError` when help or type differ.

Each served family joins the scrape plan as a :class:`FamilySource`, a
collector of one ready family, and is merged with the rest exactly as
native families are.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Optional

from ..errors import DescriptorConflictError, InvalidValueError
from ..exposition import text as expfmt
from ..metrics import Desc
from ..model import (
    HISTOGRAM,
    STATESET,
    SUMMARY,
    Family,
    Labels,
    Sample,
)
from . import callbacks
from .family_checks import shape_problem, structure_of, text_family, value_problem
from .stats import count_callback_error, count_dropped_families

_log = logging.getLogger(__name__)

#: One child's labels and samples, as a collector gives them.
Group = tuple[Labels, tuple[Sample, ...]]

#: The label that tells a family's samples of one metric apart, per type.
_INNER_LABEL = {HISTOGRAM: "le", SUMMARY: "quantile"}


def family_desc(family: Family) -> Desc:
    """A :class:`Desc` carrying a checked family's metadata (no labels of its own)."""
    desc = Desc.__new__(Desc)
    desc.name, desc.help, desc.type, desc.unit = family.name, family.help, family.type, family.unit
    desc.const_labels, desc.label_names, desc.buckets = (), (), None
    return desc


class FamilySource:
    """A collector of one ready family (a custom collector's, checked), for the scrape plan."""

    __slots__ = ("family", "desc")

    def __init__(self, family: Family) -> None:
        self.family = family
        self.desc = family_desc(family)

    def describe(self) -> list[Desc]:
        return [self.desc]

    def collect_groups(self, created: bool = False) -> list[Group]:
        """The family's samples grouped by metric (label set less ``le``/``quantile``/state)."""
        family = self.family if created else text_family(self.family)
        inner = _INNER_LABEL.get(family.type, family.name if family.type == STATESET else "")
        groups: dict[Labels, list[Sample]] = {}
        for sample in family.samples:
            key = tuple(p for p in sample.labels if p[0] != inner)
            groups.setdefault(key, []).append(sample)
        return [(key, tuple(samples)) for key, samples in groups.items()]

    def write_text(self, write: Callable[[str], object]) -> None:
        expfmt.write_families(write, (text_family(self.family),))


#: Structures kept as known-good per collector before the set starts over.
_KNOWN_LIMIT = 4096


class _Running(threading.local):
    """The custom collectors this thread is collecting (a nested call gets nothing)."""

    def __init__(self) -> None:
        self.adapters: list[CustomCollector] = []


_RUNNING = _Running()


class CustomCollector:
    """The registry's view of one object registered with ``collect()`` (module docstring)."""

    __slots__ = ("target", "described", "_texts", "_logged", "_known")

    def __init__(self, target: object) -> None:
        if not callable(getattr(target, "collect", None)):
            raise InvalidValueError(
                "a collector must be a metric of this package or have a collect() method "
                f"returning dyn_metrics.Family records, got {target!r}"
            )
        self.target = target
        # {family name: (its last text, the problem found in it)}: one parse per change.
        self._texts: dict[str, tuple[str, Optional[str]]] = {}
        # Structures judged good (see family_checks.py), a bounded set.
        self._known: dict[object, bool] = {}
        self._logged: dict[str, object] = {}  # what was logged (dict.setdefault: atomic)
        self.described: tuple[Family, ...] = ()
        describe = getattr(target, "describe", None)
        if callable(describe):
            families = tuple(describe())
            for family in families:
                problem = shape_problem(family)
                if problem is not None:
                    raise InvalidValueError(f"describe() of {target!r}: {problem}")
            self.described = families

    def families(self) -> list[Family]:
        """What ``collect()`` returns now, checked; failures logged and counted, never raised.

        A failure is counted every time and logged once per exception type; a
        ``collect()`` that scrapes its own registry gets nothing from itself
        (a nested call on the same thread adds no families) instead of recursing.
        """
        running = _RUNNING.adapters
        if self in running:
            return []
        collect: Callable[[], object] = getattr(self.target, "collect")  # noqa: B009
        running.append(self)
        try:
            given = collect()
            got: Sequence[object] = list(given)  # type: ignore[call-overload]  # any iterable
        except Exception as exc:
            count_callback_error("typed")
            if self._logged.setdefault(f"raised:{type(exc).__name__}", exc) is exc:
                _log.exception(
                    "custom collector %r failed; it adds nothing to the scrape (logged once "
                    "per error type, counted in dyn_metrics_callback_errors_total)",
                    self.target,
                )
            return []
        finally:
            running.pop()
        kept: list[Family] = []
        known = self._known
        for family in got:
            key = structure_of(family) if isinstance(family, Family) else None
            if key is not None and key in known:
                # A structure judged before: only what its values can break.
                problem = value_problem(family)  # type: ignore[arg-type]  # a Family: it has a key
            else:
                problem = shape_problem(family)
                if problem is None:
                    assert isinstance(family, Family)
                    problem = self._text_problem(family)
                if problem is None and key is not None:
                    if len(known) >= _KNOWN_LIMIT:
                        known.clear()  # bounded: a collector whose structures churn re-checks
                    known[key] = True
            if problem is None:
                assert isinstance(family, Family)
                kept.append(family)
                continue
            count_dropped_families()
            # Logged once per family name: dict.setdefault is atomic, no lock.
            name = getattr(family, "name", None)
            logged = name if isinstance(name, str) else type(family).__name__
            token = object()
            if self._logged.setdefault(logged, token) is token:
                _log.error(
                    "custom collector %r: a family is dropped from the scrape (%s); "
                    "logged once, counted in dyn_metrics_dropped_families_total",
                    self.target,
                    problem,
                )
        return kept

    def _text_problem(self, family: Family) -> Optional[str]:
        family = text_family(family)
        if not family.samples:
            return None
        try:
            text = expfmt.encode_to_string((family,))
        except (TypeError, ValueError, OverflowError) as exc:
            return f"family {family.name!r} cannot be written: {exc}"
        cached = self._texts.get(family.name)
        if cached is not None and cached[0] == text:
            return cached[1]
        blocks = callbacks.screen(text).blocks
        problem = None
        for block in blocks:
            if block.families is None:
                problem = f"family {family.name!r} is not valid exposition: {block.error}"
                break
        else:
            if len(blocks) != 1:
                problem = f"family {family.name!r} is not valid exposition: it writes several"
        self._texts[family.name] = (text, problem)  # one store: a racing scrape re-parses
        return problem

    def names(self) -> set[str]:
        """The family names ``describe()`` reserves (none without it)."""
        return {f.name for f in self.described}

    def __repr__(self) -> str:
        return f"<CustomCollector {self.target!r}>"


def add_custom_families(local: dict[str, list[Any]], adapters: Sequence[CustomCollector]) -> None:
    """Add the families ``adapters`` collect now to one registry's ``{name: collectors}``.

    Raises :class:`DescriptorConflictError` for a family whose name is there
    already with a different help or type, or whose text 0.0.4 names (its
    own and its samples') another family of the registry writes: two
    families would write the same series or TYPE line (registration could
    not see it coming without ``describe()``).
    """
    taken: dict[str, str] = {}  # a name written -> the family writing it
    for name, collectors in local.items():
        for claimed in callbacks.claims(name, collectors[0].desc.type):
            taken.setdefault(claimed, name)
    for adapter in adapters:
        for family in adapter.families():
            writes = callbacks.claims(family.name, family.type) | {s.name for s in family.samples}
            clash = sorted(n for n in writes if taken.get(n, family.name) != family.name)
            if clash:
                raise DescriptorConflictError(
                    f"custom collector {adapter.target!r} returned family {family.name!r}, "
                    f"which writes {clash[0]!r} as family {taken[clash[0]]!r} does"
                )
            for n in writes:
                taken.setdefault(n, family.name)
            same = local.setdefault(family.name, [])
            if same:
                desc = same[0].desc
                if (desc.type, desc.help) != (family.type, family.help):
                    raise DescriptorConflictError(
                        f"custom collector {adapter.target!r} returned family "
                        f"{family.name!r} ({family.type} {family.help!r}), which is registered "
                        f"as {desc.type} {desc.help!r}"
                    )
            same.append(FamilySource(family))
