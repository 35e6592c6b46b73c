"""Native (exponential) histogram bucket indexing, exact at every bucket boundary.

A native histogram of schema ``s`` (-4..8) has buckets whose bounds are the
powers of ``base = 2 ** (2 ** -s)``: bucket ``i`` holds the values ``v`` with
``base ** (i - 1) < |v| <= base ** i`` (upper bound inclusive, as Prometheus
defines them). :func:`bucket_index` gives ``i`` for a finite ``|v| > 0``;
:func:`fold_sorted` counts a sorted batch of values into buckets.

Exactness. ``math.frexp`` splits ``v = frac * 2 ** exp`` exactly. Within one
octave the ``n = 2 ** s`` bounds (schemas > 0) are ``2 ** (j / n - 1)``,
irrational but for ``j = 0``; the table here holds, for each, the largest
float not above it (found once per schema with integer arithmetic on the
float's ratio). For a float ``frac``, ``frac <= bound`` exactly when
``frac <= floor_float(bound)``, so one ``bisect`` on that table decides every
value right, a few ulps from a bound included. Schemas ``<= 0`` have powers
of two as bounds: ``frexp`` alone decides (client_golang's method).
"""

import math
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import repeat
from typing import cast

MIN_SCHEMA = -4
MAX_SCHEMA = 8
#: The zero bucket's default half-width: a bucket bound at every schema (client_golang's).
DEFAULT_ZERO_THRESHOLD = 2.0**-128

_MAX_FLOAT = 1.7976931348623157e308
_MIN_NORMAL = 2.2250738585072014e-308
_frexp = math.frexp
_ldexp = math.ldexp

# schema -> the largest floats not above 2 ** (j / n - 1), j = 0 .. n - 1.
_tables: dict[int, list[float]] = {0: [0.5]}


def _below_or_at(b: float, j: int, n: int) -> bool:
    """``b <= 2 ** (j / n - 1)`` exactly, for ``0.5 <= b < 1``: ``b ** n <= 2 ** (j - n)``."""
    m, d = b.as_integer_ratio()  # b = m / d, d a power of two
    q = d.bit_length() - 1
    # m ** n / 2 ** (q * n) <= 2 ** (j - n)  <=>  m ** n <= 2 ** (q * n + j - n)
    return bool(m**n <= 1 << (q * n + j - n))


def octave_bounds(schema: int) -> list[float]:
    """The bounds of one octave ``[0.5, 1)`` at ``schema``, each rounded down to a float."""
    table = _tables.get(max(schema, 0))
    if table is not None:
        return table
    n = 1 << schema
    table = []
    for j in range(n):
        b = 2.0 ** (j / n - 1.0)
        while not _below_or_at(b, j, n):
            b = math.nextafter(b, 0.0)
        while _below_or_at(up := math.nextafter(b, 1.0), j, n) and up < 1.0:
            b = up
        table.append(b)
    _tables[schema] = table  # one assignment: a racing builder stores an equal list
    return table


def bucket_index(value: float, schema: int) -> int:
    """The bucket of ``|value|`` (finite, > 0) in a native histogram of ``schema``."""
    frac, exp = _frexp(abs(value))  # |value| = frac * 2 ** exp, 0.5 <= frac < 1
    if schema <= 0:
        # The bounds are 2 ** (k * 2 ** -schema): the octave decides, a power of
        # two (frac == 0.5) belonging to the bucket it bounds from above.
        key = exp - 1 if frac == 0.5 else exp
        shift = -schema
        return (key + (1 << shift) - 1) >> shift
    table = octave_bounds(schema)
    return bisect_left(table, frac) + (exp - 1) * len(table)


def overflow_index(schema: int) -> int:
    """The bucket of +-Inf: the one after the bucket holding the largest float."""
    return bucket_index(_MAX_FLOAT, schema) + 1


def upper_float(index: int, schema: int) -> float:
    """The largest float in bucket ``index``: its bound rounded down, inf for the overflow one."""
    top = overflow_index(schema)
    if index >= top:
        return math.inf
    if index == top - 1:
        return _MAX_FLOAT  # the bucket of the largest float, whose bound is past it
    if schema <= 0:
        return _ldexp(1.0, index << -schema)  # 0.0 below the smallest float
    table = octave_bounds(schema)
    octave, j = divmod(index, len(table))
    # 2 ** (index / n) = 2 ** (octave + 1) * 2 ** (j / n - 1); ldexp scales exactly
    # in the normal range, and rounds below it, where the bound is settled exactly.
    b = _ldexp(table[j], octave + 1)
    if b < _MIN_NORMAL:
        while b > 0.0 and bucket_index(b, schema) > index:
            b = math.nextafter(b, 0.0)
        while bucket_index(up := math.nextafter(b, 1.0), schema) <= index:
            b = up
    return b


def bucket_upper_bound(index: int, schema: int) -> float:
    """``base ** index`` as a float (for display and tests)."""
    return float(2.0 ** (index * 2.0**-schema))


