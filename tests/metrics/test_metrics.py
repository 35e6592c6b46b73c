"""Metric types: validation at construction, value semantics, bucket helpers,
and the two renderings (``collect()`` model and ``write_text``) agreeing."""

import decimal
import fractions
import math

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import (
    InvalidBucketsError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
)
from dyn_metrics.exposition import text as expfmt
from dyn_metrics.metrics.family import Desc


def scrape(*metrics):
    reg = dm.Registry()
    for m in metrics:
        reg.register(m)
    return reg.prometheus_expfmt()


# -- validation at construction (section 1.6; rust-prometheus messages first) --

VALIDATION_ROWS = [
    # (id, factory, exception class, message prefix)
    # help
    ("empty_help", lambda: dm.Counter("m", ""), InvalidValueError, "empty help string"),
    ("help_not_str", lambda: dm.Gauge("m", None), InvalidValueError, "help must be a string"),
    # metric names
    (
        "metric_name_digit",
        lambda: dm.Counter("1x", "h"),
        InvalidNameError,
        "'1x' is not a valid metric name",
    ),
    (
        "metric_name_dash",
        lambda: dm.Gauge("a-b", "h"),
        InvalidNameError,
        "'a-b' is not a valid metric name",
    ),
    (
        "metric_name_empty",
        lambda: dm.Counter("", "h"),
        InvalidNameError,
        "'' is not a valid metric name",
    ),
    (
        "metric_name_not_str",
        lambda: dm.Counter(5, "h"),
        InvalidNameError,
        "expected metric name as str",
    ),
    # label names
    (
        "const_label_name_digit",
        lambda: dm.Counter("m", "h", {"1x": "v"}),
        InvalidNameError,
        "'1x' is not a valid label name",
    ),
    (
        "const_label_name_colon",
        lambda: dm.Counter("m", "h", {"a:b": "v"}),
        InvalidNameError,
        "'a:b' is not a valid label name",
    ),
    (
        "const_label_name_unicode",
        lambda: dm.Counter("m", "h", {"é": "v"}),
        InvalidNameError,
        "'é' is not a valid label name",
    ),
    (
        "variable_label_name_digit",
        lambda: dm.CounterVec("m", "h", ["1x"]),
        InvalidNameError,
        "'1x' is not a valid label name",
    ),
    (
        "variable_label_name_empty",
        lambda: dm.GaugeVec("m", "h", [""]),
        InvalidNameError,
        "'' is not a valid label name",
    ),
    # duplicates
    (
        "duplicate_const_label",
        lambda: dm.Counter("m", "h", [("a", "1"), ("a", "2")]),
        InvalidLabelsError,
        "duplicate const label name a",
    ),
    (
        "duplicate_variable_label",
        lambda: dm.CounterVec("m", "h", ["a", "b", "a"]),
        InvalidLabelsError,
        "duplicate variable label name a",
    ),
    (
        "variable_label_also_const",
        lambda: dm.CounterVec("m", "h", ["a"], {"a": "1"}),
        InvalidLabelsError,
        "label name 'a' is both a constant and a variable label",
    ),
    # label values and shapes
    (
        "const_label_value_not_str",
        lambda: dm.Counter("m", "h", {"a": 1}),
        InvalidLabelsError,
        "const label 'a' must have a string value, got 1",
    ),
    (
        "const_labels_not_pairs",
        lambda: dm.Counter("m", "h", ["ab"]),
        InvalidLabelsError,
        "labels must be (name, value) pairs, got 'ab'",
    ),
    (
        "const_labels_string",
        lambda: dm.Counter("m", "h", "a=b"),
        InvalidLabelsError,
        "labels must be a dict or (name, value) pairs",
    ),
    (
        "label_names_string",
        lambda: dm.CounterVec("m", "h", "ab"),
        InvalidLabelsError,
        "label names must be a sequence of strings, got the string 'ab'",
    ),
    # histograms
    (
        "histogram_const_le",
        lambda: dm.Histogram("m", "h", {"le": "1"}),
        InvalidLabelsError,
        "`le` is not allowed as label name in histograms",
    ),
    (
        "histogramvec_variable_le",
        lambda: dm.HistogramVec("m", "h", ["route", "le"]),
        InvalidLabelsError,
        "`le` is not allowed as label name in histograms",
    ),
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
        "buckets_string",
        lambda: dm.Histogram("m", "h", buckets="1,2"),
        InvalidBucketsError,
        "buckets must be a sequence of numbers",
    ),
]


@pytest.mark.parametrize(
    "factory, exc, prefix", [r[1:] for r in VALIDATION_ROWS], ids=[r[0] for r in VALIDATION_ROWS]
)
def test_metric_construction_validation(factory, exc, prefix):
    with pytest.raises(exc) as info:
        factory()
    assert type(info.value) is exc
    assert str(info.value).startswith(prefix), str(info.value)
    assert isinstance(info.value, ValueError)


