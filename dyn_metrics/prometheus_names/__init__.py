"""Port of Dynamo's ``prometheus_names.rs``: metric-name constants, sanitisers, validators.

Contracts:

* :mod:`.constants`: every Rust ``pub mod`` is a plain class used as a namespace,
  with the same constant names and values, in source order; nested Rust modules
  are nested classes (``frontend_service.status.SUCCESS``). :func:`iter_constants`
  walks them all in declaration order; :data:`MODULES` names the top-level ones.
* :mod:`.sanitize`: ``sanitize_*`` behave exactly like Dynamo's, quirks included
  (``:x`` -> ``_:x``, ``___a`` -> ``__a``), so a name made by Dynamo and by
  dyn_metrics for the same input is the same string. Characters are Unicode code
  points; each one outside the ASCII set allowed by Prometheus becomes one ``_``.
  :func:`build_component_metric_name` sanitises and adds ``dynamo_component_``.
* :mod:`.validate`: ``is_valid_*`` return a bool and never raise; ``validate_*``
  return None or raise :class:`InvalidNameError` with rust-prometheus' message
  text; :func:`parse_const_labels` reads ``DYN_METRICS_CONST_LABELS``.
* Everything here is pure and thread-safe; it runs at metric creation only.
* Errors: :class:`InvalidNameError` for names, :class:`InvalidLabelsError` for
  :func:`parse_const_labels`. Both are also ``ValueError``.

Every name is importable from this package itself
(``dyn_metrics.prometheus_names.sanitize_prometheus_name``); the submodules are
where they are written.
"""

from .constants import (
    AUTO_LABEL_NAMES,
    MODULES,
    component_names,
    distributed_runtime,
    frontend_perf,
    frontend_service,
    iter_constants,
    kv_publisher,
    kvbm,
    kvindexer,
    kvrouter,
    kvstats,
    labels,
    model_info,
    name_prefix,
    request_plane,
    router,
    router_request,
    routing_overhead,
    task_tracker,
    tokio_perf,
    transport,
    trtllm_additional,
    work_handler,
)
from .sanitize import (
    build_component_metric_name,
    sanitize_frontend_prometheus_prefix,
    sanitize_prometheus_label,
    sanitize_prometheus_name,
)
from .validate import (
    clamp_u64_to_i64,
    is_valid_label_name,
    is_valid_metric_name,
    parse_const_labels,
    validate_label_name,
    validate_metric_name,
)

__all__ = [
    "name_prefix",
    "labels",
    "component_names",
    "frontend_service",
    "work_handler",
    "task_tracker",
    "distributed_runtime",
    "kvbm",
    "router_request",
    "routing_overhead",
    "router",
    "frontend_perf",
    "tokio_perf",
    "kvindexer",
    "request_plane",
    "transport",
    "kvrouter",
    "kv_publisher",
    "trtllm_additional",
    "kvstats",
    "model_info",
    "MODULES",
    "AUTO_LABEL_NAMES",
    "iter_constants",
    "is_valid_metric_name",
    "is_valid_label_name",
    "validate_metric_name",
    "validate_label_name",
    "sanitize_prometheus_name",
    "sanitize_prometheus_label",
    "sanitize_frontend_prometheus_prefix",
    "build_component_metric_name",
    "clamp_u64_to_i64",
    "parse_const_labels",
]
