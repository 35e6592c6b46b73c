"""Native histograms: options, folding into exponential buckets, schema reduction, rendering."""

import math
import random
import threading
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dyn_metrics as dm
from dyn_metrics.errors import InvalidBucketsError
from dyn_metrics.metrics.native_buckets import (
    DEFAULT_ZERO_THRESHOLD,
    MAX_SCHEMA,
    MIN_SCHEMA,
    overflow_index,
)
from tests.metrics.test_native_buckets import reference

SCHEMAS = list(range(MIN_SCHEMA, MAX_SCHEMA + 1))


def expected(values, schema, threshold):
    """Bucket counts by the exact reference, one value at a time (no reduction)."""
    pos, neg, zero = Counter(), Counter(), 0
    for v in values:
        if v != v:
            continue
        if v > threshold:
            pos[overflow_index(schema) if v == math.inf else reference(v, schema)] += 1
        elif v < -threshold:
            neg[overflow_index(schema) if v == -math.inf else reference(v, schema)] += 1
        else:
            zero += 1
    return dict(pos), dict(neg), zero


def native_of(metric):
    (family,) = metric.collect()
    (count,) = [s for s in family.samples if s.name.endswith("_count")]
    return count.native, count.value


def reduced(buckets, steps):
    out = Counter()
    for k, c in buckets.items():
        for _ in range(steps):
            k = (k + 1) >> 1
        out[k] += c
    return dict(out)


values_st = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-1e6, max_value=1e6),
        st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, -4.0, 1e-39, DEFAULT_ZERO_THRESHOLD]),
    ),
    max_size=600,
)


@settings(max_examples=150, deadline=None)
@given(values_st, st.sampled_from(SCHEMAS), st.sampled_from([0.0, DEFAULT_ZERO_THRESHOLD, 0.25]))
def test_buckets_match_exact_indexing_value_by_value(values, schema, threshold):
    h = dm.Histogram(
        "h", "h", native=True, schema=schema, zero_threshold=threshold, max_buckets=10**6
    )
    # Reads in the middle fold several batches; the result must not depend on them.
    for i, v in enumerate(values):
        h.observe(v)
        if i % 97 == 0:
            h.get_sample_count()
    native, count = native_of(h)
    pos, neg, zero = expected(values, schema, threshold)
    assert native.schema == schema
    assert native.zero_threshold == threshold
    assert dict(native.positive) == pos
    assert dict(native.negative) == neg
    assert native.zero_count == zero
    assert count == len(values)
    assert [i for i, _ in native.positive] == sorted(pos)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e12, max_value=1e12), min_size=1, max_size=400),
    st.sampled_from(SCHEMAS),
    st.integers(min_value=1, max_value=40),
)
def test_schema_reduction_is_the_finest_fit_and_keeps_totals(values, schema, max_buckets):
    h = dm.Histogram("h", "h", native=True, schema=schema, max_buckets=max_buckets)
    for i, v in enumerate(values):
        h.observe(v)
        if i % 50 == 0:
            h.get_sample_count()
    native, count = native_of(h)
    pos, neg, zero = expected(values, schema, DEFAULT_ZERO_THRESHOLD)
    # The finest schema at which every observation fits, but never below -4.
    steps = 0
    while (
        len(reduced(pos, steps)) + len(reduced(neg, steps)) > max_buckets
        and schema - steps > MIN_SCHEMA
    ):
        steps += 1
    assert native.schema == schema - steps
    assert dict(native.positive) == reduced(pos, steps)
    assert dict(native.negative) == reduced(neg, steps)
    assert native.zero_count == zero
    total = native.zero_count + sum(c for _, c in native.positive + native.negative)
    assert total == count == len(values)


def test_reduction_maps_to_the_coarser_schemas_own_index():
    rng = random.Random(3)
    values = [rng.lognormvariate(0, 4) for _ in range(3000)]
    h = dm.Histogram("h", "h", native=True, schema=8, max_buckets=20)
    for v in values:
        h.observe(v)
    native, _ = native_of(h)
    assert native.schema < 8
    direct = Counter(reference(v, native.schema) for v in values)
    assert dict(native.positive) == dict(direct)
    assert len(native.positive) <= 20


