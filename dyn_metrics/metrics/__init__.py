"""Live metrics: the value cells, the metric handles and their vecs, one file per type.

Everything outside this package imports the metric types from here, so the
files inside may be cut as the types need.
"""

from .family import (
    DEFAULT_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    IntCounter,
    IntGauge,
    const_label_pairs,
    exponential_buckets,
    linear_buckets,
)
from .vec import CounterVec, GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "CounterVec",
    "Gauge",
    "GaugeVec",
    "Histogram",
    "HistogramVec",
    "IntCounter",
    "IntCounterVec",
    "IntGauge",
    "IntGaugeVec",
    "const_label_pairs",
    "exponential_buckets",
    "linear_buckets",
]
