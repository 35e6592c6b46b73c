"""Live metrics, one file per type: each type's cells, handles and Vecs together.

``counter.py``, ``gauge.py``, ``histogram.py``, ``summary.py``, ``info.py`` and
``stateset.py`` hold a metric type each (``counter_cell.py`` the counter's
cells and ``counter_reads.py`` their reads, ``histogram_cell.py`` the
histogram's cell, ``quantiles.py`` the summary's streaming quantiles;
``native_buckets.py``, ``native_histogram.py`` and ``native_cell.py`` the
exponential buckets of native histograms). Beside
them sit the shared pieces: ``cells.py`` (the stripe locks, folding, number
checks), ``desc.py`` (validated metadata),
``family.py`` (the child map and both renderings), ``order.py`` (the
exposition order kept by replaying logged changes, and the text's block
templates), ``vec.py`` (access by
label values), ``timer.py`` and ``instrument.py`` (the instrumentation
helpers), ``exemplars.py``, ``shortcuts.py`` (Dynamo's dict-taking vec
updates), ``locked.py`` (the counter cells of free-threaded interpreters),
and ``backends.py`` (the hook the multiprocess package's cells plug into).
Everything outside this package imports from here, so the files inside may
be cut as the types need.
"""

from .counter import Counter, CounterVec, IntCounter, IntCounterVec
from .desc import Desc, LabelsArg, check_unit, const_label_pairs
from .family import MetricFamily
from .gauge import Gauge, GaugeVec, IntGauge, IntGaugeVec
from .histogram import (
    Histogram,
    HistogramVec,
    exponential_buckets,
    linear_buckets,
)
from .histogram_cell import DEFAULT_BUCKETS
from .info import Info, InfoVec
from .native_buckets import DEFAULT_ZERO_THRESHOLD, bucket_index, overflow_index
from .native_histogram import DEFAULT_MAX_BUCKETS, DEFAULT_SCHEMA
from .stateset import Enum, StateSet, StateSetVec
from .summary import Summary, SummaryVec
from .vec import OVERFLOW_VALUE, overflow_children_total

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_MAX_BUCKETS",
    "DEFAULT_SCHEMA",
    "DEFAULT_ZERO_THRESHOLD",
    "Counter",
    "Enum",
    "Info",
    "InfoVec",
    "StateSet",
    "StateSetVec",
    "Summary",
    "SummaryVec",
    "CounterVec",
    "Desc",
    "Gauge",
    "GaugeVec",
    "Histogram",
    "HistogramVec",
    "IntCounter",
    "IntCounterVec",
    "IntGauge",
    "IntGaugeVec",
    "LabelsArg",
    "MetricFamily",
    "OVERFLOW_VALUE",
    "bucket_index",
    "check_unit",
    "const_label_pairs",
    "exponential_buckets",
    "linear_buckets",
    "overflow_children_total",
    "overflow_index",
]
