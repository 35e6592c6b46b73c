"""Sources: whatever holds metrics, turned into a render callable; the default registry's outputs.

Sources are recognised by what they do, not by their class, so this module
knows nothing of the hierarchy above it (the HTTP glue, the WSGI/ASGI apps
and the exporters all resolve sources here).

A *source* is a :class:`~dyn_metrics.DistributedRuntime`, a hierarchy node
(Namespace, Component, Endpoint), a :class:`~dyn_metrics.dynamo.facade.Metrics`
facade, a :class:`~dyn_metrics.Registry`, or None for
:data:`~dyn_metrics.registry.REGISTRY`. :func:`resolve_source` gives the two
callables the HTTP server (and the WSGI/ASGI apps) take,
``render(fmt, names) -> str | bytes`` (bytes for ``"protobuf"``) and
``health() -> (healthy, body)``:

* a runtime (or anything with ``render_exposition(fmt, names)``): its render,
  which refreshes the uptime gauge and runs the scrape callbacks, and its
  ``health.snapshot()``;
* a hierarchy node: its registry, with its children; health is the runtime's
  at the root of its hierarchy;
* a facade: its registry; a registry: itself; None: ``dm.REGISTRY``.

A source without health answers always healthy: 200 with the body
``{"endpoints":{},"status":"ready"}``.

:func:`generate_latest` and :func:`write_to_textfile` are prometheus_client's
two ways out without a server: the exposition as bytes, and an atomic file
for node_exporter's textfile collector.
"""

import os
import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional, Protocol, Union

from ..errors import InvalidValueError
from ..model import Family
from . import REGISTRY, Registry

#: ``render(fmt, names)``: ``fmt`` is ``"text"`` or ``"openmetrics"`` (giving str)
#: or ``"protobuf"`` (giving bytes), ``names`` the ``name[]`` selection or None.
Render = Callable[[str, Optional[frozenset[str]]], Union[str, bytes]]
#: ``health() -> (healthy, JSON body)``.
Health = Callable[[], tuple[bool, Mapping[str, object]]]

FORMATS = ("text", "openmetrics", "protobuf")


class _Health(Protocol):
    def snapshot(self) -> tuple[bool, Mapping[str, Any]]: ...


class Runtime(Protocol):
    """What the server needs of a runtime (a :class:`~dyn_metrics.DistributedRuntime`)."""

    @property
    def health(self) -> _Health: ...

    def render_exposition(self, fmt: str, names: Optional[frozenset[str]]) -> Union[str, bytes]: ...


def always_healthy() -> tuple[bool, Mapping[str, object]]:
    """The health of a source that has none: ready, no endpoints."""
    return True, {"endpoints": {}, "status": "ready"}


def registry_render(registry: Registry) -> Render:
    """The render callable of one registry (and its children)."""

    def render(fmt: str, names: Optional[frozenset[str]]) -> Union[str, bytes]:
        if fmt == "openmetrics":
            return registry.openmetrics_expfmt(names=names)
        if fmt == "protobuf":
            return registry.protobuf_expfmt(names=names)
        return registry.prometheus_expfmt(names=names)

    return render


def _health_of(obj: object) -> Optional[Health]:
    snapshot = getattr(getattr(obj, "health", None), "snapshot", None)
    return snapshot if callable(snapshot) else None


def resolve_source(source: object) -> tuple[Render, Health]:
    """``(render, health)`` for any kind of source (see the module docstring).

    Raises InvalidValueError naming the source when it is none of them.
    """
    if source is None:
        source = REGISTRY
    render_exposition = getattr(source, "render_exposition", None)
    if callable(render_exposition):
        return render_exposition, _health_of(source) or always_healthy
    if isinstance(source, Registry):
        return registry_render(source), always_healthy
    registry = getattr(source, "registry", None)
    if isinstance(registry, Registry):  # a Metrics facade
        return registry_render(registry), always_healthy
    metrics = getattr(source, "metrics", None)
    parents = getattr(source, "parent_hierarchies", None)
    if callable(metrics) and callable(parents):  # a hierarchy node
        facade = metrics()
        if isinstance(getattr(facade, "registry", None), Registry):
            chain = parents()
            health = _health_of(chain[0]) if chain else None
            return registry_render(facade.registry), health or always_healthy
    raise InvalidValueError(
        "source: expected a DistributedRuntime, a Namespace, Component or Endpoint, "
        f"a Metrics facade, a Registry or None, got {source!r}"
    )


def registry_of(source: object) -> Registry:
    """The registry at the top of ``source`` (a runtime's root registry, a node's, a
    facade's, a registry itself; None: ``dm.REGISTRY``); InvalidValueError otherwise."""
    if source is None:
        return REGISTRY
    if isinstance(source, Registry):
        return source
    for holder in (source, getattr(source, "metrics", None)):
        found = getattr(holder, "registry", None)
        if isinstance(found, Registry):
            return found
        found = getattr(holder, "_registry", None)
        if isinstance(found, Registry):
            return found
    raise InvalidValueError(
        "source: expected a DistributedRuntime, a Namespace, Component or Endpoint, "
        f"a Metrics facade, a Registry or None, got {source!r}"
    )


def collect_families(source: object) -> list[Family]:
    """The families of ``source`` as a scrape sees them, for exporters.

    Runs the update callbacks of every registry of the tree first (as a scrape
    does), then merges the families (custom collectors included); the text of
    exposition-text callbacks, which exists only as text, is not included.
    """
    registry = registry_of(source)
    for reg in registry.registries():
        reg.execute_update_callbacks()
    return registry.collect()


def generate_latest(source: object = None, format: str = "text") -> bytes:
    """The exposition of ``source`` (None: ``dm.REGISTRY``) as UTF-8 bytes.

    ``format`` is ``"text"`` (0.0.4, Dynamo's bytes), ``"openmetrics"``
    (1.0, ``# EOF`` included) or ``"protobuf"`` (the delimited
    ``io.prometheus.client.MetricFamily`` stream, native histograms
    included); anything else raises
    :class:`InvalidValueError`, as does a source of no known kind. Runs the
    source's update callbacks, as a scrape does.
    """
    if format not in FORMATS:
        raise InvalidValueError(f"format must be one of {FORMATS!r}, got {format!r}")
    render, _ = resolve_source(source)
    out = render(format, None)
    return out if isinstance(out, bytes) else out.encode("utf-8")


def write_to_textfile(path: Union[str, "os.PathLike[str]"], source: object = None) -> None:
    """Write the text 0.0.4 exposition of ``source`` to ``path``, atomically.

    For node_exporter's textfile collector (which reads ``*.prom`` files):
    the text goes to a temporary file beside ``path`` (named
    ``<path>.<pid>.<thread>.tmp``, so the collector ignores it), is flushed
    to disk, then renamed over ``path`` in one step, so a reader sees the
    old file or the new one, never a part. On any error the temporary file
    is removed and the error (an :class:`OSError` for the file system)
    propagates; ``path`` is left as it was.
    """
    data = generate_latest(source, "text")
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
