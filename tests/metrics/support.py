"""Helpers shared by the tests of ``dyn_metrics.metrics``: scrapes and bare cells."""

import decimal
import fractions
import threading

import dyn_metrics as dm
from dyn_metrics.metrics import histogram_cell

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
    """A bare cell of ``cls``, made as a family makes it (``_fresh()``, or with a family lock)."""
    fresh = getattr(cls, "_fresh", None)
    return fresh() if fresh is not None else cls(threading.Lock())


def new_histogram(bounds=BOUNDS):
    return histogram_cell.HistogramCell(threading.Lock(), bounds)


def snapshot(cell):
    return cell._read()


# -- what counts as a real number (gauge values, observations) ----------------------


class _Floaty:
    """An object whose ``__float__`` returns a float (a real number)."""

    def __float__(self):
        return 2.5


class _BadFloat:
    """``__float__`` returns something that is not a float."""

    def __float__(self):
        return 1j


class _Array:
    """Like a numpy array: ``__float__`` works for one element only."""

    def __init__(self, *items):
        self.items = items

    def __float__(self):
        if len(self.items) != 1:
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        return float(self.items[0])

    def __add__(self, other):  # what made ``value + 0.0`` accept arrays
        return _Array(*(i + other for i in self.items))


REAL_VALUE_ROWS = [
    # (id, value given, value stored by a float gauge)
    ("int", 7, 7.0),
    ("bool", True, 1.0),
    ("fraction", fractions.Fraction(1, 4), 0.25),
    ("decimal", decimal.Decimal("0.5"), 0.5),
    ("float subclass", type("F", (float,), {})(1.5), 1.5),
    ("__float__", _Floaty(), 2.5),
    ("one-element array", _Array(3.0), 3.0),
]

NOT_REAL_ROWS = [
    # (id, value refused with InvalidValueError)
    ("complex", 1j),
    ("complex zero imag", complex(1, 0)),
    ("array of two", _Array(1.0, 2.0)),
    ("str", "1"),
    ("bytes", b"1"),
    ("None", None),
    ("list", [1]),
    ("__float__ returns complex", _BadFloat()),
    ("int beyond float", 10**400),
]
