"""Descriptors: what every metric validates at construction (rust-prometheus' messages first)."""

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import (
    InvalidBucketsError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
)
from dyn_metrics.metrics.desc import Desc

# -- validation at construction ----------------------------------------------------------


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
