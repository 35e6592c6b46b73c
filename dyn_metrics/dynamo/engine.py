"""Engine metrics pass-through: Dynamo's ``register_engine_metrics_callback``.

Dynamo's Python workers serve their engine's metrics (vLLM, SGLang and
TensorRT-LLM export with prometheus_client) beside the runtime's own, with
the hierarchy's labels added (``components/src/dynamo/common/utils/prometheus.py``).
:func:`register_engine_metrics_callback` does the same on an
:class:`~dyn_metrics.dynamo.hierarchy.Endpoint`:

* ``registry`` is read at every scrape. It may be a prometheus_client
  ``CollectorRegistry`` or collector (duck-typed: ``collect()`` yielding
  objects with ``name``, ``documentation``, ``type``, ``unit``, ``samples``,
  each sample with ``name``, ``labels``, ``value``, ``timestamp``,
  ``exemplar``; prometheus_client is never imported here), an object whose
  ``collect()`` yields :class:`~dyn_metrics.model.Family` records, a
  dyn_metrics :class:`~dyn_metrics.registry.Registry`, a callable returning
  exposition text (text 0.0.4, or OpenMetrics ending in ``# EOF``), or the
  path of a prometheus_client multiprocess directory (its ``.db`` files,
  aggregated as prometheus_client does, :mod:`dyn_metrics.multiprocess`);
* families are kept when their text 0.0.4 name (``vllm:requests_total``,
  ``build_info``) starts with one of ``metric_prefix_filters`` (all when
  empty) and with none of ``exclude_prefixes``. Dynamo filters the text line
  by line; here a family is kept or dropped whole, so a filter can never
  split a histogram;
* labels, highest precedence first: the sample's own labels (never changed);
  the automatic labels ``dynamo_namespace``, ``dynamo_component``,
  ``dynamo_endpoint`` from the endpoint's place in the hierarchy, each
  replaced by ``namespace_name``/``component_name``/``endpoint_name`` when
  given (Dynamo's explicit names win), ``worker_id`` (the runtime's worker
  id in hex, absent when it has none) and, with ``model_name``, ``model`` and
  ``model_name``; then ``inject_custom_labels``; then the deployment-wide
  ``DYN_METRICS_CONST_LABELS`` of the runtime's config.

The families join the endpoint's registry as a custom collector
(:mod:`dyn_metrics.registry.custom`), so they are checked before they are
served, merged with the runtime's by name, and written by the same encoders:
text 0.0.4 gives prometheus_client's names (``_total`` counters, ``_info``
gauges) without ``_created`` samples, OpenMetrics keeps ``_created``,
exemplars and units. That route rather than an exposition-text callback:
text would lose the OpenMetrics-only parts and be parsed back at every
scrape. A source that fails at a scrape is logged and adds nothing; the
scrape is served.

Differences from Dynamo, on purpose: bad input (a reserved ``le``/
``quantile`` or automatic label name among the custom labels, a registry of
no known kind) raises at registration instead of being logged at scrape; the
hierarchy labels come from the endpoint even without explicit names.
"""

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Optional, Union

from .. import prometheus_names as names
from ..errors import InvalidLabelsError, InvalidValueError
from ..exposition.text import text_metadata
from ..model import (
    COUNTER,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    INFO,
    LABEL_NAME_RE,
    SUMMARY,
    Exemplar,
    Family,
    Labels,
    Sample,
)
from ..multiprocess import PrometheusFilesReader
from ..registry import Registry, callbacks
from .hierarchy import Endpoint

__all__ = ["EngineMetrics", "register_engine_metrics_callback"]

_log = logging.getLogger(__name__)

_RESERVED = frozenset(("le", "quantile"))
_HIERARCHY = (names.labels.NAMESPACE, names.labels.COMPONENT, names.labels.ENDPOINT)
#: Labels the pass-through sets itself; refused among the custom labels.
_AUTO = frozenset(_HIERARCHY + (names.labels.WORKER_ID,))
_MODEL = (names.labels.MODEL, names.labels.MODEL_NAME)
#: The label kept last on a sample of each type, as the encoders expect.
_LAST = {HISTOGRAM: "le", GAUGEHISTOGRAM: "le", SUMMARY: "quantile"}

#: Where the families of one scrape come from: dm Family records, or
#: prometheus_client's (duck-typed) families.
Read = Callable[[], Iterable[Any]]
#: Served label sets remembered; past this many the memory starts afresh.
_LABEL_CACHE_LIMIT = 50_000


