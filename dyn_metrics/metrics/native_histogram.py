"""Native histograms: the options, the folded state and the cell of ``Histogram(native=True)``.

A native histogram keeps exponential buckets (``native_buckets.py``) beside
the classic ones it may also have. Its cell is a :class:`HistogramCell`
whose pending list folds into a :class:`NativeFolded` instead of a pair:
``observe(v)`` is the same single ``list.append`` as for a classic
histogram, and bucket indexing happens when a read (or the 1024th pending
observation, ``native_cell.py``) folds the batch, with bisections on the
sorted batch (``native_buckets.fold_sorted``).

Bucket limit. When more than ``max_buckets`` buckets (both signs, the zero
bucket not counted) are populated, the schema is reduced, each step halving
the resolution (index ``k`` becomes ``ceil(k / 2)``, as client_golang
does), until they fit or the schema is -4. The result is the finest schema,
at most the configured one, at which every observation so far fits: the
same whatever the batches were, since merging never adds buckets.
"""

import math
import numbers
from typing import NamedTuple, Optional, cast

from ..errors import InvalidBucketsError
from ..model import NativeHistogram
from .histogram_cell import fold_classic
from .native_buckets import (
    DEFAULT_ZERO_THRESHOLD,
    MAX_SCHEMA,
    MIN_SCHEMA,
    fold_sorted,
    reduce_schema,
)

#: The bucket limit when none is given (the native-histogram specification's example).
DEFAULT_MAX_BUCKETS = 160
DEFAULT_SCHEMA = 3


class NativeOptions(NamedTuple):
    """The validated native-histogram options of a histogram (see :func:`check_native`)."""

    schema: int
    zero_threshold: float
    max_buckets: int


def _integral(value: object) -> Optional[int]:
    """``value`` as an int when it is an integral number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def check_native(schema: object, zero_threshold: object, max_buckets: object) -> NativeOptions:
    """The options as :class:`NativeOptions`, or :class:`InvalidBucketsError`.

    ``schema`` is an integer in -4..8 (the growth factor between bucket bounds
    is ``2 ** (2 ** -schema)``: 3 gives 8 buckets per power of two);
    ``zero_threshold`` a finite real number >= 0, the half-width of the zero
    bucket; ``max_buckets`` an integer >= 1. Integral and real number types
    (numpy's too) are accepted and stored as int and float; bools are not.
    """
    s = _integral(schema)
    if s is None or not MIN_SCHEMA <= s <= MAX_SCHEMA:
        raise InvalidBucketsError(
            f"native histogram schema must be an int from {MIN_SCHEMA} to {MAX_SCHEMA}, "
            f"got {schema!r}"
        )
    if isinstance(zero_threshold, bool) or not isinstance(zero_threshold, numbers.Real):
        raise InvalidBucketsError(f"zero_threshold must be a number, got {zero_threshold!r}")
    try:
        threshold = float(zero_threshold) + 0.0  # + 0.0: -0.0 becomes 0.0
    except OverflowError:
        threshold = math.inf
    if not 0.0 <= threshold < math.inf:
        raise InvalidBucketsError(
            f"zero_threshold must be a finite number >= 0, got {zero_threshold!r}"
        )
    limit = _integral(max_buckets)
    if limit is None or limit < 1:
        raise InvalidBucketsError(f"max_buckets must be an int >= 1, got {max_buckets!r}")
    return NativeOptions(s, threshold, limit)


def native_options(
    native: object, schema: object, zero_threshold: object, max_buckets: object
) -> Optional[NativeOptions]:
    """:func:`check_native` when ``native`` is True; None when False (the options must then
    be the defaults); anything but a bool is :class:`InvalidBucketsError`."""
    if native.__class__ is not bool:
        raise InvalidBucketsError(f"native must be True or False, got {native!r}")
    if native:
        return check_native(schema, zero_threshold, max_buckets)
    if (schema, zero_threshold, max_buckets) != (
        DEFAULT_SCHEMA,
        DEFAULT_ZERO_THRESHOLD,
        DEFAULT_MAX_BUCKETS,
    ):
        raise InvalidBucketsError(
            "schema, zero_threshold and max_buckets need native=True, got "
            f"schema={schema!r}, zero_threshold={zero_threshold!r}, max_buckets={max_buckets!r}"
        )
    return None


class NativeFolded(NamedTuple):
    """What a native cell has folded so far; never changed once stored (a fold makes a new one).

    ``classic`` holds the per-bucket counts of the classic buckets, the last
    one above every bound (NaN included); their sum is the count.
    """

    classic: tuple[int, ...]
    total: float
    schema: int
    zero_count: int
    positive: dict[int, int]
    negative: dict[int, int]


def empty(bounds: tuple[float, ...], options: NativeOptions) -> NativeFolded:
    """The state of a cell with no observation."""
    return NativeFolded((0,) * (len(bounds) + 1), 0.0, options.schema, 0, {}, {})


def fold(bounds: tuple[float, ...], options: NativeOptions, items: list[object]) -> NativeFolded:
    """``items`` = ``[NativeFolded, observations...]`` folded into a new :class:`NativeFolded`."""
    folded = cast(NativeFolded, items[0])
    pending = cast(list[float], items[1:])
    if not pending:
        return folded
    classic, total, values = fold_classic(bounds, folded.classic, folded.total, pending)
    positive = dict(folded.positive)
    negative = dict(folded.negative)
    schema = folded.schema
    zero = folded.zero_count + fold_sorted(
        values, schema, options.zero_threshold, positive, negative
    )
    while len(positive) + len(negative) > options.max_buckets and schema > MIN_SCHEMA:
        positive, negative, schema = reduce_schema(positive), reduce_schema(negative), schema - 1
    return NativeFolded(classic, total, schema, zero, positive, negative)


def _pairs(buckets: dict[int, int]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted(buckets.items()))


def record(folded: NativeFolded, options: NativeOptions) -> NativeHistogram:
    """The model record of ``folded`` (buckets sorted by index)."""
    return NativeHistogram(
        folded.schema,
        options.zero_threshold,
        folded.zero_count,
        _pairs(folded.positive),
        _pairs(folded.negative),
    )
