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
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Optional

from ..errors import DescriptorConflictError, InvalidNameError, InvalidValueError
from ..exposition import text as expfmt
from ..metrics import Desc, check_unit
from ..model import (
    COUNTER,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    LABEL_NAME_RE,
    OPENMETRICS_TYPES,
    STATESET,
    SUMMARY,
    TEXT_TYPES,
    Exemplar,
    Family,
    Labels,
    Sample,
)
from . import callbacks
from .stats import count_callback_error, count_dropped_families

_log = logging.getLogger(__name__)

#: One child's labels and samples, as a collector gives them.
Group = tuple[Labels, tuple[Sample, ...]]

_TYPES = OPENMETRICS_TYPES | TEXT_TYPES
_CREATED = "_created"
#: The label that tells a family's samples of one metric apart, per type.
_INNER_LABEL = {HISTOGRAM: "le", SUMMARY: "quantile"}
#: Exemplar labels: at most this many characters in names and values (OpenMetrics).
_MAX_EXEMPLAR_CHARS = 128


def is_custom(collector: object) -> bool:
    """True for an object registered through the custom protocol (not a metric of this package)."""
    native = hasattr(collector, "collect_groups")
    return not native and callable(getattr(collector, "collect", None))


def family_desc(family: Family) -> Desc:
    """A :class:`Desc` carrying a checked family's metadata (no labels of its own)."""
    desc = Desc.__new__(Desc)
    desc.name, desc.help, desc.type, desc.unit = family.name, family.help, family.type, family.unit
    desc.const_labels, desc.label_names, desc.buckets = (), (), None
    return desc


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, complex)


def _labels_problem(labels: object, what: str) -> Optional[str]:
    if not isinstance(labels, tuple):
        return f"{what} labels must be a tuple of (name, value) pairs, got {labels!r}"
    for pair in labels:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            return f"{what} label {pair!r} is not a (name, value) pair"
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            return f"{what} label {pair!r} must be a pair of strings"
        if LABEL_NAME_RE.fullmatch(name) is None:
            return f"{what} label name {name!r} is not valid"
        if name.startswith("__"):
            return f"{what} label name {name!r} is reserved (names starting with '__')"
        if not _encodable(value):
            return f"{what} label {name!r} has a value that is not valid Unicode: {value!r}"
    return None