def test_infinities_and_nan():
    h = dm.Histogram("h", "h", native=True, schema=8)
    for v in (math.inf, -math.inf, math.nan, 1.7976931348623157e308):
        h.observe(v)
    native, count = native_of(h)
    assert count == 4
    assert dict(native.positive) == {262144: 1, 262145: 1}
    assert dict(native.negative) == {262145: 1}
    assert math.isnan(h.get_sample_sum())


def test_spec_index_table():
    # The spot checks Prometheus' own port agrees with.
    table = {
        1.0: (0, 0, 0, 0),
        1.5: (1, 1, 5, 150),
        2.0: (1, 1, 8, 256),
        0.1: (0, -3, -26, -850),
        100.0: (1, 7, 54, 1701),
    }
    for value, indices in table.items():
        for schema, want in zip((-4, 0, 3, 8), indices):
            h = dm.Histogram("h", "h", native=True, schema=schema)
            h.observe(value)
            assert native_of(h)[0].positive == ((want, 1),), (value, schema)


def test_text_of_a_native_only_histogram_is_count_sum_and_inf():
    reg = dm.Registry()
    h = reg.register(dm.Histogram("lat_seconds", "Latency", native=True))
    for v in (0.5, 2.0, -1.0):
        h.observe(v)
    assert reg.prometheus_expfmt() == (
        "# HELP lat_seconds Latency\n"
        "# TYPE lat_seconds histogram\n"
        'lat_seconds_bucket{le="+Inf"} 3\n'
        "lat_seconds_sum 1.5\n"
        "lat_seconds_count 3\n"
    )
    assert dm.check(reg.openmetrics_expfmt(), "openmetrics").errors == []


def test_native_with_classic_buckets_keeps_both():
    h = dm.Histogram("h", "h", buckets=[1, 2], native=True, schema=0)
    for v in (0.5, 1.5, 3.0):
        h.observe(v)
    (family,) = h.collect()
    buckets = [(dict(s.labels)["le"], s.value) for s in family.samples if s.name == "h_bucket"]
    assert buckets == [("1", 1), ("2", 2), ("+Inf", 3)]
    assert native_of(h)[0].positive == ((-1, 1), (1, 1), (2, 1))  # (.25, .5], (1, 2], (2, 4]


def test_exemplar_of_a_native_only_histogram_rides_on_inf():
    h = dm.Histogram("h", "h", native=True)
    h.observe(0.3, {"trace_id": "abc"})
    (family,) = h.collect()
    (inf,) = [s for s in family.samples if s.name == "h_bucket"]
    assert inf.exemplar is not None and inf.exemplar.labels == (("trace_id", "abc"),)


def test_vec_and_facade_take_the_options():
    vec = dm.HistogramVec("h", "h", ["route"], native=True, schema=1, max_buckets=5)
    vec.labels("/a").observe(3.0)
    (family,) = vec.collect()
    (count,) = [s for s in family.samples if s.name == "h_count"]
    assert count.labels == (("route", "/a"),)
    assert count.native.schema == 1 and count.native.positive == ((4, 1),)
    drt = dm.DistributedRuntime()
    ep = drt.namespace("ns").component("comp").endpoint("ep")
    hist = ep.metrics.create_histogram("ttft_seconds", "TTFT", native=True, schema=2)
    hist.observe(1.0)
    vec2 = ep.metrics.create_histogramvec(
        "itl_seconds", "ITL", ["model"], native=True, zero_threshold=0.001
    )
    vec2.with_label_values("llama").observe(0.0005)
    text = drt.render_exposition("text")
    assert 'dynamo_component_ttft_seconds_bucket{dynamo_component="comp"' in text
    native, _ = native_of(hist)
    assert native.schema == 2
    (fam2,) = vec2.collect()
    (count2,) = [s for s in fam2.samples if s.name.endswith("_count")]
    assert count2.native.zero_count == 1 and count2.native.zero_threshold == 0.001


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schema": 9}, "schema must be an int from -4 to 8, got 9"),
        ({"schema": -5}, "got -5"),
        ({"schema": 3.0}, "got 3.0"),
        ({"schema": True}, "got True"),
        ({"zero_threshold": -1e-9}, "zero_threshold must be a finite number >= 0, got -1e-09"),
        ({"zero_threshold": math.inf}, "got inf"),
        ({"zero_threshold": math.nan}, "got nan"),
        ({"zero_threshold": "0"}, "zero_threshold must be a number, got '0'"),
        ({"max_buckets": 0}, "max_buckets must be an int >= 1, got 0"),
        ({"max_buckets": 2.5}, "got 2.5"),
    ],
)
def test_bad_options_are_typed_errors(kwargs, message):
    with pytest.raises(InvalidBucketsError, match=message.replace("(", r"\(").replace("+", r"\+")):
        dm.Histogram("h", "h", native=True, **kwargs)
    with pytest.raises(InvalidBucketsError):
        dm.HistogramVec("h", "h", ["a"], native=True, **kwargs)


