"""Metric vectors: child identity, label access, removal, output of children."""

import logging
import threading

import pytest

import dyn_metrics as dm
from dyn_metrics import metrics
from dyn_metrics.errors import CardinalityError, InvalidLabelsError, InvalidValueError
from tests.metrics.support import sample_lines, scrape

VEC_TYPES = [dm.CounterVec, dm.IntCounterVec, dm.GaugeVec, dm.IntGaugeVec, dm.HistogramVec]


def _ids(cls):
    return cls.__name__


# -- children --------------------------------------------------------------------


@pytest.mark.parametrize("cls", VEC_TYPES, ids=_ids)
def test_vec_same_values_return_same_child(cls):
    v = cls("v", "h", ["method", "status"])
    a = v.with_label_values("GET", "200")
    assert v.with_label_values("GET", "200") is a
    assert v.with_labels({"status": "200", "method": "GET"}) is a
    assert v.with_label_values("GET", "201") is not a


@pytest.mark.parametrize("cls", VEC_TYPES, ids=_ids)
def test_vec_values_are_not_concatenated(cls):
    v = cls("v", "h", ["x", "y"])
    assert v.with_label_values("ab", "c") is not v.with_label_values("a", "bc")
    assert v.with_label_values("", "abc") is not v.with_label_values("abc", "")


def test_vec_children_are_independent():
    v = dm.CounterVec("v_total", "h", ["method", "status"], {"service": "api"})
    v.with_label_values("GET", "200").inc_by(10)
    v.with_labels({"method": "POST", "status": "201"}).inc_by(5)
    assert v.with_label_values("GET", "200").get() == 10
    assert v.with_label_values("POST", "201").get() == 5
    assert sample_lines(scrape(v)) == [
        'v_total{method="GET",service="api",status="200"} 10',
        'v_total{method="POST",service="api",status="201"} 5',
    ]


def test_vec_str_subclass_value_is_the_same_child_as_its_text():
    class Tagged(str):
        def __str__(self):
            return "something else"

    v = dm.GaugeVec("v", "h", ["a"])
    child = v.with_label_values(Tagged("x"))
    assert v.with_label_values("x") is child
    child.set(1)
    assert sample_lines(scrape(v)) == ['v{a="x"} 1']


# -- label errors ------------------------------------------------------------------


CARDINALITY_ROWS = [
    # (values, expected, got, prefix)
    (("GET",), 2, 1, "Inconsistent label cardinality, expect 2 label values, but got 1"),
    ((), 2, 0, "Inconsistent label cardinality, expect 2 label values, but got 0"),
    (("GET", "200", "x"), 2, 3, "Inconsistent label cardinality, expect 2 label values, but got 3"),
]


@pytest.mark.parametrize("cls", VEC_TYPES, ids=_ids)
@pytest.mark.parametrize("values, expected, got, prefix", CARDINALITY_ROWS)
def test_vec_wrong_cardinality(cls, values, expected, got, prefix):
    v = cls("v", "h", ["method", "status"])
    v.with_label_values("GET", "200")  # a populated vec must fail the same way
    for call in (v.with_label_values, v.remove_label_values):
        with pytest.raises(CardinalityError) as info:
            call(*values)
        err = info.value
        assert str(err).startswith(prefix)
        assert (err.expected, err.got) == (expected, got)
        assert isinstance(err, InvalidLabelsError) and isinstance(err, ValueError)


NON_STR_VALUES = [1, 1.5, None, b"x", ["a"], {"a": "b"}, ("a",)]


@pytest.mark.parametrize("populated", [False, True], ids=["empty", "populated"])
@pytest.mark.parametrize("bad", NON_STR_VALUES, ids=repr)
def test_vec_non_str_label_value_raises(bad, populated):
    v = dm.CounterVec("v", "h", ["a", "b"])
    if populated:
        v.with_label_values("x", "y")
    with pytest.raises(InvalidLabelsError) as info:
        v.with_label_values("x", bad)
    assert str(info.value).startswith("label 'b' of 'v' needs a string value, got")
    with pytest.raises(InvalidLabelsError):
        v.with_labels({"a": "x", "b": bad})
    assert sample_lines(scrape(v)) == (['v{a="x",b="y"} 0'] if populated else [])