def _encodable(text: str) -> bool:
    """False for text with a lone surrogate: it would fail the whole scrape when encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _exemplar_problem(exemplar: object) -> Optional[str]:
    if not isinstance(exemplar, Exemplar):
        return f"an exemplar must be a dyn_metrics.Exemplar, got {exemplar!r}"
    problem = _labels_problem(exemplar.labels, "exemplar")
    if problem:
        return problem
    if sum(len(k) + len(v) for k, v in exemplar.labels) > _MAX_EXEMPLAR_CHARS:
        return f"exemplar labels {exemplar.labels!r} exceed {_MAX_EXEMPLAR_CHARS} characters"
    ts = exemplar.timestamp
    if not _is_number(exemplar.value) or not (ts is None or (_is_number(ts) and math.isfinite(ts))):
        return f"exemplar {exemplar!r} needs a number value and a finite timestamp"
    return None


def _openmetrics_problem(family: Family) -> Optional[str]:
    """What OpenMetrics refuses in a family whose text 0.0.4 form is fine.

    Exemplars only on counter values and histogram buckets; info values are
    1; stateset values 0 or 1, each sample carrying the state label.
    """
    t = family.type
    bucket = family.name + "_bucket"
    for s in family.samples:
        if s.exemplar is not None:
            on_counter = t == COUNTER and not _created_sample(family, s)
            on_bucket = t in (HISTOGRAM, GAUGEHISTOGRAM) and s.name == bucket
            if not (on_counter or on_bucket):
                return f"sample {s.name!r} of a {t} cannot carry an exemplar"
        if t == INFO and s.value != 1:
            return f"info sample {s.name!r} must have the value 1, got {s.value!r}"
        if t == STATESET:
            if s.value not in (0, 1):
                return f"stateset sample {s.name!r} must be 0 or 1, got {s.value!r}"
            if family.name not in dict(s.labels):
                return f"stateset sample {s.name!r} lacks its state label {family.name!r}"
    return None


def shape_problem(family: object) -> Optional[str]:
    """Why ``family`` is not a well-formed :class:`Family` of :class:`Sample`; None if it is.

    Only the record shapes and field types are checked here: the exposition
    rules (names per type, histogram buckets, duplicates) are the parser's.
    """
    if not isinstance(family, Family):
        return f"collect() must return dyn_metrics.Family records, got {family!r}"
    for field in ("name", "type", "help", "unit"):
        if not isinstance(getattr(family, field), str):
            return f"family {field} must be a string, got {getattr(family, field)!r}"
    if family.type not in _TYPES:
        return f"unknown family type {family.type!r}"
    if family.unit:
        try:
            check_unit(family.name, family.type, family.unit)
        except InvalidNameError as exc:
            return str(exc)
    if not _encodable(family.help):
        return f"help of {family.name!r} is not valid Unicode: {family.help!r}"
    if "\r" in family.help:
        # The text format has no escape for it, and parsers take it for a line end.
        return f"help of {family.name!r} contains a carriage return: {family.help!r}"
    samples: object = family.samples  # as given: any object
    if not isinstance(samples, (tuple, list)):
        return f"family samples must be a tuple of Sample, got {samples!r}"
    for sample in samples:
        if not isinstance(sample, Sample) or not isinstance(sample.name, str):
            return f"a family's samples must be dyn_metrics.Sample records, got {sample!r}"
        problem = _labels_problem(sample.labels, "sample")
        if problem:
            return problem
        if not _is_number(sample.value):
            return f"sample {sample.name!r} needs an int or float value, got {sample.value!r}"
        ts = sample.timestamp
        if ts is not None and not (_is_number(ts) and math.isfinite(ts)):
            return f"sample {sample.name!r} has a timestamp that is not a number: {ts!r}"
        if sample.exemplar is not None:
            problem = _exemplar_problem(sample.exemplar)
            if problem:
                return problem
    return _openmetrics_problem(family)


def _created_sample(family: Family, sample: Sample) -> bool:
    return (
        family.type in (COUNTER, HISTOGRAM, SUMMARY)
        and sample.name.endswith(_CREATED)
        and sample.name != family.name
    )


def text_family(family: Family) -> Family:
    """``family`` without what text 0.0.4 cannot write (``_created`` samples)."""
    if any(_created_sample(family, s) for s in family.samples):
        return family._replace(
            samples=tuple(s for s in family.samples if not _created_sample(family, s))
        )
    return family


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


class _Running(threading.local):
    """The custom collectors this thread is collecting (a nested call gets nothing)."""

    def __init__(self) -> None:
        self.adapters: list[CustomCollector] = []


_RUNNING = _Running()


class CustomCollector:
    """The registry's view of one object registered with ``collect()`` (module docstring)."""

    __slots__ = ("target", "described", "_screener", "_logged")

    def __init__(self, target: object) -> None:
        self.target = target
        self._screener = callbacks.Screener()
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
        for family in got:
            problem = shape_problem(family)
            if problem is None:
                assert isinstance(family, Family)
                problem = self._text_problem(family)
            if problem is None:
                assert isinstance(family, Family)
                kept.append(family)
                continue
            count_dropped_families()
            # Logged once per family name: dict.setdefault is atomic, no lock.
            name = getattr(family, "name", None)
            key = name if isinstance(name, str) else type(family).__name__
            token = object()
            if self._logged.setdefault(key, token) is token:
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
        screened = self._screener.screened(family.name, text)
        for block in screened.blocks:
            if block.families is None:
                return f"family {family.name!r} is not valid exposition: {block.error}"
        if len(screened.blocks) != 1:
            return f"family {family.name!r} is not valid exposition: it writes several families"
        return None

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