def register_engine_metrics_callback(
    endpoint: Endpoint,
    registry: object,
    metric_prefix_filters: Optional[Sequence[str]] = None,
    exclude_prefixes: Optional[Sequence[str]] = None,
    inject_custom_labels: Optional[Mapping[str, str]] = None,
    namespace_name: Optional[str] = None,
    component_name: Optional[str] = None,
    endpoint_name: Optional[str] = None,
    model_name: Optional[str] = None,
) -> "EngineMetrics":
    """Serve ``registry``'s metrics from ``endpoint``'s registry, labelled (module docstring).

    Returns the collector registered on ``endpoint.metrics().registry`` (its
    ``unregister`` undoes this). Raises :class:`InvalidValueError` for an
    ``endpoint`` that is not an Endpoint, a ``registry`` of no known kind, a
    path that is not a directory, a registry of the runtime's own hierarchy
    (it would read itself), bad prefixes or names; :class:`InvalidLabelsError`
    for a custom label named ``le``, ``quantile``, after an automatic label,
    invalid, or with a value that is not a string. Nothing is registered
    when it raises.
    """
    if not isinstance(endpoint, Endpoint):
        raise InvalidValueError(f"endpoint must be a dyn_metrics Endpoint, got {endpoint!r}")
    include = _prefixes(metric_prefix_filters, "metric_prefix_filters")
    exclude = _prefixes(exclude_prefixes, "exclude_prefixes")
    explicit = (namespace_name, component_name, endpoint_name)
    for what, given in zip(("namespace_name", "component_name", "endpoint_name"), explicit):
        if given is not None and not isinstance(given, str):
            raise InvalidValueError(f"{what} must be a string or None, got {given!r}")
    if model_name is not None and not isinstance(model_name, str):
        raise InvalidValueError(f"model_name must be a string or None, got {model_name!r}")
    auto = dict(endpoint._auto_labels())
    for label, given in zip(_HIERARCHY, explicit):
        if given:  # Dynamo's rule: an empty name is no name
            auto[label] = given
    if model_name:
        auto.update(dict.fromkeys(_MODEL, model_name))
    custom = _custom_labels(inject_custom_labels, _AUTO | set(auto))
    root = endpoint.parent_hierarchies()[0]
    config = getattr(root, "config", None)
    const = dict(getattr(config, "const_labels", ()))
    # Precedence, lowest first: the deployment's, the caller's, the automatic labels.
    injected = {**const, **custom, **auto}
    read = _reader(registry, endpoint)
    engine = EngineMetrics(read, registry, include, exclude, injected)
    endpoint.metrics().registry.register(engine)
    return engine


def _prefixes(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(p, str) for p in value):
        return tuple(value)
    raise InvalidValueError(f"{what} must be a list of strings or None, got {value!r}")


def _custom_labels(given: object, auto: "set[str] | frozenset[str]") -> dict[str, str]:
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InvalidLabelsError(
            f"inject_custom_labels must be a dict of label names to values, got {given!r}"
        )
    out: dict[str, str] = {}
    for name, value in given.items():
        if name in _RESERVED:
            raise InvalidLabelsError(
                f"inject_custom_labels: {name!r} is reserved for histogram buckets and "
                f"summary quantiles (reserved: {sorted(_RESERVED)!r})"
            )
        if name in auto:
            raise InvalidLabelsError(
                f"inject_custom_labels: {name!r} is set automatically (automatic labels: "
                f"{sorted(auto)!r}); pass namespace_name, component_name, endpoint_name "
                "or model_name instead"
            )
        if not isinstance(name, str) or LABEL_NAME_RE.fullmatch(name) is None:
            raise InvalidLabelsError(
                f"inject_custom_labels: label name {name!r} is not valid "
                "(expected [a-zA-Z_][a-zA-Z0-9_]*)"
            )
        if name.startswith("__"):
            raise InvalidLabelsError(
                f"inject_custom_labels: label name {name!r} starts with '__', "
                "which Prometheus reserves"
            )
        if not isinstance(value, str):
            raise InvalidLabelsError(
                f"inject_custom_labels: label {name!r} needs a string value, got {value!r}"
            )
        out[name] = value
    return out


def _reader(registry: object, endpoint: Endpoint) -> Read:
    """How to read ``registry`` at a scrape; InvalidValueError for no known kind."""
    if isinstance(registry, Registry):
        root = endpoint.parent_hierarchies()[0]
        ours = root.metrics().registry.registries()
        if any(r is registry for r in ours) or any(
            r is endpoint.metrics().registry for r in registry.registries()
        ):
            raise InvalidValueError(
                f"registry {registry!r} is part of the runtime's hierarchy: serving it "
                "through its own endpoint would read it twice or forever"
            )
        return _registry_reader(registry)
    if isinstance(registry, (str, os.PathLike)):
        path = os.fspath(registry)
        if not isinstance(path, str) or not os.path.isdir(path):
            raise InvalidValueError(
                f"registry {registry!r}: a path must name a prometheus_client multiprocess "
                "directory (PROMETHEUS_MULTIPROC_DIR)"
            )
        return PrometheusFilesReader(path).families
    collect = getattr(registry, "collect", None)
    if callable(collect):
        return collect  # type: ignore[no-any-return]  # families, duck-typed
    if callable(registry):
        return _TextReader(registry).families
    raise InvalidValueError(
        f"registry must be a prometheus_client registry or collector, a dyn_metrics "
        f"Registry, a callable returning exposition text or a multiprocess directory, "
        f"got {registry!r}"
    )


