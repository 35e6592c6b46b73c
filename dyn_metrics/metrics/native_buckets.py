"""Native (exponential) histogram bucket indexing, exact at every bucket boundary.

A native histogram of schema ``s`` (-4..8) has buckets whose bounds are the
powers of ``base = 2 ** (2 ** -s)``: bucket ``i`` holds the values ``v`` with
``base ** (i - 1) < |v| <= base ** i`` (upper bound inclusive, as Prometheus
defines them). :func:`bucket_index` gives ``i`` for a finite ``|v| > 0``.

* Schemas ``<= 0``: every bound is a power of two, so ``math.frexp`` gives
  the index exactly (client_golang's method).
* Schemas ``> 0``: with ``n = 2 ** s``, ``i`` is the least integer with
  ``2 ** i >= v ** n``. A float estimate (``frexp`` and a table of the ``n``
  bounds within one octave) is right except within a few ulps of a bound,
  irrational there; an estimate that close is settled with exact integer
  arithmetic on ``v``'s ratio (``v ** n`` against a power of two), so no value
  lands in the wrong bucket through float rounding.
"""

import math
from bisect import bisect_left

MIN_SCHEMA = -4
MAX_SCHEMA = 8

# The n bounds of one octave [0.5, 1) for each positive schema: 2 ** (j / n - 1).
_OCTAVE_BOUNDS = {s: [2.0 ** (j / (1 << s) - 1.0) for j in range(1 << s)] for s in range(1, 9)}
#: Relative distance to a bound below which the float estimate is checked exactly.
_CLOSE = 1e-12


def bucket_index(value: float, schema: int) -> int:
    """The bucket of ``|value|`` (finite, > 0) in a native histogram of ``schema``."""
    v = abs(value)
    frac, exp = math.frexp(v)  # v = frac * 2 ** exp, 0.5 <= frac < 1
    if schema <= 0:
        # The bounds are 2 ** (k * 2 ** -schema): v's octave decides, a power of
        # two (frac == 0.5) belonging to the bucket it bounds from above.
        key = exp - 1 if frac == 0.5 else exp
        shift = -schema
        return (key + (1 << shift) - 1) >> shift
    bounds = _OCTAVE_BOUNDS[schema]
    n = len(bounds)
    j = bisect_left(bounds, frac)
    index = j + (exp - 1) * n
    # frac sits in (bounds[j-1], bounds[j]]; near either end, decide exactly.
    near = (j < n and abs(frac - bounds[j]) <= _CLOSE * frac) or (
        j > 0 and abs(frac - bounds[j - 1]) <= _CLOSE * frac
    )
    return _exact_index(v, n) if near else index


def _exact_index(v: float, n: int) -> int:
    """The least ``i`` with ``2 ** i >= v ** n``, in integers."""
    m, d = v.as_integer_ratio()  # v = m / d, d a power of two
    q = d.bit_length() - 1
    power: int = m**n  # v ** n = power / 2 ** (q * n)
    # ceil(log2(power)) for an integer power >= 1 is (power - 1).bit_length().
    return (power - 1).bit_length() - q * n


def bucket_upper_bound(index: int, schema: int) -> float:
    """``base ** index`` as a float (for display and tests)."""
    return float(2.0 ** (index * 2.0**-schema))