MAPPING_ROWS = [
    # (mapping, message prefix)
    ({"method": "GET"}, "label name status missing in label map"),
    ({}, "label name method missing in label map"),
    ({"method": "GET", "status": "200", "extra": "x"}, "unknown label name 'extra' in label map"),
    ({"method": "GET", "Status": "200"}, "label name status missing in label map"),
]


@pytest.mark.parametrize("mapping, prefix", MAPPING_ROWS)
def test_vec_with_labels_missing_or_extra_names(mapping, prefix):
    v = dm.CounterVec("v", "h", ["method", "status"])
    for call in (v.with_labels, v.remove_labels):
        with pytest.raises(InvalidLabelsError) as info:
            call(mapping)
        assert type(info.value) is InvalidLabelsError
        assert str(info.value).startswith(prefix)
    assert scrape(v) == ""


def test_vec_with_labels_accepts_pairs():
    v = dm.CounterVec("v", "h", ["method", "status"])
    assert v.with_labels([("status", "200"), ("method", "GET")]) is v.with_label_values(
        "GET", "200"
    )


# -- removal ---------------------------------------------------------------------------


def test_vec_remove_label_values_drops_one_child():
    v = dm.GaugeVec("v", "h", ["a"])
    old = v.with_label_values("x")
    old.set(5)
    v.with_label_values("y").set(6)
    v.remove_label_values("x")
    assert sample_lines(scrape(v)) == ['v{a="y"} 6']
    fresh = v.with_label_values("x")
    assert fresh is not old and fresh.get() == 0


def test_vec_remove_labels_by_mapping():
    v = dm.GaugeVec("v", "h", ["a", "b"])
    v.with_label_values("1", "2")
    v.remove_labels({"b": "2", "a": "1"})
    assert scrape(v) == ""


def test_vec_remove_missing_child_raises():
    v = dm.CounterVec("v", "h", ["a"])
    v.with_label_values("x")
    with pytest.raises(InvalidLabelsError) as info:
        v.remove_label_values("nope")
    assert type(info.value) is InvalidLabelsError
    assert str(info.value).startswith("no child with label values ('nope',)")
    v.remove_label_values("x")
    with pytest.raises(InvalidLabelsError):
        v.remove_label_values("x")


def test_vec_clear_drops_every_child():
    v = dm.IntCounterVec("v", "h", ["a"])
    for x in "abc":
        v.with_label_values(x).inc()
    v.clear()
    assert scrape(v) == ""
    assert v.collect() == []
    v.clear()  # idempotent
    v.with_label_values("a").inc()
    assert sample_lines(scrape(v)) == ['v{a="a"} 1']


# -- output ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", VEC_TYPES, ids=_ids)
def test_empty_vec_is_omitted_from_output(cls):
    v = cls("v", "h", ["a"])
    g = dm.Gauge("g", "h")
    assert v.collect() == []
    assert scrape(v) == ""
    assert scrape(v, g) == "# HELP g h\n# TYPE g gauge\ng 0\n"


def test_vec_children_sorted_by_values_in_label_name_order():
    # Declared order zeta, alpha; exposition sorts labels by name, and
    # children by their values in that sorted-name order.
    v = dm.IntGaugeVec("v", "h", ["zeta", "alpha"], {"mid": "m"})
    for zeta, alpha in [("1", "b"), ("2", "a"), ("0", "b"), ("9", "a")]:
        v.with_label_values(zeta, alpha).set(int(zeta))
    assert sample_lines(scrape(v)) == [
        'v{alpha="a",mid="m",zeta="2"} 2',
        'v{alpha="a",mid="m",zeta="9"} 9',
        'v{alpha="b",mid="m",zeta="0"} 0',
        'v{alpha="b",mid="m",zeta="1"} 1',
    ]


def test_vec_children_sort_by_code_point():
    v = dm.GaugeVec("v", "h", ["a"])
    for x in ["é", "z", "Z", "", "aa", "a"]:
        v.with_label_values(x)
    assert sample_lines(scrape(v)) == [
        'v{a=""} 0',
        'v{a="Z"} 0',
        'v{a="a"} 0',
        'v{a="aa"} 0',
        'v{a="z"} 0',
        'v{a="é"} 0',
    ]