def _registry_reader(registry: Registry) -> Read:
    def read() -> list[Family]:
        # OpenMetrics keeps what the text format cannot say (created, exemplars, units).
        from ..exposition.parse.reader import parse

        return parse(registry.openmetrics_expfmt(), "openmetrics")

    return read


class _TextReader:
    """A callable's exposition text as families; blocks that do not parse are logged once."""

    def __init__(self, callback: Callable[[], object]) -> None:
        callbacks.load_parser()
        self.callback = callback
        self._screener = callbacks.Screener()

    def families(self) -> list[Family]:
        text = self.callback()
        if not isinstance(text, str):
            raise InvalidValueError(f"{self.callback!r} must return a str, got {text!r}")
        if text.rstrip().endswith("# EOF"):
            from ..exposition.parse.reader import parse

            return parse(text, "openmetrics")
        out: list[Family] = []
        for block in self._screener.screened(self.callback, text).blocks:
            if block.families is None:
                self._screener.drop(self.callback, callbacks.INVALID, block)
            else:
                out.extend(block.families)
        return out


def _number(value: object) -> Optional[Union[int, float]]:
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)  # type: ignore[arg-type]  # any number-like; others are skipped
    except (TypeError, ValueError):
        return None


def _client_name(metric: Any) -> str:
    """The text 0.0.4 (model) name of a prometheus_client family."""
    name: str = metric.name
    if metric.type == COUNTER:
        return name + "_total"
    if metric.type == INFO:
        return name + "_info"
    return name


#: Relabels one sample's labels (a dict or pairs) for a family type.
Relabel = Callable[[Any, Optional[str]], Labels]


def _client_family(metric: Any, relabel: Relabel) -> Family:
    """One prometheus_client family (duck-typed) as a labelled :class:`Family`."""
    type_word = metric.type
    last = _LAST.get(type_word)
    samples = []
    for s in metric.samples:
        value = s.value
        if value.__class__ is not float and value.__class__ is not int:
            value = _number(value)
            if value is None:
                continue  # e.g. a native-histogram sample: no classic value
        ts = s.timestamp
        if ts is not None:
            ts = float(ts)
        ex = s.exemplar
        if ex is not None:
            ex_ts = None if ex.timestamp is None else float(ex.timestamp)
            ex = Exemplar(tuple(sorted(ex.labels.items())), ex.value, ex_ts)
        samples.append(Sample(s.name, relabel(s.labels, last), value, ts, ex))
    name: str = metric.name
    # The model names a family as text 0.0.4's TYPE line does.
    if type_word == COUNTER and any(s.name == name + "_total" for s in samples):
        name += "_total"
    elif type_word == INFO and samples:
        name = samples[0].name
    # Interned: the registry's check caches its parse per family name object.
    return Family(sys.intern(name), type_word, metric.documentation, tuple(samples), metric.unit)


class EngineMetrics:
    """The custom collector :func:`register_engine_metrics_callback` registers."""

    def __init__(
        self,
        read: Read,
        source: object,
        include: tuple[str, ...],
        exclude: tuple[str, ...],
        injected: Mapping[str, str],
    ) -> None:
        self._read = read
        self.source = source
        self.include, self.exclude = include, exclude
        self.injected = dict(injected)
        # (source labels, inner label) -> served labels; the same series come
        # back at every scrape, so the merge and sort run once per series.
        self._labels: dict[tuple[Any, Optional[str]], Labels] = {}

    def __repr__(self) -> str:
        return f"<EngineMetrics {self.source!r}>"

    def _wanted(self, name: str) -> bool:
        if self.include and not name.startswith(self.include):
            return False
        return not (self.exclude and name.startswith(self.exclude))

    def _relabel(self, labels: Any, last: Optional[str]) -> Labels:
        """``labels`` (a dict or pairs) with the injected labels, sorted, ``last`` at the end."""
        pairs = tuple(labels.items()) if isinstance(labels, dict) else labels
        key = (pairs, last)
        found = self._labels.get(key)
        if found is not None:
            return found
        merged = dict(self.injected)
        merged.update(pairs)  # the sample's own labels win
        if last is not None and last in merged:
            inner = merged.pop(last)
            found = (*sorted(merged.items()), (last, inner))
        else:
            found = tuple(sorted(merged.items()))
        if len(self._labels) >= _LABEL_CACHE_LIMIT:
            self._labels = {}  # label values churn: start afresh rather than grow
        self._labels[key] = found
        return found

    def collect(self) -> list[Family]:
        """The source's families now, filtered and labelled (read at every scrape)."""
        relabel = self._relabel
        out: list[Family] = []
        for family in self._read():
            if not isinstance(family, Family):  # a prometheus_client family
                if self._wanted(_client_name(family)):
                    out.append(_client_family(family, relabel))
                continue
            name = text_metadata(family)[0] if family.type == INFO else family.name
            if not self._wanted(name):
                continue
            last = _LAST.get(family.type)
            samples = tuple(s._replace(labels=relabel(s.labels, last)) for s in family.samples)
            out.append(family._replace(samples=samples))
        return out
