"""Registry: collectors, child registries and scrape-time callbacks.

This is Dynamo's ``MetricsRegistry``: a rust-prometheus registry of local
collectors, plus child registries (in insertion order, added once each) and
two lists of callbacks. Scraping a registry covers it and every descendant
(``dynamo-metrics.md`` section 4.1):

1. registries are visited depth-first, pre-order, each once;
2. update callbacks run, registry by registry; a failing one is logged;
3. each registry's families are gathered (rust-prometheus ``gather``: same
   names merged, children sorted by label values, empty families dropped)
   and merged by name: the first registry fixes HELP and TYPE (a later
   disagreement raises :class:`DescriptorConflictError`), a repeated series
   is dropped with a warning (first wins);
4. the families are encoded sorted by name;
5. exposition-text callbacks' texts are appended verbatim.

Thread safety: registration and callback lists are guarded by a lock; a
scrape copies what it needs under it and runs callbacks and encoders outside.
"""

import logging
import threading

from .errors import AlreadyRegisteredError, DescriptorConflictError, InvalidValueError, ParseError
from .exposition import text as expfmt
from .model import Family

_log = logging.getLogger(__name__)


class Registry:
    """Collectors plus child registries and callbacks (Dynamo's ``MetricsRegistry``).

    ``created=True`` makes counters and histograms registered here remember
    when each child was created, and OpenMetrics scrapes write those times as
    ``_created`` samples (text 0.0.4 has no place for them).
    """

    def __init__(self, created=False):
        self._created = bool(created)
        self._lock = threading.Lock()
        self._collectors = []  # registration order
        self._by_identity = {}  # (name, const labels) -> collector
        self._by_name = {}  # name -> [collectors]
        self._children = []
        self._update_callbacks = []
        self._expfmt_callbacks = []

    # -- registration -----------------------------------------------------

    def register(self, collector):
        """Register a collector (any metric or vec).

        Raises :class:`AlreadyRegisteredError` for the same collector or one
        with the same name and constant labels, :class:`DescriptorConflictError`
        for the same name with a different help, type or label-name set. A
        failed call registers nothing.
        """
        descs = collector.describe()
        with self._lock:
            if any(c is collector for c in self._collectors):
                raise AlreadyRegisteredError(
                    "Duplicate metrics collector registration attempted: "
                    f"{collector!r} is already registered",
                    existing=collector,
                    new=collector,
                )
            for desc in descs:
                # rust-prometheus' order: a differing help, type or label-name
                # set is a conflict even when the constant labels are the same.
                for other in self._by_name.get(desc.name, ()):
                    if other.desc.dimensions() != desc.dimensions():
                        raise DescriptorConflictError(
                            "a previously registered descriptor with the same "
                            f"fully-qualified name as {desc!r} has different label "
                            f"names or a different help string (registered: {other.desc!r})"
                        )
                existing = self._by_identity.get(desc.identity())
                if existing is not None:
                    raise AlreadyRegisteredError(
                        "Duplicate metrics collector registration attempted: "
                        f"{desc.name!r} with constant labels {dict(desc.const_labels)!r} "
                        "is already registered",
                        existing=existing,
                        new=collector,
                    )
            if self._created and hasattr(collector, "track_created"):
                collector.track_created()
            self._collectors.append(collector)
            for desc in descs:
                self._by_identity[desc.identity()] = collector
                self._by_name.setdefault(desc.name, []).append(collector)
        return collector

    def unregister(self, collector):
        """Remove a registered collector; raises :class:`KeyError` if it is not here."""
        with self._lock:
            for i, c in enumerate(self._collectors):
                if c is collector:
                    del self._collectors[i]
                    break
            else:
                raise KeyError(f"{collector!r} is not registered")
            for desc in collector.describe():
                self._by_identity.pop(desc.identity(), None)
                same = [c for c in self._by_name.get(desc.name, ()) if c is not collector]
                if same:
                    self._by_name[desc.name] = same
                else:
                    self._by_name.pop(desc.name, None)

    def has_metric_named(self, name):
        """True if a local collector has family ``name`` with samples (Dynamo's rule)."""
        return any(f.name == name for f in self.gather())

    def add_child_registry(self, child):
        """Include ``child`` (and its descendants) in this registry's scrapes; idempotent."""
        if not isinstance(child, Registry):
            raise TypeError(f"child registry must be a Registry, got {child!r}")
        with self._lock:
            if not any(c is child for c in self._children):
                self._children.append(child)

    # -- callbacks --------------------------------------------------------

    def add_update_callback(self, callback):
        """Run ``callback()`` before every scrape of this registry or an ancestor."""
        _check_callable(callback)
        with self._lock:
            self._update_callbacks.append(callback)

    def add_expfmt_callback(self, callback):
        """Append ``callback()``'s text (a ``str``) to every scrape, verbatim."""
        _check_callable(callback)
        with self._lock:
            self._expfmt_callbacks.append(callback)

    def execute_update_callbacks(self):
        """Run this registry's update callbacks; ``[None or exception]`` in order."""
        with self._lock:
            callbacks = list(self._update_callbacks)
        results = []
        for callback in callbacks:
            try:
                callback()
                results.append(None)
            except Exception as exc:  # a user callback must never break a scrape
                _log.exception("metrics update callback failed: %r", callback)
                results.append(exc)
        return results

    def execute_expfmt_callbacks(self):
        """This registry's exposition-text callbacks joined by the 4.2 rule."""
        return join_texts(self._expfmt_texts())

    def _expfmt_texts(self):
        """The texts of this registry's exposition-text callbacks; failures logged."""
        with self._lock:
            callbacks = list(self._expfmt_callbacks)
        texts = []
        for callback in callbacks:
            try:
                text = callback()
            except Exception:
                _log.exception("Error executing exposition text callback: %r", callback)
                continue
            if not isinstance(text, str):
                _log.error(
                    "expfmt callback must return a string, %r returned %r",
                    callback,
                    type(text).__name__,
                )
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # It would break the whole scrape when the server encodes it.
                _log.error(
                    "expfmt callback %r returned text that is not valid Unicode "
                    "(it cannot be encoded as UTF-8); left out",
                    callback,
                )
                continue
            texts.append(text)
        return texts

    # -- collection -------------------------------------------------------

    def registries(self):
        """This registry and its descendants: depth-first, pre-order, each once."""
        order, seen, stack = [], set(), [self]
        while stack:
            reg = stack.pop()
            if id(reg) in seen:
                continue
            seen.add(id(reg))
            order.append(reg)
            with reg._lock:
                children = list(reg._children)
            stack.extend(reversed(children))
        return order

    def _collectors_by_name(self):
        with self._lock:
            return {name: list(cs) for name, cs in self._by_name.items()}

    def gather(self):
        """The local families (rust-prometheus ``gather``), sorted by name."""
        families = []
        for name, collectors in sorted(self._collectors_by_name().items()):
            groups = _local_groups(collectors)
            if groups:
                desc = collectors[0].desc
                samples = tuple(s for _, group in groups for s in group)
                families.append(Family(name, desc.type, desc.help, samples))
        return families

    def _plan(self, registries):
        """``{name: [[collectors of one registry], ...]}`` over ``registries``, in order."""
        plan = {}
        for reg in registries:
            for name, collectors in reg._collectors_by_name().items():
                plan.setdefault(name, []).append(collectors)
        return plan

    def collect(self, registries=None, created=False):
        """Merged families of this registry and its descendants, sorted by name.

        Runs no callbacks. ``created`` adds the ``_created`` samples of
        collectors that track them (for OpenMetrics). Raises
        :class:`DescriptorConflictError` when two registries disagree on a
        family's HELP or TYPE.
        """
        plan = self._plan(self.registries() if registries is None else registries)
        families = []
        for name in sorted(plan):
            family = _merge(name, plan[name], created)
            if family is not None:
                families.append(family)
        return families

    def openmetrics_expfmt(self):
        """The combined scrape of this registry in OpenMetrics 1.0.

        The same steps as :meth:`prometheus_expfmt`; each exposition-text
        callback's output is parsed as text 0.0.4 and re-encoded. Text that
        does not parse is logged and left out, and a callback family whose
        HELP or TYPE disagrees with a native one is dropped with a log line,
        so one broken engine cannot make the whole scrape invalid. Families
        that OpenMetrics cannot express (a name or label name starting with
        ``_``, which it reserves; names clashing with an earlier family's
        samples, as counter ``foo_total`` and gauge ``foo`` do) are left out
        with a log line too; the text format serves them all.
        """
        # Imported on first use: a process that only serves text never pays
        # for the OpenMetrics encoder and the parser.
        from .exposition import openmetrics as omfmt
        from .exposition.parse.reader import parse as parse_exposition

        registries = self.registries()
        for reg in registries:
            reg.execute_update_callbacks()
        families = self.collect(registries, created=True)
        for text in (t for reg in registries for t in reg._expfmt_texts() if t):
            # Each callback on its own, so one broken engine costs only its
            # own families (the text path's join rule may leave a last line
            # without its newline).
            try:
                parsed = parse_exposition(text if text.endswith("\n") else text + "\n", "text")
            except ParseError as exc:
                _log.error(
                    "exposition text callback output left out of the OpenMetrics "
                    "scrape: it is not valid text format 0.0.4: %s",
                    exc,
                )
                continue
            families = _merge_parsed(families, parsed)
        families = _openmetrics_expressible(families, omfmt.family_name)
        return omfmt.encode_to_string(families)

    def prometheus_expfmt(self):
        """The combined text 0.0.4 scrape of this registry (section 4.1, all steps)."""
        registries = self.registries()
        for reg in registries:
            reg.execute_update_callbacks()
        plan = self._plan(registries)
        parts = []
        for name in sorted(plan):
            sources = plan[name]
            if len(sources) == 1 and len(sources[0]) == 1:
                # One collector owns this name: nothing to merge, so it can
                # write its text directly (the same bytes, much faster).
                sources[0][0].write_text(parts.append)
            else:
                family = _merge(name, sources)
                if family is not None:
                    expfmt.write_families(parts.append, (family,))
        text = "".join(parts)
        extra = join_texts([reg.execute_expfmt_callbacks() for reg in registries])
        if extra:
            if not text.endswith("\n"):
                text += "\n"
            text += extra
        return text

    def __repr__(self):
        return f"<Registry collectors={len(self._collectors)} children={len(self._children)}>"


