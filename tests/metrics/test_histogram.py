"""Histograms: bucket bounds and helpers, the cell, ``Histogram`` and ``HistogramVec`` children."""

import decimal
import fractions
import math

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidBucketsError, InvalidValueError
from dyn_metrics.exposition import text as expfmt
from tests.metrics.support import (
    NOT_REAL_ROWS,
    REAL_VALUE_ROWS,
    new_histogram,
    sample_lines,
    scrape,
    snapshot,
)

# -- bucket bounds -----------------------------------------------------------------------


BUCKET_VALIDATION_ROWS = [
    # (id, factory, exception class, message prefix)
    (
        "buckets_decreasing",
        lambda: dm.Histogram("m", "h", buckets=[1, 2, 1]),
        InvalidBucketsError,
        "histogram buckets must be in increasing order: 2 >= 1",
    ),
    (
        "buckets_equal",
        lambda: dm.Histogram("m", "h", buckets=[0.5, 0.5]),
        InvalidBucketsError,
        "histogram buckets must be in increasing order: 0.5 >= 0.5",
    ),
    (
        "buckets_vec_decreasing",
        lambda: dm.HistogramVec("m", "h", ["a"], buckets=[3, 2.5]),
        InvalidBucketsError,
        "histogram buckets must be in increasing order: 3 >= 2.5",
    ),
    (
        "buckets_nan",
        lambda: dm.Histogram("m", "h", buckets=[1, math.nan]),
        InvalidBucketsError,
        "bucket bounds must not be NaN",
    ),
    (
        "buckets_not_numbers",
        lambda: dm.Histogram("m", "h", buckets=["a"]),
        InvalidBucketsError,
        "buckets must be numbers",
    ),
    (
        "buckets_overflow_float",
        lambda: dm.Histogram("m", "h", buckets=[1, 10**400]),
        InvalidBucketsError,
        "bucket bounds must fit in a float, got [1, 1000",
    ),
    (
        "buckets_vec_overflow_float",
        lambda: dm.HistogramVec("m", "h", ["a"], buckets=[-(10**400)]),
        InvalidBucketsError,
        "bucket bounds must fit in a float, got [-1000",
    ),
    (
        # rust-prometheus checks the order before dropping a trailing +Inf.
        "buckets_inf_twice",
        lambda: dm.Histogram("m", "h", buckets=[1, math.inf, math.inf]),
        InvalidBucketsError,
        "histogram buckets must be in increasing order: inf >= inf",
    ),
    (
        "buckets_string",
        lambda: dm.Histogram("m", "h", buckets="1,2"),
        InvalidBucketsError,
        "buckets must be a sequence of numbers",
    ),
]


@pytest.mark.parametrize(
    "factory, exc, prefix",
    [r[1:] for r in BUCKET_VALIDATION_ROWS],
    ids=[r[0] for r in BUCKET_VALIDATION_ROWS],
)
def test_histogram_bucket_validation(factory, exc, prefix):
    with pytest.raises(exc) as info:
        factory()
    assert type(info.value) is exc
    assert str(info.value).startswith(prefix), str(info.value)
    assert isinstance(info.value, ValueError)


BUCKET_ROWS = [
    # (given, bounds kept)
    (None, dm.DEFAULT_BUCKETS),
    ([], dm.DEFAULT_BUCKETS),
    ((), dm.DEFAULT_BUCKETS),
    ([math.inf], ()),  # only the +Inf bucket, as rust-prometheus
    ((math.inf,), ()),
    ([1, 2, math.inf], (1.0, 2.0)),
    ([0.1, 0.5, 1], (0.1, 0.5, 1.0)),
    ([-5, 0, 5], (-5.0, 0.0, 5.0)),
    ([-math.inf, 0], (-math.inf, 0.0)),
]


@pytest.mark.parametrize("given, kept", BUCKET_ROWS)
def test_histogram_buckets_normalised(given, kept):
    assert dm.Histogram("m", "h", buckets=given).desc.buckets == kept


def test_histogram_with_only_the_inf_bucket_counts_everything_there():
    h = dm.Histogram("h", "h", buckets=[math.inf])
    v = dm.HistogramVec("v", "v", ["a"], buckets=[math.inf])
    for value in (-1.0, 0.5, math.inf, math.nan):
        h.observe(value)
        v.with_label_values("x").observe(value)
    assert h.get_sample_count() == 4
    text = scrape(h, v)
    assert sample_lines(text)[0] == 'h_bucket{le="+Inf"} 4'
    assert 'v_bucket{a="x",le="+Inf"} 4' in text
    assert [line for line in sample_lines(text) if "_bucket" in line] == [
        'h_bucket{le="+Inf"} 4',
        'v_bucket{a="x",le="+Inf"} 4',
    ]