# schema -> {index: upper_float(index, schema)} for the indices met so far
# (deterministic values: threads racing on an entry store the same float).
_uppers: dict[int, dict[int, float]] = {}
_UPPERS_KEPT = 1 << 16  # entries per schema before the cache starts over
#: A side whose values span more indices than this is walked bucket by bucket.
_DENSE_SPREAD = 256


def _upper_cache(schema: int) -> dict[int, float]:
    cache = _uppers.get(schema)
    if cache is None or len(cache) > _UPPERS_KEPT:
        cache = _uppers[schema] = {}
    return cache


def _uppers_of(first: int, last: int, schema: int) -> list[float]:
    """``upper_float(i)`` for ``i`` in ``first..last - 1``, from the cache."""
    upper = _upper_cache(schema)
    got = list(map(upper.get, range(first, last)))
    if None in got:
        for at, i in enumerate(range(first, last)):
            if got[at] is None:
                got[at] = upper[i] = upper_float(i, schema)
    return cast(list[float], got)


def _index(v: float, schema: int, top: int) -> int:
    return top if v == math.inf else bucket_index(v, schema)


def _count_into(buckets: dict[int, int], first: int, cuts: list[int]) -> None:
    """Add ``cuts[k + 1] - cuts[k]`` to bucket ``first + k``, skipping empty ones."""
    for i, c in zip(range(first, first + len(cuts)), map(operator.sub, cuts[1:], cuts)):
        if c:
            buckets[i] = buckets.get(i, 0) + c


def _upper_of(i: int, schema: int, upper: dict[int, float]) -> float:
    ub = upper.get(i)
    if ub is None:
        ub = upper[i] = upper_float(i, schema)
    return ub


def _walk_positive(
    numbers: Sequence[float], p: int, end: int, schema: int, top: int, out: dict[int, int]
) -> None:
    """Count ``numbers[p:end]`` (all > 0) bucket by populated bucket: one index, one bisection."""
    upper = _upper_cache(schema)
    while p < end:
        i = _index(numbers[p], schema, top)
        q = bisect_right(numbers, _upper_of(i, schema, upper), p, end)
        out[i] = out.get(i, 0) + q - p
        p = q


def _walk_negative(
    numbers: Sequence[float], lo: int, schema: int, top: int, out: dict[int, int]
) -> None:
    """Count ``numbers[:lo]`` (all < 0) by ``|v|``, from the one nearest zero outwards."""
    upper = _upper_cache(schema)
    p = lo
    while p > 0:
        i = _index(-numbers[p - 1], schema, top)
        q = bisect_left(numbers, -_upper_of(i, schema, upper), 0, p)
        out[i] = out.get(i, 0) + p - q
        p = q


def fold_sorted(
    numbers: Sequence[float],
    schema: int,
    threshold: float,
    positive: dict[int, int],
    negative: dict[int, int],
) -> int:
    """Count the sorted, NaN-free ``numbers`` into ``positive`` / ``negative``; the zero count.

    Values above ``threshold`` go to the positive buckets, values below
    ``-threshold`` to the negative ones (by ``|v|``), the rest to the zero
    bucket, whose count is returned; +-Inf to the overflow buckets. Each
    bucket's values end at its largest float (cached per index), so a side
    is counted with bisections, not by indexing every value: when the side's
    values span few indices, one C-level map of bisections over every bound
    between its extremes; when they spread wide (1 and +Inf are 8,193
    indices apart at schema 3), a walk that indexes the first value of each
    populated bucket and bisects to its end, so the cost follows the
    populated buckets, never the spread.
    """
    top = overflow_index(schema)
    lo = bisect_left(numbers, -threshold)  # numbers[:lo] < -threshold
    hi = bisect_right(numbers, threshold, lo)  # numbers[hi:] > threshold
    end = len(numbers)
    if hi < end:
        first = _index(numbers[hi], schema, top)
        last = _index(numbers[end - 1], schema, top)
        if last - first > _DENSE_SPREAD:
            _walk_positive(numbers, hi, end, schema, top, positive)
        else:
            bounds = _uppers_of(first, last, schema)  # the last bucket ends at `end`
            cuts = [hi, *map(bisect_right, repeat(numbers), bounds, repeat(hi), repeat(end)), end]
            _count_into(positive, first, cuts)
    if lo > 0:
        first = _index(-numbers[lo - 1], schema, top)
        last = _index(-numbers[0], schema, top)
        if last - first > _DENSE_SPREAD:
            _walk_negative(numbers, lo, schema, top, negative)
        else:
            # Bucket i holds numbers[q_i:q_(i-1)], q_i = the first position >= -upper(i).
            bounds = [-b for b in _uppers_of(first, last, schema)]
            qs = [lo, *map(bisect_left, repeat(numbers), bounds, repeat(0), repeat(lo)), 0]
            _count_into(negative, first, [-q for q in qs])
    return hi - lo


def reduce_schema(buckets: dict[int, int]) -> dict[int, int]:
    """``buckets`` at the next coarser schema: index ``k`` becomes ``ceil(k / 2)``."""
    out: dict[int, int] = {}
    for k, c in buckets.items():
        k = (k + 1) >> 1
        out[k] = out.get(k, 0) + c
    return out
