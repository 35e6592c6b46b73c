"""Registry: collectors, child registries and scrape-time callbacks.

This is Dynamo's ``MetricsRegistry``: a rust-prometheus registry of local
collectors, plus child registries (in insertion order, added once each) and
two lists of callbacks. Scraping a registry covers it and every descendant,
in the steps of Dynamo's ``prometheus_expfmt()``:

1. registries are visited depth-first, pre-order, each once;
2. update callbacks run, registry by registry; a failing one is logged;
3. each registry's families are gathered (rust-prometheus ``gather``: same
   names merged, children sorted by label values, empty families dropped)
   and merged by name: the first registry fixes HELP and TYPE (a later
   disagreement raises :class:`DescriptorConflictError`), a repeated series
   is dropped with a warning (first wins);
4. the families are encoded sorted by name;
5. exposition-text callbacks' texts are appended, joined as Dynamo joins
   them (:func:`join_texts`): valid text byte for byte, but a family block
   that does not parse or repeats a name already in the exposition is
   dropped, logged once per (callback, reason) and counted
   (:mod:`.callbacks`), so the served exposition is always valid.

Objects with ``collect()`` returning ``Family`` records register too
(:mod:`.custom`). A scrape may ask for some families only (``name[]``):
they are selected by name and type before they are read
(:mod:`dyn_metrics.exposition.select`); callback text is cut by family block.

Thread safety: registration and callback lists are guarded by a re-entrant
lock; a scrape copies what it needs under it and runs callbacks and encoders
outside, so a scrape from a signal handler in the middle of another scrape on
the same thread does not deadlock.

Here: :class:`Registry`, :data:`REGISTRY`; ``merge.py`` the scrape plan;
``callbacks.py`` callback text; ``custom.py`` custom collectors; ``formats.py``
the families that OpenMetrics and protobuf scrapes encode; ``stats.py``
the counts (:func:`stats`) for self metrics; ``sources.py`` sources.
"""

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Optional, TypeVar, cast

from ..errors import AlreadyRegisteredError, DescriptorConflictError, InvalidValueError, LazyLogger
from ..exposition import select
from ..exposition import text as expfmt
from ..model import Family, Labels
from . import callbacks
from .merge import (
    Collector,
    Plan,
    join_texts,
    merge,
    merge_plan,
    selected_names,
)
from .stats import count_callback_error, stats

if TYPE_CHECKING:  # custom.py is imported with the first custom collector
    from .custom import CustomCollector

__all__ = ["REGISTRY", "Collector", "Registry", "join_texts", "stats"]

_log = LazyLogger(__name__)

_T = TypeVar("_T")


