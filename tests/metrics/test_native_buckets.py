"""Native histogram bucket indexing against exact rational arithmetic, for every schema."""

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dyn_metrics.metrics.native_buckets import (
    MAX_SCHEMA,
    MIN_SCHEMA,
    bucket_index,
    bucket_upper_bound,
)

SCHEMAS = list(range(MIN_SCHEMA, MAX_SCHEMA + 1))


def reference(value, schema):
    """The least i with base ** i >= |value|, base = 2 ** (2 ** -schema), in fractions."""
    v = Fraction(abs(value))
    if schema <= 0:
        k = 2**-schema  # base = 2 ** k: the least e with 2 ** e >= v, then ceil(e / k)
        e = math.floor(math.log2(v)) - 2
        while Fraction(2) ** e < v:
            e += 1
        return -((-e) // k)
    n = 2**schema  # base ** i >= v  <=>  2 ** i >= v ** n
    target = v**n
    i = math.floor(n * math.log2(v)) - 2
    while Fraction(2) ** i < target:
        i += 1
    return i


finite_positive = st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(finite_positive, st.sampled_from(SCHEMAS), st.booleans())
def test_bucket_index_is_exact_for_any_value(value, schema, negative):
    assert bucket_index(-value if negative else value, schema) == reference(value, schema)


def _near_bounds():
    rows = []
    for schema in SCHEMAS:
        for i in (-1100, -40, -3, -1, 0, 1, 2, 3, 7, 50, 1000):
            bound = 2.0 ** (i * 2.0**-schema) if abs(i * 2.0**-schema) < 1020 else None
            if bound is None or bound == 0 or math.isinf(bound):
                continue
            for v in (math.nextafter(bound, 0), bound, math.nextafter(bound, math.inf)):
                if v > 0 and math.isfinite(v):
                    rows.append((v, schema))
    return rows


@pytest.mark.parametrize("value, schema", _near_bounds())
def test_values_at_and_beside_every_kind_of_bound(value, schema):
    assert bucket_index(value, schema) == reference(value, schema)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_powers_of_two_close_their_bucket(schema):
    # A power of two that is a bound is its bucket's upper bound (inclusive).
    for e in (-20, -1, 0, 1, 10):
        i = bucket_index(2.0**e, schema)
        assert bucket_upper_bound(i, schema) == 2.0**e or schema < 0
        assert i == reference(2.0**e, schema)


def test_schema_reduction_merges_buckets_exactly():
    # Bucket i of schema s lies inside bucket ceil(i / 2) of schema s - 1.
    for schema in range(MIN_SCHEMA + 1, MAX_SCHEMA + 1):
        for value in (0.001, 0.3, 1.0, 1.5, 7.0, 1e9):
            i = bucket_index(value, schema)
            assert bucket_index(value, schema - 1) == -((-i) // 2)