ACCEPTED_ROWS = [
    ("double_underscore_label", lambda: dm.Counter("m", "h", {"__x": "v"})),
    ("colon_metric_name", lambda: dm.Counter("vllm:m", "h")),
    ("any_const_label_value", lambda: dm.Counter("m", "h", {"a": 'q"\\\n✓'})),
    ("le_on_non_histogram", lambda: dm.GaugeVec("m", "h", ["le"])),
    ("quantile_label", lambda: dm.Histogram("m", "h", {"quantile": "x"})),
    ("vec_without_labels", lambda: dm.CounterVec("m", "h", [])),
]


@pytest.mark.parametrize(
    "factory", [r[1] for r in ACCEPTED_ROWS], ids=[r[0] for r in ACCEPTED_ROWS]
)
def test_metric_construction_accepts(factory):
    assert factory().desc.name in ("m", "vllm:m")


def test_desc_sorts_const_labels_and_keeps_label_name_order():
    d = Desc("m", "h", "counter", {"b": "2", "a": "1"}, ["z", "y"])
    assert d.const_labels == (("a", "1"), ("b", "2"))
    assert d.label_names == ("z", "y")


def test_desc_rejects_buckets_on_non_histogram():
    with pytest.raises(InvalidBucketsError) as info:
        Desc("m", "h", "counter", buckets=[1.0])
    assert str(info.value).startswith("buckets are only valid for histograms")


# -- buckets ------------------------------------------------------------------


BUCKET_ROWS = [
    # (given, bounds kept)
    (None, dm.DEFAULT_BUCKETS),
    ([], dm.DEFAULT_BUCKETS),
    ((), dm.DEFAULT_BUCKETS),
    ([math.inf], dm.DEFAULT_BUCKETS),
    ([1, 2, math.inf], (1.0, 2.0)),
    ([0.1, 0.5, 1], (0.1, 0.5, 1.0)),
    ([-5, 0, 5], (-5.0, 0.0, 5.0)),
    ([-math.inf, 0], (-math.inf, 0.0)),
]


@pytest.mark.parametrize("given, kept", BUCKET_ROWS)
def test_histogram_buckets_normalised(given, kept):
    assert dm.Histogram("m", "h", buckets=given).desc.buckets == kept


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


# -- counters -------------------------------------------------------------------


def test_counter_inc_inc_by_get():
    c = dm.Counter("c_total", "h")
    c.inc()
    c.inc_by(2.5)
    assert c.get() == 3.5
    assert scrape(c) == "# HELP c_total h\n# TYPE c_total counter\nc_total 3.5\n"


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, math.inf, -math.inf, "1", None])
@pytest.mark.parametrize("cls", [dm.Counter, dm.IntCounter])
def test_counter_bad_increment_raises_and_keeps_value(cls, bad):
    c = cls("c_total", "h")
    c.inc_by(2)
    with pytest.raises(InvalidValueError):
        c.inc_by(bad)
    assert c.get() == 2


@pytest.mark.parametrize("bad", [1.0, 0.5, 1e20])
def test_intcounter_rejects_floats(bad):
    c = dm.IntCounter("c_total", "h")
    with pytest.raises(InvalidValueError) as info:
        c.inc_by(bad)
    assert str(info.value).startswith("int counter increment must be an integer")
    assert c.get() == 0


def test_intcounter_holds_big_ints_exactly():
    c = dm.IntCounter("c_total", "h")
    c.inc_by(2**70)
    c.inc()
    assert c.get() == 2**70 + 1
    assert scrape(c).endswith("\nc_total 1180591620717411303425\n")


def test_counter_registered_twice_shares_its_value():
    c = dm.Counter("c_total", "h")
    a, b = dm.Registry(), dm.Registry()
    a.register(c)
    b.register(c)
    c.inc_by(4)
    assert a.prometheus_expfmt() == b.prometheus_expfmt()
    assert a.prometheus_expfmt().endswith("c_total 4\n")


# -- gauges -----------------------------------------------------------------------


def test_gauge_operations_and_text():
    g = dm.Gauge("g", "h", {"k": "v"})
    g.set(50000)
    g.inc()
    g.dec()
    g.add(0.5)
    g.sub(0.25)
    assert g.get() == 50000.25
    assert scrape(g) == '# HELP g h\n# TYPE g gauge\ng{k="v"} 50000.25\n'


def test_gauge_set_negative_zero_keeps_its_sign():
    # Rust's f64 gauge stores -0.0 as given and prints it as "-0".
    g = dm.Gauge("g", "h")
    g.set(-0.0)
    assert math.copysign(1.0, g.get()) == -1.0
    assert scrape(g).endswith("\ng -0\n")


def test_intgauge_operations_and_rejects_floats():
    g = dm.IntGauge("g", "h")
    g.set(42)
    g.inc()
    g.sub(3)
    g.add(-100)
    assert g.get() == -60
    for op in (g.set, g.add, g.sub):
        with pytest.raises(InvalidValueError):
            op(1.5)
    assert g.get() == -60
    assert scrape(g).endswith("\ng -60\n")


