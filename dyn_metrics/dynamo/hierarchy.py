"""The runtime hierarchy and its ``.metrics()`` facade.

Dynamo's objects form a tree: DistributedRuntime -> Namespace (nestable) ->
Component -> Endpoint. Each node owns one :class:`Registry`, linked as a child
of its parent's, so a metric is registered only where it is created and every
ancestor sees it at scrape time. :class:`Metrics` is the ``create_*`` facade
every node returns from ``.metrics()``; its shared rules (section 1.4 of the
Dynamo facts, checked in this order):

1. duplicate user label keys are refused;
2. the name is sanitised and prefixed: ``build_component_metric_name``;
3. user labels may not use the auto-label names (``dynamo_namespace``,
   ``dynamo_component``, ``dynamo_endpoint``, ``worker_id``), nor may a Vec's
   variable label names;
4. auto labels come from positions in the hierarchy: the names at depth 1, 2
   and 3 become ``dynamo_namespace``, ``dynamo_component`` and
   ``dynamo_endpoint`` (label-sanitised; empty names are skipped), plus
   ``worker_id`` in lowercase hex when the runtime has one;
5. the metric is validated and registered in this node's registry only.

A failed ``create_*`` raises and registers nothing. The returned metric is the
object that is scraped: keep it and update it.
"""

import threading

from .. import prometheus_names as names
from ..errors import InvalidLabelsError, InvalidNameError, RegistrationError
from ..metrics import (
    Counter,
    CounterVec,
    Gauge,
    GaugeVec,
    Histogram,
    HistogramVec,
    IntCounter,
    IntCounterVec,
    IntGauge,
    IntGaugeVec,
    const_label_pairs,
)
from ..registry import Registry

_AUTO_LABELS = (names.labels.NAMESPACE, names.labels.COMPONENT, names.labels.ENDPOINT)
# Guards creating namespaces and components, so that two threads asking for
# the same name get one object (and the parent links one child registry).
_CREATE_LOCK = threading.Lock()


class Metrics:
    """The ``create_*`` facade of one hierarchy node (see the module docstring).

    Errors: :class:`InvalidLabelsError` for duplicate or reserved label keys,
    :class:`InvalidNameError` for a name or hierarchy name that cannot be
    sanitised, the validation errors of the metric types, and
    :class:`RegistrationError` subclasses (message prefixed ``Failed to
    register metric:``) when this node already has the metric.
    """

    __slots__ = ("_node",)

    def __init__(self, node):
        self._node = node

    @property
    def registry(self):
        """This node's :class:`Registry`."""
        return self._node._registry

    def _prepare(self, name, labels, label_names=None):
        pairs = const_label_pairs(labels)
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidLabelsError(f"Duplicate label key '{key}' found in labels")
            seen.add(key)
        try:
            full_name = names.build_component_metric_name(name)
        except InvalidNameError as exc:
            raise InvalidNameError(f"{exc} (got {name!r})") from exc
        for key, _ in pairs:
            if key in names.AUTO_LABEL_NAMES:
                raise InvalidLabelsError(
                    f"Label '{key}' is automatically added by auto-label injection "
                    "and cannot be manually set"
                )
        for key in label_names or ():
            if key in names.AUTO_LABEL_NAMES:
                raise InvalidLabelsError(
                    f"Variable label name '{key}' conflicts with auto-injected const "
                    "label and cannot be used"
                )
        return full_name, self._node._auto_labels() + pairs

    def _register(self, metric):
        try:
            self._node._registry.register(metric)
        except RegistrationError as exc:
            err = type(exc)(f"Failed to register metric: {exc}")
            err.__dict__.update(exc.__dict__)
            raise err from exc
        return metric

    def _create(self, cls, name, help, labels, **kwargs):
        full_name, const_labels = self._prepare(name, labels)
        return self._register(cls(full_name, help, const_labels, **kwargs))

    def _create_vec(self, cls, name, help, label_names, const_labels, **kwargs):
        if isinstance(label_names, str):
            raise InvalidLabelsError(
                f"label names must be a sequence of strings, got the string {label_names!r}"
            )
        # A tuple first: an iterator would be used up by the checks below.
        label_names = tuple(label_names or ())
        full_name, const = self._prepare(name, const_labels, label_names)
        if not label_names:
            raise InvalidLabelsError(
                f"{cls.__name__} requires const_labels parameter "
                f"(the variable label names), got {label_names!r}"
            )
        return self._register(cls(full_name, help, label_names, const, **kwargs))

    def create_counter(self, name, help, labels=()):
        """A :class:`Counter` registered on this node."""
        return self._create(Counter, name, help, labels)

    def create_intcounter(self, name, help, labels=()):
        """An :class:`IntCounter` registered on this node."""
        return self._create(IntCounter, name, help, labels)

    def create_gauge(self, name, help, labels=()):
        """A :class:`Gauge` registered on this node."""
        return self._create(Gauge, name, help, labels)

    def create_intgauge(self, name, help, labels=()):
        """An :class:`IntGauge` registered on this node."""
        return self._create(IntGauge, name, help, labels)

    def create_histogram(self, name, help, labels=(), buckets=None):
        """A :class:`Histogram` registered on this node (default buckets if None)."""
        return self._create(Histogram, name, help, labels, buckets=buckets)

    def create_countervec(self, name, help, label_names, const_labels=()):
        """A :class:`CounterVec` with variable ``label_names``."""
        return self._create_vec(CounterVec, name, help, label_names, const_labels)

    def create_intcountervec(self, name, help, label_names, const_labels=()):
        """An :class:`IntCounterVec` with variable ``label_names``."""
        return self._create_vec(IntCounterVec, name, help, label_names, const_labels)

    def create_gaugevec(self, name, help, label_names, const_labels=()):
        """A :class:`GaugeVec` with variable ``label_names``."""
        return self._create_vec(GaugeVec, name, help, label_names, const_labels)

    def create_intgaugevec(self, name, help, label_names, const_labels=()):
        """An :class:`IntGaugeVec` with variable ``label_names``."""
        return self._create_vec(IntGaugeVec, name, help, label_names, const_labels)

    def create_histogramvec(self, name, help, label_names, const_labels=(), buckets=None):
        """A :class:`HistogramVec` with variable ``label_names``."""
        return self._create_vec(
            HistogramVec, name, help, label_names, const_labels, buckets=buckets
        )

    def register_prometheus_update_callback(self, callback):
        """Run ``callback()`` before every scrape of this node or an ancestor.

        An exception is logged and never aborts the scrape.
        """
        self._node._registry.add_update_callback(callback)

    def register_prometheus_expfmt_callback(self, callback):
        """Append ``callback()``'s text to scrapes of this node and its ancestors.

        The text (text format 0.0.4) is appended verbatim after the native
        metrics; an exception or a non-``str`` result is logged and adds nothing.
        """
        self._node._registry.add_expfmt_callback(callback)

    # The name of Dynamo's older Python binding.
    register_callback = register_prometheus_update_callback

    def prometheus_expfmt(self):
        """Text 0.0.4 of this node and every descendant, in Dynamo's bytes."""
        return self._node._registry.prometheus_expfmt()


