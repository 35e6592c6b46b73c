"""The runtime hierarchy: Namespace (nestable), Component and Endpoint.

Dynamo's objects form a tree: DistributedRuntime (:mod:`.runtime`) ->
Namespace (nestable) -> Component -> Endpoint. Each node owns one
:class:`Registry`, linked as a child of its parent's, so a metric is
registered only where it is created and every ancestor sees it at scrape time.
``.metrics`` (a property, also callable: ``.metrics()``, see
:meth:`~dyn_metrics.dynamo.facade.Metrics.__call__`) is the node's
:class:`~dyn_metrics.dynamo.facade.Metrics` facade, which creates metrics with
the node's auto labels:

* positions in the hierarchy, not object kinds, pick the labels: the names at
  depth 1, 2 and 3 become ``dynamo_namespace``, ``dynamo_component`` and
  ``dynamo_endpoint`` (label-sanitised; empty names are skipped), so a
  namespace nested in a namespace gives ``dynamo_component``, as in Dynamo;
* ``worker_id``, in lowercase hex, is added when the runtime has one.

The same name on the same parent gives the same Namespace or Component
object; ``Component.endpoint`` makes a new Endpoint on every call, as Dynamo does.
"""

import threading
from typing import Optional, TypeVar

from .. import prometheus_names as names
from ..errors import InvalidNameError
from ..registry import Registry
from .facade import LabelPairs, Metrics

__all__ = ["Component", "Endpoint", "Metrics", "Namespace"]

_AUTO_LABELS = (names.labels.NAMESPACE, names.labels.COMPONENT, names.labels.ENDPOINT)
# Guards creating namespaces and components, so that two threads asking for
# the same name get one object (and the parent links one child registry).
_CREATE_LOCK = threading.Lock()


class _Node:
    """Common part of every hierarchy level."""

    def __init__(self, name: str, parent: Optional["_Node"]) -> None:
        if not isinstance(name, str):
            raise InvalidNameError(f"{type(self).__name__} name must be a string, got {name!r}")
        self._name = name
        self._parent = parent
        self._registry = Registry(created=self._tracks_created())
        self._metrics = Metrics(self._registry, self._auto_labels, self._max_children)
        if parent is not None:
            parent._registry.add_child_registry(self._registry)

    def basename(self) -> str:
        """This node's own name (``""`` for the runtime)."""
        return self._name

    def parent_hierarchies(self) -> "list[_Node]":
        """The ancestors, root first."""
        chain, node = [], self._parent
        while node is not None:
            chain.append(node)
            node = node._parent
        chain.reverse()
        return chain

    def _tracks_created(self) -> bool:
        """The runtime's ``created`` setting (``DYN_METRICS_CREATED``), which every node's
        registry takes."""
        node: _Node = self
        while node._parent is not None:
            node = node._parent
        return bool(getattr(node, "_created", False))

    @property
    def metrics(self) -> Metrics:
        """The :class:`~dyn_metrics.dynamo.facade.Metrics` facade of this node.

        A property, as in Dynamo's Python binding (``node.metrics.create_counter(...)``);
        the facade returns itself when called, so ``node.metrics()`` is the same object.
        """
        return self._metrics

    def connection_id(self) -> Optional[int]:
        """The runtime's worker id, or None."""
        return self.parent_hierarchies()[0].connection_id()

    def _max_children(self) -> Optional[int]:
        """The runtime's ``max_children`` default for vecs (``DYN_METRICS_MAX_CHILDREN``)."""
        return self.parent_hierarchies()[0]._max_children() if self._parent else None

    def _auto_labels(self) -> LabelPairs:
        chain = [n.basename() for n in self.parent_hierarchies()] + [self._name]
        labels = []
        for depth, label in enumerate(_AUTO_LABELS, start=1):
            if depth < len(chain) and chain[depth]:
                labels.append((label, names.sanitize_prometheus_label(chain[depth])))
        worker = self.connection_id()
        if worker is not None:
            labels.append((names.labels.WORKER_ID, format(worker, "x")))
        return labels

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"


_N = TypeVar("_N", bound=_Node)


def _child_node(parent: _Node, children: "dict[str, _N]", name: str, cls: "type[_N]") -> _N:
    """``children[name]``, created as ``cls(name, parent)`` on first use."""
    with _CREATE_LOCK:
        found = children.get(name)
        if found is None:
            found = children[name] = cls(name, parent)
        return found


class _NamespaceParent(_Node):
    """A node that holds namespaces: the runtime and namespaces themselves."""

    def __init__(self, name: str, parent: Optional["_Node"]) -> None:
        super().__init__(name, parent)
        self._namespaces: dict[str, Namespace] = {}

    def namespace(self, name: str) -> "Namespace":
        """The child :class:`Namespace` ``name`` (the same object for the same name)."""
        return _child_node(self, self._namespaces, name, Namespace)


class Namespace(_NamespaceParent):
    """A namespace; nestable with ``.namespace()``; holds components."""

    def __init__(self, name: str, parent: _Node) -> None:
        super().__init__(name, parent)
        self._components: dict[str, Component] = {}

    def component(self, name: str) -> "Component":
        """The child :class:`Component` ``name`` (the same object for the same name)."""
        return _child_node(self, self._components, name, Component)

    def display_name(self) -> str:
        """The dotted path of nested namespaces, e.g. ``ns1.ns2``."""
        return ".".join(n.basename() for n in self.parent_hierarchies()[1:] + [self])


class Component(_Node):
    """A component of a namespace; holds endpoints."""

    def endpoint(self, name: str) -> "Endpoint":
        """A new :class:`Endpoint` (each call makes one, as Dynamo does)."""
        return Endpoint(name, self)


class Endpoint(_Node):
    """An endpoint: the leaf of the hierarchy."""