# -- histograms ---------------------------------------------------------------------


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
    ["x", "5", b"5", None, [1.0], 1j, 10**400, decimal.Decimal("sNaN")],
    ids=["str", "numeric str", "bytes", "None", "list", "complex", "huge int", "signalling NaN"],
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
    ],
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


# -- collect() model == write_text, for every type ---------------------------------

ODD_VALUES = ['say "hi"', "back\\slash", "new\nline", "ünïcødé ✓ 日本", "", 'all "\\\n']


def _scalar(cls, **kw):
    def build():
        m = cls("m_x", "Help with \\ and\nnewline", {"zz": 'q"\\\n✓', "aa": "first"}, **kw)
        return m

    return build


def _filled_vec(cls, op, **kw):
    def build():
        v = cls("v_x", "Vec help", ["zeta", "alpha"], {"mid": 'c"o\\n\nst'}, **kw)
        for i, odd in enumerate(ODD_VALUES):
            op(v.with_label_values(odd, str(i)), i)
            op(v.with_label_values(str(i), odd), i)
        return v

    return build


def _inc(child, i):
    child.inc_by(i)


def _set(child, i):
    child.set(i - 2.5)


def _iset(child, i):
    child.set(i - 3)


def _observe(child, i):
    for k in range(i + 1):
        child.observe(k * 0.75)


def _counter():
    c = _scalar(dm.Counter)()
    c.inc_by(123.456789)
    return c


def _intcounter():
    c = _scalar(dm.IntCounter)()
    c.inc_by(2**60 + 1)
    return c


def _gauge():
    g = _scalar(dm.Gauge)()
    g.set(-1e-7)
    return g


def _intgauge():
    g = _scalar(dm.IntGauge)()
    g.set(-12345)
    return g


def _histogram():
    h = _scalar(dm.Histogram, buckets=[0.5, 1, 2.5])()
    for v in (0.1, 1, 3, math.nan):
        h.observe(v)
    return h


EVERY_TYPE = [
    ("counter", _counter),
    ("intcounter", _intcounter),
    ("gauge", _gauge),
    ("intgauge", _intgauge),
    ("histogram", _histogram),
    ("countervec", _filled_vec(dm.CounterVec, _inc)),
    ("intcountervec", _filled_vec(dm.IntCounterVec, _inc)),
    ("gaugevec", _filled_vec(dm.GaugeVec, _set)),
    ("intgaugevec", _filled_vec(dm.IntGaugeVec, _iset)),
    ("histogramvec", _filled_vec(dm.HistogramVec, _observe, buckets=[0.5, 1, 2.5])),
]


@pytest.mark.parametrize("build", [b for _, b in EVERY_TYPE], ids=[i for i, _ in EVERY_TYPE])
def test_collect_model_encodes_to_the_same_text_as_write_text(build):
    metric = build()
    reg = dm.Registry()
    reg.register(metric)
    direct = []
    metric.write_text(direct.append)
    text = reg.prometheus_expfmt()
    assert expfmt.encode_to_string(metric.collect()) == text
    assert "".join(direct) == text
    assert expfmt.encode_to_string(reg.collect()) == text
    assert text.endswith("\n") and "\n\n" not in text


@pytest.mark.parametrize("build", [b for _, b in EVERY_TYPE], ids=[i for i, _ in EVERY_TYPE])
def test_collect_model_labels_are_sorted_with_le_last(build):
    for family in build().collect():
        for sample in family.samples:
            names = [k for k, _ in sample.labels]
            if names and names[-1] == "le":
                names.pop()
            assert names == sorted(names)
            assert "le" not in names


def test_collect_of_scalar_types_has_one_sample_with_exact_value():
    assert _counter().collect()[0].samples[0].value == 123.456789
    assert _intcounter().collect()[0].samples[0].value == 2**60 + 1
    assert type(_intcounter().collect()[0].samples[0].value) is int
    assert _intgauge().collect()[0].samples[0].value == -12345


def test_odd_label_values_are_escaped_in_text():
    g = dm.Gauge("g", "h", {"a": 'say "hi"', "b": "back\\slash", "c": "new\nline", "d": "ü✓"})
    assert scrape(g).splitlines()[2] == (
        'g{a="say \\"hi\\"",b="back\\\\slash",c="new\\nline",d="ü✓"} 0'
    )


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"help": "bad \ud800 help"}, dm.InvalidValueError),
        ({"help": "ends with CR\r"}, dm.InvalidValueError),
        ({"help": "h", "const_labels": {"a": "\udcff"}}, dm.InvalidLabelsError),
    ],
)
def test_desc_refuses_text_the_exposition_cannot_carry(kwargs, error):
    with pytest.raises(error):
        dm.Gauge("g", **kwargs)