def test_default_buckets_values():
    assert dm.DEFAULT_BUCKETS == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def test_histogram_trailing_inf_bucket_written_once():
    h = dm.Histogram("m", "h", buckets=[1, 2, math.inf])
    assert scrape(h) == (
        "# HELP m h\n# TYPE m histogram\n"
        'm_bucket{le="1"} 0\nm_bucket{le="2"} 0\nm_bucket{le="+Inf"} 0\n'
        "m_sum 0\nm_count 0\n"
    )


HELPER_ROWS = [
    (dm.linear_buckets, (1, 2, 3), [1, 3, 5]),
    (dm.linear_buckets, (0.5, 0.25, 4), [0.5, 0.75, 1.0, 1.25]),
    (dm.linear_buckets, (-1, 1, 1), [-1]),
    (dm.exponential_buckets, (1, 2, 4), [1, 2, 4, 8]),
    (dm.exponential_buckets, (0.001, 2, 3), [0.001, 0.002, 0.004]),
    (dm.exponential_buckets, (100, 10, 2), [100, 1000]),
]


@pytest.mark.parametrize("fn, args, expected", HELPER_ROWS)
def test_bucket_helpers(fn, args, expected):
    assert fn(*args) == pytest.approx(expected)
    assert len(fn(*args)) == args[2]


HELPER_ERROR_ROWS = [
    (dm.linear_buckets, (1, 1, 0), "linear_buckets needs a positive count, got 0"),
    (dm.linear_buckets, (1, 1, -2), "linear_buckets needs a positive count, got -2"),
    (dm.linear_buckets, (1, 0, 3), "linear_buckets needs a positive width, got 0"),
    (dm.linear_buckets, (1, -1, 3), "linear_buckets needs a positive width, got -1"),
    (dm.exponential_buckets, (1, 2, 0), "exponential_buckets needs a positive count, got 0"),
    (dm.exponential_buckets, (0, 2, 3), "exponential_buckets needs a positive start, got 0"),
    (dm.exponential_buckets, (-1, 2, 3), "exponential_buckets needs a positive start, got -1"),
    (dm.exponential_buckets, (1, 1, 3), "exponential_buckets needs a factor greater than 1, got 1"),
    (
        dm.exponential_buckets,
        (1, 0.5, 3),
        "exponential_buckets needs a factor greater than 1, got 0.5",
    ),
]


@pytest.mark.parametrize("fn, args, prefix", HELPER_ERROR_ROWS)
def test_bucket_helper_errors(fn, args, prefix):
    with pytest.raises(InvalidBucketsError) as info:
        fn(*args)
    assert str(info.value).startswith(prefix)


def test_bucket_helper_output_is_valid_for_histograms():
    h = dm.Histogram("m", "h", buckets=dm.exponential_buckets(0.001, 2, 12))
    assert len(h.desc.buckets) == 12


# -- cells -------------------------------------------------------------------------------


def test_histogram_cell_observations_are_cumulative_with_le_semantics():
    cell = new_histogram()
    for v in (0.5, 1.0, 2.0, 2.5, 4.0, 100.0):
        cell.observe(v)
    cumulative, total, count, _ = snapshot(cell)
    # le="1": 0.5, 1.0; le="2.5": + 2.0, 2.5; le="5": + 4.0; +Inf: + 100
    assert cumulative == [2, 4, 5, 6]
    assert total == 110.0
    assert count == 6
    assert cell.get_sample_count() == 6
    assert cell.get_sample_sum() == 110.0


def test_histogram_cell_nan_counts_only_in_inf_bucket():
    cell = new_histogram()
    cell.observe(math.nan)
    cumulative, total, count, _ = snapshot(cell)
    assert cumulative == [0, 0, 0, 1]
    assert count == 1
    assert math.isnan(total)


def test_histogram_cell_negative_infinity_lands_in_first_bucket():
    cell = new_histogram()
    cell.observe(-math.inf)
    cell.observe(math.inf)
    cumulative, total, count, _ = snapshot(cell)
    assert cumulative == [1, 1, 1, 2]
    assert count == 2
    assert math.isnan(total)  # -inf + inf


