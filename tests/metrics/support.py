"""Helpers shared by the tests of ``dyn_metrics.metrics``: scrapes and bare cells."""

import threading

import dyn_metrics as dm
from dyn_metrics.metrics import histogram

BOUNDS = (1.0, 2.5, 5.0)


def scrape(*metrics):
    """The text a fresh registry holding ``metrics`` serves."""
    reg = dm.Registry()
    for m in metrics:
        reg.register(m)
    return reg.prometheus_expfmt()


def sample_lines(text):
    """The sample lines of ``text`` (no comments)."""
    return [line for line in text.splitlines() if not line.startswith("#")]


def cell_id(cls):
    return cls.__name__


def new_cell(cls):
    """A bare cell of ``cls``, built with a family lock as a family would."""
    return cls(threading.Lock())


def new_histogram(bounds=BOUNDS):
    return histogram.HistogramCell(threading.Lock(), bounds)


def snapshot(cell):
    with cell._lock:
        return cell.snapshot_locked()