def test_vec_escapes_odd_label_values():
    v = dm.CounterVec("v", "h", ["a"])
    v.with_label_values('q"\\\nü').inc()
    assert sample_lines(scrape(v)) == ['v{a="q\\"\\\\\\nü"} 1']


def test_vec_refuses_a_label_value_that_is_not_valid_unicode():
    vec = dm.GaugeVec("g", "h", ["a"])
    with pytest.raises(dm.InvalidLabelsError, match="not valid Unicode"):
        vec.with_label_values("\ud800")
    assert vec.collect() == []


# -- a child exposes the metric API only ----------------------------------------------

CHILD_API_ROWS = [
    # (vec factory, the public names of its children)
    (lambda: dm.CounterVec("a_total", "a", ["k"]), ["count_exceptions", "get", "inc", "inc_by"]),
    (lambda: dm.IntCounterVec("b_total", "b", ["k"]), ["count_exceptions", "get", "inc", "inc_by"]),
    (
        lambda: dm.GaugeVec("c", "c", ["k"]),
        [
            "add",
            "dec",
            "dec_by",
            "get",
            "inc",
            "inc_by",
            "set",
            "set_function",
            "set_to_current_time",
            "sub",
            "time",
            "track_inprogress",
        ],
    ),
    (
        lambda: dm.IntGaugeVec("d", "d", ["k"]),
        [
            "add",
            "dec",
            "dec_by",
            "get",
            "inc",
            "inc_by",
            "set",
            "set_function",
            "set_to_current_time",
            "sub",
            "time",
            "track_inprogress",
        ],
    ),
    (
        lambda: dm.HistogramVec("e", "e", ["k"]),
        ["get_sample_count", "get_sample_sum", "observe", "start_timer", "time"],
    ),
]
NOT_ON_A_CHILD = ["append", "clear", "extend", "pop", "__next__", "__iter__", "__len__"]


@pytest.mark.parametrize("factory, api", CHILD_API_ROWS)
def test_vec_child_exposes_the_metric_api_only(factory, api):
    vec = factory()
    child = vec.with_label_values("x")
    assert sorted(n for n in dir(child) if not n.startswith("_")) == api
    for name in NOT_ON_A_CHILD:
        assert not hasattr(child, name), name
    with pytest.raises((TypeError, AttributeError)):
        iter(child)
    with pytest.raises((TypeError, AttributeError)):
        next(child)
    with pytest.raises(TypeError):
        len(child)
    assert scrape(vec)  # still scrapes


def test_histogram_child_keeps_pending_observations_and_cannot_be_filled_with_junk():
    vec = dm.HistogramVec("h", "h", ["k"], buckets=[1.0])
    child = vec.with_label_values("x")
    child.observe(0.5)
    with pytest.raises(AttributeError):
        child.clear()
    with pytest.raises(AttributeError):
        child.append("x")
    assert child.get_sample_count() == 1
    assert sample_lines(scrape(vec))[-1] == 'h_count{k="x"} 1'


def test_counter_child_iteration_cannot_change_its_value():
    child = dm.CounterVec("c_total", "c", ["k"]).with_label_values("x")
    child.inc()
    for attempt in (lambda: next(child), lambda: list(zip(range(3), child))):
        with pytest.raises((TypeError, AttributeError)):
            attempt()
    assert child.get() == 1.0


# -- cardinality: max_children ----------------------------------------------------------

VEC_FACTORIES = [
    lambda **kw: dm.CounterVec("v_total", "v", ["a", "b"], **kw),
    lambda **kw: dm.IntCounterVec("v_total", "v", ["a", "b"], **kw),
    lambda **kw: dm.GaugeVec("v", "v", ["a", "b"], **kw),
    lambda **kw: dm.IntGaugeVec("v", "v", ["a", "b"], **kw),
    lambda **kw: dm.HistogramVec("v", "v", ["a", "b"], buckets=[1.0], **kw),
]