def _child_node(parent, children, name, cls):
    """``children[name]``, created as ``cls(name, parent)`` on first use."""
    with _CREATE_LOCK:
        found = children.get(name)
        if found is None:
            found = children[name] = cls(name, parent)
        return found


class _Node:
    """Common part of every hierarchy level."""

    def __init__(self, name, parent):
        if not isinstance(name, str):
            raise InvalidNameError(f"{type(self).__name__} name must be a string, got {name!r}")
        self._name = name
        self._parent = parent
        self._registry = Registry()
        self._metrics = Metrics(self)
        if parent is not None:
            parent._registry.add_child_registry(self._registry)

    def basename(self):
        """This node's own name (``""`` for the runtime)."""
        return self._name

    def parent_hierarchies(self):
        """The ancestors, root first."""
        chain, node = [], self._parent
        while node is not None:
            chain.append(node)
            node = node._parent
        chain.reverse()
        return chain

    def metrics(self):
        """The :class:`Metrics` facade of this node."""
        return self._metrics

    def connection_id(self):
        """The runtime's worker id, or None."""
        return self.parent_hierarchies()[0].connection_id()

    def _auto_labels(self):
        chain = [n.basename() for n in self.parent_hierarchies()] + [self._name]
        labels = []
        for depth, label in enumerate(_AUTO_LABELS, start=1):
            if depth < len(chain) and chain[depth]:
                labels.append((label, names.sanitize_prometheus_label(chain[depth])))
        worker = self.connection_id()
        if worker is not None:
            labels.append((names.labels.WORKER_ID, format(worker, "x")))
        return labels

    def __repr__(self):
        return f"<{type(self).__name__} {self._name!r}>"


class _NamespaceParent(_Node):
    """A node that holds namespaces: the runtime and namespaces themselves."""

    def __init__(self, name, parent):
        super().__init__(name, parent)
        self._namespaces = {}

    def namespace(self, name):
        """The child :class:`Namespace` ``name`` (the same object for the same name)."""
        return _child_node(self, self._namespaces, name, Namespace)


class Namespace(_NamespaceParent):
    """A namespace; nestable with ``.namespace()``; holds components."""

    def __init__(self, name, parent):
        super().__init__(name, parent)
        self._components = {}

    def component(self, name):
        """The child :class:`Component` ``name`` (the same object for the same name)."""
        return _child_node(self, self._components, name, Component)

    def display_name(self):
        """The dotted path of nested namespaces, e.g. ``ns1.ns2``."""
        return ".".join(n.basename() for n in self.parent_hierarchies()[1:] + [self])


class Component(_Node):
    """A component of a namespace; holds endpoints."""

    def endpoint(self, name):
        """A new :class:`Endpoint` (each call makes one, as Dynamo does)."""
        return Endpoint(name, self)


class Endpoint(_Node):
    """An endpoint: the leaf of the hierarchy."""