def test_histogram_cell_many_observations_fold_exactly():
    # More than the pending-buffer size, so folds happen during observe.
    cell = new_histogram()
    n = 1000
    for i in range(n):
        cell.observe((0.5, 2.0, 3.0, 10.0)[i % 4])
    cumulative, total, count, _ = snapshot(cell)
    assert cumulative == [n // 4, n // 2, 3 * n // 4, n]
    assert total == (0.5 + 2.0 + 3.0 + 10.0) * n / 4
    assert count == n


# -- Histogram ---------------------------------------------------------------------------


def test_histogram_observe_and_text():
    h = dm.Histogram("h_seconds", "Latency", buckets=[0.1, 0.5, 1.0])
    for v in (0.05, 0.1, 0.3, 2.0):
        h.observe(v)
    assert h.get_sample_count() == 4
    assert h.get_sample_sum() == pytest.approx(2.45)
    assert scrape(h) == (
        "# HELP h_seconds Latency\n# TYPE h_seconds histogram\n"
        'h_seconds_bucket{le="0.1"} 2\n'
        'h_seconds_bucket{le="0.5"} 3\n'
        'h_seconds_bucket{le="1"} 3\n'
        'h_seconds_bucket{le="+Inf"} 4\n'
        f"h_seconds_sum {expfmt.format_value(0.05 + 0.1 + 0.3 + 2.0)}\n"
        "h_seconds_count 4\n"
    )


def test_histogram_nan_counts_only_in_inf_bucket():
    h = dm.Histogram("h", "h", buckets=[1.0])
    h.observe(math.nan)
    assert scrape(h) == (
        "# HELP h h\n# TYPE h histogram\n"
        'h_bucket{le="1"} 0\nh_bucket{le="+Inf"} 1\nh_sum NaN\nh_count 1\n'
    )


def test_histogram_negative_infinity_in_first_bucket():
    h = dm.Histogram("h", "h", buckets=[-1.0, 1.0])
    h.observe(-math.inf)
    assert scrape(h) == (
        "# HELP h h\n# TYPE h histogram\n"
        'h_bucket{le="-1"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\n'
        "h_sum -inf\nh_count 1\n"
    )


@pytest.mark.parametrize(
    "bad",
    ["x", "5", b"5", None, [1.0], 1j, 10**400, decimal.Decimal("sNaN")]
    + [r[1] for r in NOT_REAL_ROWS],
    ids=["str", "numeric str", "bytes", "None", "list", "complex", "huge int", "signalling NaN"]
    + [r[0] for r in NOT_REAL_ROWS],
)
def test_histogram_observation_that_is_not_a_real_number_is_refused(bad):
    h = dm.Histogram("h", "h", buckets=[1.0])
    h.observe(0.5)
    with pytest.raises(InvalidValueError, match="histogram observation must be a real number"):
        h.observe(bad)
    h.observe(2.0)
    assert h.get_sample_count() == 2
    assert scrape(h) == (
        "# HELP h h\n# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 2.5\nh_count 2\n'
    )


@pytest.mark.parametrize(
    "number, as_float",
    [
        (decimal.Decimal("0.25"), 0.25),
        (fractions.Fraction(1, 4), 0.25),
        (True, 1.0),
        (2**60, 2.0**60),
    ]
    + [r[1:] for r in REAL_VALUE_ROWS],
)
def test_histogram_observation_of_other_number_types_counts_as_float(number, as_float):
    h = dm.Histogram("h", "h", buckets=[1.0])
    h.observe(number)
    assert h.get_sample_sum() == as_float and h.get_sample_count() == 1


def test_histogram_time_context_manager_and_decorator():
    h = dm.Histogram("h", "h")
    with h.time():
        pass

    @h.time()
    def f():
        return "ok"

    assert f() == "ok"
    assert h.get_sample_count() == 2


def test_histogram_start_timer_observe_duration():
    h = dm.Histogram("h", "h")
    timer = h.start_timer()
    elapsed = timer.observe_duration()
    assert h.get_sample_count() == 1
    assert h.get_sample_sum() == elapsed >= 0.0


# -- HistogramVec children ---------------------------------------------------------------


def test_histogramvec_children_have_le_last():
    v = dm.HistogramVec("h", "h", ["route"], {"zone": "z"}, buckets=[1])
    v.with_label_values("/b").observe(0.5)
    v.with_label_values("/a").observe(3)
    assert sample_lines(scrape(v)) == [
        'h_bucket{route="/a",zone="z",le="1"} 0',
        'h_bucket{route="/a",zone="z",le="+Inf"} 1',
        'h_sum{route="/a",zone="z"} 3',
        'h_count{route="/a",zone="z"} 1',
        'h_bucket{route="/b",zone="z",le="1"} 1',
        'h_bucket{route="/b",zone="z",le="+Inf"} 1',
        'h_sum{route="/b",zone="z"} 0.5',
        'h_count{route="/b",zone="z"} 1',
    ]


def test_histogramvec_child_methods():
    child = dm.HistogramVec("h", "h", ["a"]).with_label_values("x")
    child.observe(1)
    with child.time():
        pass
    child.start_timer().observe_duration()
    assert child.get_sample_count() == 3
