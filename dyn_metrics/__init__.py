"""dyn_metrics: Prometheus metrics for Python services, a port of NVIDIA Dynamo's metrics.

Zero runtime dependencies. See README.md for a tour; the public names are
listed in ``__all__``.
"""

from . import prometheus_names
from .check import CheckResult, Problem, check
from .errors import (
    AlreadyRegisteredError,
    CardinalityError,
    ConfigError,
    DescriptorConflictError,
    InvalidBucketsError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
    MetricsError,
    ParseError,
    RegistrationError,
)
from .hierarchy import Component, Endpoint, Metrics, Namespace
from .metrics import (
    DEFAULT_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    IntCounter,
    IntGauge,
    exponential_buckets,
    linear_buckets,
)
from .model import Exemplar, Family, Sample
from .parse import parse
from .registry import Registry
from .runtime import DistributedRuntime
from .system import start_http_server
from .vec import CounterVec, GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec

__version__ = "0.1.0"

__all__ = [
    "AlreadyRegisteredError",
    "CheckResult",
    "CardinalityError",
    "Component",
    "ConfigError",
    "Counter",
    "CounterVec",
    "DEFAULT_BUCKETS",
    "DescriptorConflictError",
    "DistributedRuntime",
    "Endpoint",
    "Exemplar",
    "Family",
    "Gauge",
    "GaugeVec",
    "Histogram",
    "HistogramVec",
    "IntCounter",
    "IntCounterVec",
    "IntGauge",
    "IntGaugeVec",
    "InvalidBucketsError",
    "InvalidLabelsError",
    "InvalidNameError",
    "InvalidValueError",
    "Metrics",
    "MetricsError",
    "Namespace",
    "ParseError",
    "Problem",
    "Registry",
    "RegistrationError",
    "Sample",
    "check",
    "exponential_buckets",
    "linear_buckets",
    "parse",
    "prometheus_names",
    "start_http_server",
]
