"""Exemplars on counters and histogram buckets, ``inc(amount)`` and ``labels()``.

api.md: ``inc(amount=1, exemplar=None)``, ``inc_by(v, exemplar=None)``,
``observe(v, exemplar=None)`` with a ``{label: value}`` dict; the OpenMetrics
128-character limit -> InvalidLabelsError; the latest exemplar per counter and
per histogram bucket is kept with its timestamp, written in OpenMetrics only.
A counter exemplar carries the increment as its value; a histogram exemplar
sits on the bucket its observation falls in.
"""

import math
import time

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidLabelsError
from dyn_metrics.metrics import counter
from tests.metrics.support import cell_id, new_cell

COUNTER_CELLS = [
    counter.CounterCell,
    counter.CounterVecCell,
    counter.LockedCounterCell,
    counter.IntCounterCell,
    counter.IntCounterVecCell,
    counter.LockedIntCounterCell,
]


def _om(metric):
    reg = dm.Registry()
    reg.register(metric)
    text = reg.openmetrics_expfmt()
    assert dm.check(text, "openmetrics").errors == []
    return text, reg.prometheus_expfmt()


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=cell_id)
def test_counter_cell_keeps_the_latest_exemplar_with_the_increment_as_value(cls):
    cell = new_cell(cls)
    assert counter.counter_exemplar(cell) is None
    before = time.time()
    cell.inc(exemplar={"trace_id": "a"})
    cell.inc(3, {"trace_id": "b"})
    cell.inc()  # no exemplar: the latest stays
    cell.inc_by(2, exemplar={"trace_id": "c", "span": "1"})
    cell.inc_by(1)
    ex = counter.counter_exemplar(cell)
    assert ex.labels == (("trace_id", "c"), ("span", "1"))
    assert ex.value == 2
    assert before <= ex.timestamp <= time.time()
    assert cell.get() == 8


INC_ROWS = [
    # (calls, value)
    ([()], 1),
    ([(1,), (1,)], 2),
    ([(2,), (0,)], 2),
    ([(2.5,)], 2.5),
    ([(1,), (0.5,), ()], 2.5),
    ([(True,)], 1),
]


@pytest.mark.parametrize("calls, value", INC_ROWS)
def test_counter_inc_takes_an_amount(calls, value):
    c = dm.Counter("c_total", "c")
    for args in calls:
        c.inc(*args)
    assert c.get() == value


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "2", None])
def test_counter_inc_refuses_a_bad_amount_and_changes_nothing(bad):
    c = dm.Counter("c_total", "c")
    c.inc()
    with pytest.raises(dm.InvalidValueError):
        c.inc(bad)
    assert c.get() == 1


def test_int_counter_inc_takes_ints_only():
    c = dm.IntCounter("c_total", "c")
    c.inc(5)
    with pytest.raises(dm.InvalidValueError):
        c.inc(1.5)
    assert c.get() == 5


BAD_EXEMPLARS = [
    # (exemplar, message part)
    ("trace=1", "dict"),
    ([("trace_id", "a")], "dict"),
    ({"1bad": "a"}, "invalid exemplar label name"),
    ({"a-b": "a"}, "invalid exemplar label name"),
    ({"trace_id": 1}, "string value"),
    ({"trace_id": None}, "string value"),
    ({1: "a"}, "invalid exemplar label name"),
    ({"trace_id": "\ud800"}, "Unicode"),
    ({"t": "x" * 128}, "at most 128"),  # 1 + 128 = 129 characters
    ({"a" * 64: "b" * 65}, "at most 128"),
]


@pytest.mark.parametrize("exemplar, message", BAD_EXEMPLARS)
def test_a_bad_exemplar_raises_and_records_nothing(exemplar, message):
    c = dm.Counter("c_total", "c")
    h = dm.Histogram("h", "h", buckets=[1.0])
    for call in (lambda: c.inc(1, exemplar), lambda: c.inc_by(2, exemplar)):
        with pytest.raises(InvalidLabelsError, match=message):
            call()
    with pytest.raises(InvalidLabelsError, match=message):
        h.observe(0.5, exemplar)
    assert c.get() == 0 and counter.counter_exemplar(c._children[()]) is None
    assert h.get_sample_count() == 0
    assert " # " not in _om(c)[0]


def test_exemplar_of_exactly_128_characters_is_accepted():
    c = dm.Counter("c_total", "c")
    c.inc(exemplar={"t": "x" * 127})
    om, _ = _om(c)
    assert f'c_total 1.0 # {{t="{"x" * 127}"}} 1 ' in om


def test_counter_exemplar_in_openmetrics_only():
    c = dm.CounterVec("req_total", "Requests", ["code"])
    c.with_label_values("200").inc(exemplar={"trace_id": "abc"})
    c.with_label_values("500").inc()
    om, text = _om(c)
    line = next(x for x in om.splitlines() if x.startswith('req_total{code="200"}'))
    value, _, exemplar = line.partition(" # ")
    assert value == 'req_total{code="200"} 1.0'
    labels, ex_value, ts = exemplar.split(" ")
    assert (labels, ex_value) == ('{trace_id="abc"}', "1")
    assert abs(float(ts) - time.time()) < 60
    assert 'req_total{code="500"} 1.0\n' in om
    assert "trace_id" not in text and text.count("req_total{") == 2