class Registry:
    """Collectors plus child registries and callbacks (Dynamo's ``MetricsRegistry``).

    ``created=True`` makes counters and histograms registered here remember
    when each child was created, and OpenMetrics scrapes write those times as
    ``_created`` samples (text 0.0.4 has no place for them).
    """

    def __init__(self, created: bool = False) -> None:
        self._created = bool(created)
        # Re-entrant: a signal handler, gc callback or finalizer that scrapes
        # or registers while its own thread is inside one of these short
        # critical sections (list copies, registration) must not deadlock.
        self._lock = threading.RLock()
        self._collectors: list[Collector] = []  # registration order
        self._by_identity: dict[tuple[str, Labels], Collector] = {}  # (name, const labels)
        self._by_name: dict[str, list[Collector]] = {}
        self._children: list[Registry] = []
        # Custom collectors (``custom.py``) and the names their describe() reserves.
        self._custom: list[CustomCollector] = []
        self._described: set[str] = set()
        self._update_callbacks: list[Callable[[], object]] = []
        self._expfmt_callbacks: list[Callable[[], str]] = []
        self._screener = callbacks.Screener()

    # -- registration -----------------------------------------------------

    def register(self, collector: _T) -> _T:
        """Register a collector: any metric or vec, or any object with ``collect()``.

        Raises :class:`AlreadyRegisteredError` for the same collector or one
        with the same name and constant labels, :class:`DescriptorConflictError`
        for the same name with a different help, type or label-name set. A
        failed call registers nothing. An object with ``collect()`` returning
        :class:`~dyn_metrics.model.Family` records is a custom collector
        (``custom.py``): the names its optional ``describe()`` gives are
        reserved here, and refused when taken.
        """
        if not hasattr(collector, "collect_groups"):  # custom (custom.py), or refused there
            from .custom import CustomCollector

            self._register_custom(CustomCollector(collector))
            return collector
        native = cast(Collector, collector)
        descs = native.describe()
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
                existing: object = self._by_identity.get(desc.identity())
                if existing is None and desc.name in self._described:
                    existing = next(c.target for c in self._custom if desc.name in c.names())
                if existing is not None:
                    raise AlreadyRegisteredError(
                        "Duplicate metrics collector registration attempted: "
                        f"{desc.name!r} with constant labels {dict(desc.const_labels)!r} "
                        "is already registered",
                        existing=existing,
                        new=collector,
                    )
            track_created = getattr(collector, "track_created", None)
            if self._created and track_created is not None:
                track_created()
            self._collectors.append(native)
            for desc in descs:
                self._by_identity[desc.identity()] = native
                self._by_name.setdefault(desc.name, []).append(native)
        return collector

    def _register_custom(self, adapter: "CustomCollector") -> None:
        callbacks.load_parser()  # its families are screened (see add_expfmt_callback)
        with self._lock:
            target = adapter.target
            clash = adapter.names() & (self._described | set(self._by_name))
            if any(c.target is target for c in self._custom) or clash:
                what = f"its family names {sorted(clash)!r} are taken" if clash else "it is here"
                raise AlreadyRegisteredError(
                    f"Duplicate metrics collector registration attempted: {target!r}: {what}",
                    existing=target,
                    new=target,
                )
            self._custom.append(adapter)
            self._described |= adapter.names()

    def unregister(self, collector: object) -> None:
        """Remove a registered collector; raises :class:`KeyError` if it is not here."""
        with self._lock:
            for i, adapter in enumerate(self._custom):
                if adapter.target is collector:
                    del self._custom[i]
                    self._described = {n for c in self._custom for n in c.names()}
                    return
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

    def has_metric_named(self, name: str) -> bool:
        """True if a local collector has family ``name`` with samples (Dynamo's rule)."""
        return any(f.name == name for f in self.gather())

    def add_child_registry(self, child: "Registry") -> None:
        """Include ``child`` (and its descendants) in this registry's scrapes; idempotent."""
        if not isinstance(child, Registry):
            raise TypeError(f"child registry must be a Registry, got {child!r}")
        with self._lock:
            if not any(c is child for c in self._children):
                self._children.append(child)

    # -- callbacks --------------------------------------------------------

    def add_update_callback(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` before every scrape of this registry or an ancestor."""
        _check_callable(callback)
        with self._lock:
            self._update_callbacks.append(callback)

    def add_expfmt_callback(self, callback: Callable[[], str]) -> None:
        """Append ``callback()``'s text (a ``str``) to every scrape, screened (module docstring)."""
        _check_callable(callback)
        # The screening parses the text: import the parser now, in ordinary
        # code, not first in a scrape, which may run in a signal handler that
        # interrupted the main thread's own first import of it.
        callbacks.load_parser()
        with self._lock:
            self._expfmt_callbacks.append(callback)

    def execute_update_callbacks(self) -> list[Optional[Exception]]:
        """Run this registry's update callbacks; ``[None or exception]`` in order."""
        with self._lock:
            callbacks = list(self._update_callbacks)
        results: list[Optional[Exception]] = []
        for callback in callbacks:
            try:
                callback()
                results.append(None)
            except Exception as exc:  # a user callback must never break a scrape
                count_callback_error("update")
                _log.exception("metrics update callback failed: %r", callback)
                results.append(exc)
        return results

    def execute_expfmt_callbacks(self) -> str:
        """This registry's exposition-text callbacks' texts, joined as Dynamo joins them.

        Empty texts are skipped and a newline is added between two texts only
        where the first lacks one (:func:`join_texts`); a failing or non-text
        callback is logged and contributes nothing. The texts are not
        screened: a scrape screens them (see the module docstring).
        """
        return join_texts(text for _, text in self._expfmt_texts())

    def _expfmt_texts(self) -> list[tuple[Callable[[], str], str]]:
        """``(callback, text)`` of this registry's exposition-text callbacks; failures logged."""
        with self._lock:
            texts = list(self._expfmt_callbacks)
        return callbacks.run_texts(texts)

    def _screened_texts(
        self, registries: Sequence["Registry"], taken: Callable[[], set[str]]
    ) -> list[tuple[callbacks.Source, str, list[callbacks.Block]]]:
        """Every callback's text to serve, screened in scrape order (:mod:`.callbacks`).

        ``taken()`` gives the names the native families take; it is called
        only when some callback returned text.
        """
        sources: list[callbacks.Source] = [
            (callback, reg._screener, reg._screener.screened(callback, text))
            for reg in registries
            for callback, text in reg._expfmt_texts()
            if text
        ]
        if not sources:
            return []
        return callbacks.keep(sources, taken())

    # -- collection -------------------------------------------------------

    def registries(self) -> list["Registry"]:
        """This registry and its descendants: depth-first, pre-order, each once."""
        order: list[Registry] = []
        seen: set[int] = set()
        stack: list[Registry] = [self]
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

    def _collectors_by_name(self) -> dict[str, list[Collector]]:
        """``{name: collectors}`` of this registry, custom collectors' families included.

        Runs the custom collectors (outside the lock); raises
        :class:`DescriptorConflictError` when one returns a family whose
        name another collector here has with a different help or type.
        """
        with self._lock:
            local = {name: list(cs) for name, cs in self._by_name.items()}
            custom = list(self._custom)
        if custom:
            from .custom import add_custom_families

            add_custom_families(local, custom)
        return local

    def gather(self) -> list[Family]:
        """The local families (rust-prometheus ``gather``), sorted by name."""
        plan = {name: [cs] for name, cs in self._collectors_by_name().items()}
        return merge_plan(plan, sorted(plan), created=False)

    def _plan(self, registries: Iterable["Registry"]) -> Plan:
        """``{name: [[collectors of one registry], ...]}`` over ``registries``, in order."""
        plan: Plan = {}
        for reg in registries:
            for name, collectors in reg._collectors_by_name().items():
                plan.setdefault(name, []).append(collectors)
        return plan

    def collect(
        self, registries: Optional[Sequence["Registry"]] = None, created: bool = False
    ) -> list[Family]:
        """Merged families of this registry and its descendants, sorted by name.

        Runs no callbacks. ``created`` adds the ``_created`` samples of
        collectors that track them (for OpenMetrics). Raises
        :class:`DescriptorConflictError` when two registries disagree on a
        family's HELP or TYPE.
        """
        plan = self._plan(self.registries() if registries is None else registries)
        return merge_plan(plan, sorted(plan), created)

    def openmetrics_expfmt(self, names: Optional[Collection[str]] = None) -> str:
        """The combined scrape of this registry in OpenMetrics 1.0.

        The same steps as :meth:`prometheus_expfmt`, with the same screening
        of exposition-text callbacks; the kept blocks are re-encoded, and
        families OpenMetrics cannot express are left out with a log line
        (:func:`.formats.scrape_families` gives the details). ``names``
        (``name[]``) keeps only the families it selects, by family or sample
        name in either format's spelling; None keeps all.
        """
        # Imported on first use: a process that only serves text never pays
        # for the OpenMetrics encoder.
        from ..exposition import openmetrics as omfmt
        from .formats import scrape_families

        return omfmt.encode_to_string(scrape_families(self, names, openmetrics=True))

    def protobuf_expfmt(self, names: Optional[Collection[str]] = None) -> bytes:
        """The combined scrape of this registry in the Prometheus protobuf format (delimited).

        The families of :meth:`openmetrics_expfmt` (callback blocks re-encoded,
        ``_created`` samples included) without its OpenMetrics-only rules,
        encoded as ``io.prometheus.client.MetricFamily`` messages, native
        histograms with their exponential buckets. ``names`` as there.
        """
        from ..exposition import protobuf as pbfmt
        from .formats import scrape_families

        return pbfmt.encode(scrape_families(self, names, openmetrics=False))

    def prometheus_expfmt(self, names: Optional[Collection[str]] = None) -> str:
        """The combined text 0.0.4 scrape of this registry: every step of the module docstring.

        ``names`` (``name[]``) keeps only the families it selects, by family
        or sample name in either format's spelling: native families are
        chosen before they are read, callback text is cut by family block.
        None keeps all, byte for byte as without it.
        """
        wanted = None if names is None else frozenset(names)
        registries = self.registries()
        for reg in registries:
            reg.execute_update_callbacks()
        plan = self._plan(registries)
        parts: list[str] = []
        written: list[str] = []
        for name in selected_names(plan, wanted):
            sources = plan[name]
            before = len(parts)
            if len(sources) == 1 and len(sources[0]) == 1:
                # One collector owns this name: nothing to merge, so it can
                # write its text directly (the same bytes, much faster).
                sources[0][0].write_text(parts.append)
            else:
                family = merge(name, sources)
                if family is not None:
                    expfmt.write_families(parts.append, (family,))
            if len(parts) > before:
                written.append(name)
        text = "".join(parts)
        served = self._screened_texts(
            registries,
            lambda: callbacks.native_claims(
                (name, {c.desc.type for cs in plan[name] for c in cs}) for name in written
            ),
        )
        extra = join_texts(t for _, t, _ in served)
        if extra and wanted is not None:
            extra = select.filter_text(extra, wanted)
        if extra:
            if not text.endswith("\n"):
                text += "\n"
            text += extra
            if not extra.endswith("\n"):
                # A last line without its newline is not valid text format.
                text += "\n"
        return text

    def __repr__(self) -> str:
        count = len(self._collectors) + len(self._custom)
        return f"<Registry collectors={count} children={len(self._children)}>"


def _check_callable(callback: object) -> None:
    if not callable(callback):
        raise InvalidValueError(f"callback must be callable, got {callback!r}")


#: The process-wide default registry (no prefix, no automatic labels), where a
#: source of None points. Nothing registers itself here: register explicitly.
REGISTRY = Registry()