def test_options_without_native_are_refused():
    with pytest.raises(InvalidBucketsError, match="need native=True"):
        dm.Histogram("h", "h", schema=2)


def test_failed_create_registers_nothing():
    drt = dm.DistributedRuntime()
    m = drt.namespace("ns").metrics
    with pytest.raises(InvalidBucketsError):
        m.create_histogram("x_seconds", "x", native=True, schema=12)
    m.create_histogram("x_seconds", "x", native=True)  # the name is still free


def test_threads_lose_no_observation():
    h = dm.Histogram("h", "h", native=True, schema=4, max_buckets=30)
    per_thread = 20000

    def work(seed):
        rng = random.Random(seed)
        for _ in range(per_thread):
            h.observe(rng.uniform(-50, 50))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        native_of(h)  # reads racing the writers
    for t in threads:
        t.join()
    native, count = native_of(h)
    assert count == 4 * per_thread
    assert native.zero_count + sum(c for _, c in native.positive + native.negative) == count
    assert len(native.positive) + len(native.negative) <= 30


def test_native_and_classic_of_one_name_across_sources_conflict():
    # Prometheus judges a protobuf family by its first metric: a mixed family loses
    # one kind's buckets, so the merge refuses it as it refuses a TYPE conflict.
    drt = dm.DistributedRuntime()
    ns = drt.namespace("ns")
    ns.component("a").metrics.create_histogram("lat_seconds", "Latency", native=True)
    ns.component("b").metrics.create_histogram("lat_seconds", "Latency", buckets=[1, 2])
    with pytest.raises(dm.DescriptorConflictError, match="mixes native and classic"):
        drt.render_exposition("protobuf")


def test_option_types_are_normalised():
    options = dm.Histogram(
        "h", "h", native=True, schema=2, zero_threshold=-0.0, max_buckets=7
    ).desc.native
    assert options.zero_threshold == 0.0 and math.copysign(1, options.zero_threshold) == 1
    from fractions import Fraction

    options = dm.Histogram("h", "h", native=True, zero_threshold=Fraction(1, 4)).desc.native
    assert options.zero_threshold == 0.25 and type(options.zero_threshold) is float
    with pytest.raises(InvalidBucketsError, match="native must be True or False, got 'no'"):
        dm.Histogram("h", "h", native="no")
    with pytest.raises(InvalidBucketsError, match="finite number"):
        dm.Histogram("h", "h", native=True, zero_threshold=10**400)


def test_values_far_apart_fold_by_populated_bucket():
    # 1.0 and +Inf are 262,145 buckets apart at schema 8: the fold walks the two
    # populated buckets instead of every bound between them.
    h = dm.Histogram("h", "h", native=True, schema=8)
    for v in [1.0, math.inf, -1e300, -1e-30] * 600:
        h.observe(v)
    native, count = native_of(h)
    assert count == 2400
    assert dict(native.positive) == {0: 600, overflow_index(8): 600}
    assert dict(native.negative) == {reference(1e300, 8): 600, reference(1e-30, 8): 600}