def _touch(child):
    if hasattr(child, "observe"):
        child.observe(0.5)
    else:
        child.inc()


def _counts(vec):
    """``{label values: how many updates}`` from a scrape of ``vec``."""
    out = {}
    for key, value, _, _ in vec._snapshot():
        out[key] = value[2] if isinstance(value, tuple) else value
    return out


OVER = ("__overflow__", "__overflow__")

MAX_CHILDREN_ROWS = [
    # (id, max_children, label sets touched in order, {label values: updates} scraped)
    (
        "unlimited by default",
        None,
        [("1", "x"), ("2", "x"), ("3", "x")],
        {("1", "x"): 1, ("2", "x"): 1, ("3", "x"): 1},
    ),
    ("under the limit", 3, [("1", "x"), ("2", "x")], {("1", "x"): 1, ("2", "x"): 1}),
    ("at the limit", 2, [("1", "x"), ("2", "x")], {("1", "x"): 1, ("2", "x"): 1}),
    (
        "beyond: later sets share one overflow child",
        2,
        [("1", "x"), ("2", "x"), ("3", "x"), ("4", "y"), ("3", "x")],
        {("1", "x"): 1, ("2", "x"): 1, OVER: 3},
    ),
    (
        "known sets keep their child",
        1,
        [("1", "x"), ("2", "x"), ("1", "x")],
        {("1", "x"): 2, OVER: 1},
    ),
    ("zero: every set overflows", 0, [("1", "x"), ("2", "x")], {OVER: 2}),
    ("the overflow values themselves", 1, [("1", "x"), OVER, ("2", "x")], {("1", "x"): 1, OVER: 2}),
]


@pytest.mark.parametrize(
    "factory", VEC_FACTORIES, ids=["counter", "intcounter", "gauge", "intgauge", "histogram"]
)
@pytest.mark.parametrize(
    "limit, touched, expected",
    [r[1:] for r in MAX_CHILDREN_ROWS],
    ids=[r[0] for r in MAX_CHILDREN_ROWS],
)
def test_max_children_routes_extra_label_sets_to_one_overflow_child(
    factory, limit, touched, expected
):
    vec = factory(max_children=limit)
    assert vec.max_children == limit
    for values in touched:
        _touch(vec.with_label_values(*values))
    assert _counts(vec) == expected
    assert scrape(vec)  # the overflow child scrapes like any other


def test_overflow_logs_one_warning_per_vec_and_is_counted(caplog):
    before = metrics.overflow_children_total()
    one = dm.CounterVec("one_total", "c", ["k"], max_children=1)
    two = dm.HistogramVec("two", "h", ["k"], max_children=1)
    with caplog.at_level(logging.WARNING, logger="dyn_metrics.metrics.vec"):
        for i in range(5):
            one.with_label_values(str(i)).inc()
            two.with_labels({"k": str(i)}).observe(1.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(" reached")[0] for r in warnings] == [
        "metric 'one_total'",
        "metric 'two'",
    ]
    assert "max_children=1" in warnings[0].getMessage()
    assert metrics.overflow_children_total() == before + 2
    one.clear()  # a new overflow child after clear() is counted again, not warned again
    with caplog.at_level(logging.WARNING, logger="dyn_metrics.metrics.vec"):
        for i in range(3):
            one.with_label_values(str(i)).inc()
    assert metrics.overflow_children_total() == before + 3
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_max_children_must_be_none_or_an_int_at_least_zero(bad):
    for factory in VEC_FACTORIES:
        with pytest.raises(InvalidValueError) as info:
            factory(max_children=bad)
        assert str(info.value) == f"max_children must be None or an integer >= 0, got {bad!r}"


def test_max_children_is_exact_under_concurrent_creation():
    vec = dm.CounterVec("c_total", "c", ["k"], max_children=10)
    start = threading.Barrier(8)

    def work(t):
        start.wait()
        for i in range(200):
            vec.with_label_values(f"{t}-{i}").inc()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = _counts(vec)
    assert len(counts) == 11
    assert sum(counts.values()) == 8 * 200
    assert counts[("__overflow__",)] == 8 * 200 - 10
