"""dyn_metrics: Prometheus metrics for Python services, a port of NVIDIA Dynamo's metrics.

Zero runtime dependencies. See README.md for a tour; the public names are
listed in ``__all__``.
"""

import os as _os
from typing import TYPE_CHECKING, Any

from . import prometheus_names
from .dynamo.hierarchy import Component, Endpoint, Metrics, Namespace
from .dynamo.runtime import DistributedRuntime
from .errors import (
    AlreadyRegisteredError,
    CardinalityError,
    ConfigError,
    DescriptorConflictError,
    ExportError,
    ExportRejectedError,
    ExportUnavailableError,
    InvalidBucketsError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
    MetricsError,
    ParseError,
    RegistrationError,
)
from .metrics import (
    DEFAULT_BUCKETS,
    Counter,
    CounterVec,
    Enum,
    Gauge,
    GaugeVec,
    Histogram,
    HistogramVec,
    Info,
    InfoVec,
    IntCounter,
    IntCounterVec,
    IntGauge,
    IntGaugeVec,
    StateSet,
    StateSetVec,
    Summary,
    SummaryVec,
    exponential_buckets,
    linear_buckets,
)
from .model import Exemplar, Family, Sample
from .registry import REGISTRY, Registry
from .registry.sources import generate_latest, write_to_textfile

if _os.environ.get("DYN_METRICS_MULTIPROC_DIR"):
    # Multiprocess mode must be on before any metric is created: at import.
    # A bad directory is a ConfigError naming the variable, here, not a silent
    # process-local fallback that would under-count every scrape.
    from .multiprocess import mode as _multiprocess_mode

    try:
        _multiprocess_mode.enable_from_environment()
    except ConfigError as _exc:
        raise ConfigError(f"DYN_METRICS_MULTIPROC_DIR: {_exc}") from None

if TYPE_CHECKING:  # what __getattr__ below imports on first use, for type checkers
    from . import multiprocess
    from .collectors import GCCollector, PlatformCollector, ProcessCollector
    from .dynamo.engine import register_engine_metrics_callback
    from .dynamo.system_server import start_http_server
    from .dynamo.web_apps import make_asgi_app, make_wsgi_app
    from .export.exporters import OTLPExporter, RemoteWriteExporter
    from .export.pushgateway import (
        delete_from_gateway,
        instance_ip_grouping_key,
        push_to_gateway,
        pushadd_to_gateway,
    )
    from .export.result import ExportResult
    from .exposition.check import CheckResult, Problem, check
    from .exposition.parse.reader import parse

__version__ = "0.1.0"

# Imported on first use (PEP 562): the checker, the parser and the HTTP server
# pull in most of the import time, and most processes need none of them.
_LAZY = {
    "check": ("exposition.check", "check"),
    "CheckResult": ("exposition.check", "CheckResult"),
    "Problem": ("exposition.check", "Problem"),
    "parse": ("exposition.parse.reader", "parse"),
    "make_asgi_app": ("dynamo.web_apps", "make_asgi_app"),
    "ProcessCollector": ("collectors", "ProcessCollector"),
    "PlatformCollector": ("collectors", "PlatformCollector"),
    "GCCollector": ("collectors", "GCCollector"),
    "register_engine_metrics_callback": ("dynamo.engine", "register_engine_metrics_callback"),
    "push_to_gateway": ("export.pushgateway", "push_to_gateway"),
    "OTLPExporter": ("export.exporters", "OTLPExporter"),
    "RemoteWriteExporter": ("export.exporters", "RemoteWriteExporter"),
    "ExportResult": ("export.result", "ExportResult"),
    "pushadd_to_gateway": ("export.pushgateway", "pushadd_to_gateway"),
    "delete_from_gateway": ("export.pushgateway", "delete_from_gateway"),
    "instance_ip_grouping_key": ("export.pushgateway", "instance_ip_grouping_key"),
    "multiprocess": ("multiprocess", ""),
    "make_wsgi_app": ("dynamo.web_apps", "make_wsgi_app"),
    "start_http_server": ("dynamo.system_server", "start_http_server"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    found = importlib.import_module(f"{__name__}.{module}")
    value = getattr(found, attr) if attr else found  # "": the subpackage itself
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ExportResult",
    "RemoteWriteExporter",
    "OTLPExporter",
    "multiprocess",
    "register_engine_metrics_callback",
    "pushadd_to_gateway",
    "push_to_gateway",
    "instance_ip_grouping_key",
    "delete_from_gateway",
    "ExportUnavailableError",
    "ExportRejectedError",
    "ExportError",
    "AlreadyRegisteredError",
    "CardinalityError",
    "check",
    "CheckResult",
    "Component",
    "ConfigError",
    "Counter",
    "CounterVec",
    "DEFAULT_BUCKETS",
    "DescriptorConflictError",
    "DistributedRuntime",
    "Endpoint",
    "Enum",
    "Exemplar",
    "exponential_buckets",
    "Family",
    "Gauge",
    "GaugeVec",
    "GCCollector",
    "generate_latest",
    "Histogram",
    "HistogramVec",
    "Info",
    "InfoVec",
    "IntCounter",
    "IntCounterVec",
    "IntGauge",
    "IntGaugeVec",
    "InvalidBucketsError",
    "InvalidLabelsError",
    "InvalidNameError",
    "InvalidValueError",
    "linear_buckets",
    "make_asgi_app",
    "make_wsgi_app",
    "Metrics",
    "MetricsError",
    "Namespace",
    "parse",
    "ParseError",
    "PlatformCollector",
    "Problem",
    "ProcessCollector",
    "prometheus_names",
    "RegistrationError",
    "Registry",
    "REGISTRY",
    "Sample",
    "StateSet",
    "StateSetVec",
    "Summary",
    "SummaryVec",
    "start_http_server",
    "write_to_textfile",
]