def join_texts(texts):
    """Join texts, skipping empty ones and adding ``\\n`` only where one is missing."""
    out = ""
    for text in texts:
        if not text:
            continue
        if out and not out.endswith("\n"):
            out += "\n"
        out += text
    return out


def _check_callable(callback):
    if not callable(callback):
        raise InvalidValueError(f"callback must be callable, got {callback!r}")


def _group_sort_key(group):
    pairs = group[0]
    return (len(pairs),) + tuple(v for _, v in pairs)


def _local_groups(collectors, created=False):
    """One registry's groups for one name: rust-prometheus merges and sorts them."""
    if len(collectors) == 1:
        return collectors[0].collect_groups(created)
    groups = [g for c in collectors for g in c.collect_groups(created)]
    groups.sort(key=_group_sort_key)
    return groups


def _merge(name, sources, created=False):
    """Merge one family across registries (first wins); None if it has no samples."""
    first = None
    seen = set()
    samples = []
    for collectors in sources:
        groups = _local_groups(collectors, created)
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


def _series_identity(sample):
    return tuple(sorted(p for p in sample.labels if p[0] not in ("le", "quantile")))


def _merge_parsed(families, extra):
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


# The sample names each OpenMetrics family type may write, as suffixes.
_OM_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}


def _openmetrics_expressible(families, family_name):
    """``families`` less those OpenMetrics cannot express (each one logged)."""
    taken = set()
    kept = []
    for family in families:
        name = family_name(family)
        claimed = {name} | {name + suffix for suffix in _OM_SUFFIXES.get(family.type, ())}
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