def test_histogram_keeps_the_latest_exemplar_per_bucket():
    h = dm.Histogram("lat_seconds", "Latency", buckets=[0.1, 1.0])
    h.observe(0.05, {"trace_id": "first"})
    h.observe(0.07, {"trace_id": "second"})  # same bucket: replaces
    h.observe(0.1, {"trace_id": "edge"})  # le="0.1" holds values <= 0.1
    h.observe(0.5)  # no exemplar: bucket 1.0 has none
    h.observe(5.0, {"trace_id": "big"})
    h.observe(math.nan, {"trace_id": "nan"})  # NaN goes to +Inf, as its count does
    om, text = _om(h)
    buckets = [x for x in om.splitlines() if x.startswith("lat_seconds_bucket")]
    assert [b.split(" # ")[1].split(" ")[:2] if " # " in b else None for b in buckets] == [
        ['{trace_id="edge"}', "0.1"],
        None,
        ['{trace_id="nan"}', "NaN"],
    ]
    assert "trace_id" not in text


def test_histogram_vec_child_exemplars_and_a_bound_without_exemplar_bucket():
    hv = dm.HistogramVec("size_bytes", "Sizes", ["kind"], buckets=[10, 100])
    hv.with_label_values("a").observe(50, {"id": "x"})
    hv.with_label_values("b").observe(500, {"id": "y"})
    om, _ = _om(hv)
    assert 'size_bytes_bucket{kind="a",le="100.0"} 1 # {id="x"} 50' in om
    assert 'size_bytes_bucket{kind="b",le="+Inf"} 1 # {id="y"} 500' in om


def test_exemplar_through_the_hierarchy_and_runtime():
    from dyn_metrics.dynamo.config import SystemConfig

    drt = dm.DistributedRuntime(config=SystemConfig())
    m = drt.namespace("ns").metrics()
    m.create_counter("tokens_total", "Tokens").inc(128, {"request_id": "r1"})
    om = drt.render_exposition("openmetrics")
    line = 'dynamo_component_tokens_total{dynamo_namespace="ns"} 128.0 # {request_id="r1"} 128 '
    assert line in om


# -- labels() -------------------------------------------------------------------------------

LABELS_ROWS = [
    # (call on a vec with label names (code, method), the child's label values)
    (lambda v: v.labels("200", "get"), ("200", "get")),
    (lambda v: v.labels(200, "get"), ("200", "get")),
    (lambda v: v.labels(code=200, method="get"), ("200", "get")),
    (lambda v: v.labels(method="get", code="200"), ("200", "get")),
    (lambda v: v.labels(404.0, None), ("404.0", "None")),  # str(), as prometheus_client
]


@pytest.mark.parametrize("call, values", LABELS_ROWS)
def test_labels_is_prometheus_clients_spelling(call, values):
    vec = dm.CounterVec("r_total", "r", ["code", "method"])
    child = call(vec)
    assert child is vec.with_label_values(*values)
    child.inc()
    assert vec.with_label_values(*values).get() == 1


LABELS_ERRORS = [
    (lambda v: v.labels("200"), dm.CardinalityError),
    (lambda v: v.labels("200", "get", "x"), dm.CardinalityError),
    (lambda v: v.labels("200", method="get"), InvalidLabelsError),
    (lambda v: v.labels(code="200"), InvalidLabelsError),
    (lambda v: v.labels(code="200", method="get", path="/"), InvalidLabelsError),
    (lambda v: v.labels("\ud800", "get"), InvalidLabelsError),
]


@pytest.mark.parametrize("call, exc", LABELS_ERRORS)
def test_labels_refuses_and_creates_nothing(call, exc):
    vec = dm.CounterVec("r_total", "r", ["code", "method"])
    with pytest.raises(exc):
        call(vec)
    assert vec._children == {}


@pytest.mark.parametrize(
    "vec",
    [
        dm.GaugeVec("g", "g", ["k"]),
        dm.HistogramVec("h", "h", ["k"]),
        dm.IntCounterVec("i_total", "i", ["k"]),
    ],
)
def test_labels_on_every_vec(vec):
    assert vec.labels("x") is vec.labels(k="x") is vec.with_labels({"k": "x"})


def test_threads_incrementing_with_exemplars_lose_nothing():
    import threading

    c = dm.Counter("c_total", "c")
    h = dm.Histogram("h", "h", buckets=[1.0])
    start = threading.Barrier(8)

    def work(i):
        start.wait()
        for n in range(2000):
            c.inc(1, {"t": f"{i}-{n}"})
            h.observe(0.5 if n % 2 else 2.0, {"t": str(i)})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.get() == 16000 and h.get_sample_count() == 16000
    ex = counter.counter_exemplar(c._children[()])
    assert ex.labels[0][1].endswith("-1999") and ex.value == 1
    om, _ = _om(h)
    assert om.count(' # {t="') == 2  # one exemplar on each bucket that saw observations
