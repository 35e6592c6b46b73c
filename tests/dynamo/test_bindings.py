"""Dynamo's Python binding spellings: ``.metrics`` as a property, ``name()`` and friends,
and the vec shortcuts taking a labels dict (mapped by name, unlike Dynamo's binding).

Every spelling is checked against its canonical form: the same calls on a twin
endpoint must give the same ``prometheus_expfmt`` bytes.
"""

import collections
import math
import types

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.facade import Metrics
from dyn_metrics.errors import CardinalityError, InvalidLabelsError, InvalidValueError
from tests.goldens import mask_uptime, runtime

# Declared order differs from the order of the dicts below, and from sorted order.
NAMES = ["model", "dp_rank"]
LABELS = {"dp_rank": "0", "model": "llama"}
OTHER = {"dp_rank": "1", "model": "qwen"}
VALUES = ("llama", "0")  # LABELS in declared order


def _endpoint(worker_id=7):
    return runtime(worker_id).namespace("ns").component("comp").endpoint("ep")


def _expfmt(ep):
    return ep.metrics.prometheus_expfmt().encode("utf-8")


# -- the vec shortcuts, each against its canonical spelling -------------------------------

COUNTER_VECS = ["create_countervec", "create_intcountervec"]
GAUGE_VECS = ["create_gaugevec", "create_intgaugevec"]

SHORTCUT_ROWS = [
    # (id, create_*, binding spelling, canonical spelling); each returns what the call returns
    ("counter_inc", COUNTER_VECS, lambda v: v.inc(LABELS), lambda v: v.with_labels(LABELS).inc()),
    (
        "counter_inc_by",
        COUNTER_VECS,
        lambda v: v.inc_by(LABELS, 3),
        lambda v: v.with_label_values(*VALUES).inc_by(3),
    ),
    (
        "counter_inc_twice_by_two_orders",
        COUNTER_VECS,
        lambda v: (v.inc(LABELS), v.inc(dict(reversed(list(LABELS.items()))))),
        lambda v: (v.with_label_values(*VALUES).inc(), v.with_label_values(*VALUES).inc()),
    ),
    (
        "counter_get_after_inc_by",
        COUNTER_VECS,
        lambda v: (v.inc_by(OTHER, 2), v.get(OTHER)),
        lambda v: (v.with_labels(OTHER).inc_by(2), v.with_labels(OTHER).get()),
    ),
    # get() makes the child (at 0), as Dynamo's with_label_values(...).get() does
    (
        "counter_get_new",
        COUNTER_VECS,
        lambda v: v.get(LABELS),
        lambda v: v.with_labels(LABELS).get(),
    ),
    ("gauge_set", GAUGE_VECS, lambda v: v.set(5, LABELS), lambda v: v.with_labels(LABELS).set(5)),
    ("gauge_inc", GAUGE_VECS, lambda v: v.inc(LABELS), lambda v: v.with_labels(LABELS).inc()),
    ("gauge_dec", GAUGE_VECS, lambda v: v.dec(LABELS), lambda v: v.with_labels(LABELS).dec()),
    ("gauge_add", GAUGE_VECS, lambda v: v.add(LABELS, 4), lambda v: v.with_labels(LABELS).add(4)),
    ("gauge_sub", GAUGE_VECS, lambda v: v.sub(LABELS, 2), lambda v: v.with_labels(LABELS).sub(2)),
    (
        "gauge_sequence_and_get",
        GAUGE_VECS,
        lambda v: (
            v.set(10, LABELS),
            v.add(OTHER, 3),
            v.sub(LABELS, 4),
            v.dec(LABELS),
            v.get(LABELS),
        ),
        lambda v: (
            v.with_labels(LABELS).set(10),
            v.with_labels(OTHER).add(3),
            v.with_labels(LABELS).sub(4),
            v.with_labels(LABELS).dec(),
            v.with_labels(LABELS).get(),
        ),
    ),
    ("gauge_get_new", GAUGE_VECS, lambda v: v.get(OTHER), lambda v: v.with_labels(OTHER).get()),
]

SHORTCUT_CASES = [
    pytest.param(create, binding, canonical, id=f"{row_id}-{create}")
    for row_id, creates, binding, canonical in SHORTCUT_ROWS
    for create in creates
]


@pytest.mark.parametrize("create, binding, canonical", SHORTCUT_CASES)
def test_vec_shortcut_gives_the_canonical_bytes_and_values(create, binding, canonical):
    ours, theirs = _endpoint(), _endpoint()
    got = binding(getattr(ours.metrics, create)("m", "Help", NAMES, [("svc", "a")]))
    want = canonical(getattr(theirs.metrics, create)("m", "Help", NAMES, [("svc", "a")]))
    assert got == want
    assert _expfmt(ours) == _expfmt(theirs)
    assert b'dp_rank="0"' in _expfmt(ours) or b'dp_rank="1"' in _expfmt(ours)


def test_shortcuts_map_by_name_not_by_dict_order():
    # Dynamo's binding passes labels.values() positionally (a Rust hash map's order):
    # with these names the values land on the wrong labels. Here they do not.
    ours, positional = _endpoint(), _endpoint()
    cv = ours.metrics.create_countervec("m_total", "Help", NAMES)
    cv.inc_by(LABELS, 2)
    wrong = positional.metrics.create_countervec("m_total", "Help", NAMES)
    wrong.with_label_values(*LABELS.values()).inc_by(2)  # what dict-order mapping does
    text, wrong_text = _expfmt(ours), _expfmt(positional)
    assert b'{dp_rank="0",dynamo_component="comp"' in text and b'model="llama"' in text
    assert b'{dp_rank="llama",' in wrong_text and b'model="0"' in wrong_text
    assert text != wrong_text
    assert cv.get({"model": "llama", "dp_rank": "0"}) == 2  # any order, the same child
    assert cv.with_label_values(*VALUES).get() == 2


def test_shortcuts_accept_any_mapping_and_leave_it_alone():
    ep = _endpoint()
    gv = ep.metrics.create_gaugevec("g", "Help", NAMES)
    gv.set(1.5, types.MappingProxyType(LABELS))
    gv.add(collections.OrderedDict(OTHER), 2)
    extra = collections.defaultdict(str, {"model": "llama"})  # dp_rank missing
    with pytest.raises(InvalidLabelsError, match="dp_rank missing"):
        gv.inc(extra)
    assert dict(extra) == {"model": "llama"}  # no key created by the lookup
    assert gv.get(LABELS) == 1.5 and gv.get(OTHER) == 2.0


def test_shortcuts_share_the_overflow_child_as_with_labels_does():
    ours = dm.CounterVec("o_total", "Help", NAMES, max_children=1)
    theirs = dm.CounterVec("o_total", "Help", NAMES, max_children=1)
    for labels in (LABELS, OTHER, {"model": "x", "dp_rank": "2"}):
        ours.inc(labels)
        theirs.with_labels(labels).inc()
    assert ours.get(OTHER) == 2  # OTHER and the third set share the overflow child
    reg_a, reg_b = dm.Registry(), dm.Registry()
    reg_a.register(ours)
    reg_b.register(theirs)
    assert reg_a.prometheus_expfmt() == reg_b.prometheus_expfmt()
    assert 'dp_rank="__overflow__",model="__overflow__"} 2' in reg_a.prometheus_expfmt()


def test_vec_children_still_expose_the_metric_api_only():
    cv = dm.CounterVec("c_total", "Help", NAMES)
    child = cv.with_labels(LABELS)
    assert sorted(n for n in dir(child) if not n.startswith("_")) == [
        "count_exceptions",
        "get",
        "inc",
        "inc_by",
    ]
    # On the child, inc takes an amount, never a labels dict.
    with pytest.raises(InvalidValueError):
        child.inc(LABELS)
    assert child.get() == 0


# -- bad input: typed errors naming the value, and nothing changes ----------------------------

LABEL_ERROR_ROWS = [
    # (id, vec kind, call, text in the message): InvalidLabelsError
    ("pairs_not_a_dict", "countervec", lambda v: v.inc([("model", "x")]), "[('model', 'x')]"),
    ("str_not_a_dict", "countervec", lambda v: v.inc_by("model=x", 1), "'model=x'"),
    ("none_not_a_dict", "gaugevec", lambda v: v.set(1, None), "got None"),
    ("number_not_a_dict", "intgaugevec", lambda v: v.inc(5), "got 5"),
    ("set_args_swapped", "gaugevec", lambda v: v.set(LABELS, 5), "got 5"),
    ("missing_label", "countervec", lambda v: v.inc({"model": "x"}), "dp_rank missing"),
    ("unknown_label", "gaugevec", lambda v: v.add({**LABELS, "zone": "z"}, 1), "'zone'"),
    ("empty_dict", "intcountervec", lambda v: v.get({}), "missing"),
    ("value_not_str", "countervec", lambda v: v.inc({"model": "x", "dp_rank": 0}), "got 0"),
    ("unhashable_value", "gaugevec", lambda v: v.dec({"model": "x", "dp_rank": []}), "got []"),
]

VALUE_ERROR_ROWS = [
    # (id, vec kind, call, text in the message): InvalidValueError
    ("negative_increment", "countervec", lambda v: v.inc_by(LABELS, -1), "-1"),
    ("nan_increment", "countervec", lambda v: v.inc_by(LABELS, math.nan), "nan"),
    ("float_to_int_counter", "intcountervec", lambda v: v.inc_by(LABELS, 1.5), "1.5"),
    ("text_to_gauge", "gaugevec", lambda v: v.set("1", LABELS), "'1'"),
    ("float_to_int_gauge", "intgaugevec", lambda v: v.set(2.5, LABELS), "2.5"),
    ("text_sub", "gaugevec", lambda v: v.sub(LABELS, "x"), "'x'"),
    ("float_add_int_gauge", "intgaugevec", lambda v: v.add(LABELS, 0.5), "0.5"),
]

BAD_CASES = [
    pytest.param(kind, call, exc, text, id=row_id)
    for rows, exc in ((LABEL_ERROR_ROWS, InvalidLabelsError), (VALUE_ERROR_ROWS, InvalidValueError))
    for row_id, kind, call, text in rows
]


@pytest.mark.parametrize("kind, call, exc, text", BAD_CASES)
def test_bad_shortcut_input_raises_and_changes_nothing(kind, call, exc, text):
    ep = _endpoint()
    vec = getattr(ep.metrics, f"create_{kind}")("m", "Help", NAMES)
    before = _expfmt(ep)
    with pytest.raises(exc) as info:
        call(vec)
    assert text in str(info.value)
    assert str(info.value)[0].islower()
    assert _expfmt(ep) == before == b""  # no child was made
    # A child that exists refuses the same way, unchanged.
    vec.with_labels(LABELS)
    made = _expfmt(ep)
    with pytest.raises(exc):
        call(vec)
    assert _expfmt(ep) == made


def test_shortcut_errors_are_the_with_labels_errors():
    vec = dm.GaugeVec("g", "Help", NAMES)
    for labels in ({"model": "x"}, {**LABELS, "zone": "z"}):
        with pytest.raises(InvalidLabelsError) as shortcut:
            vec.set(1, labels)
        with pytest.raises(InvalidLabelsError) as canonical:
            vec.with_labels(labels)
        assert str(shortcut.value) == str(canonical.value)
    with pytest.raises(CardinalityError):  # positional values: the other spelling's error
        vec.with_label_values("x")


# -- name(), const_labels(), variable_labels() -------------------------------------------

AUTO = {
    "dynamo_component": "comp",
    "dynamo_endpoint": "ep",
    "dynamo_namespace": "ns",
    "worker_id": "7",
}

CONST = [("zeta", "1"), ("alpha", "2")]  # not in name order

NAME_ROWS = [
    # (create_*, arguments before the const labels, name(), variable_labels(); None: not a vec)
    ("create_counter", ("req_total", "h"), "dynamo_component_req_total", None),
    ("create_intcounter", ("n", "h"), "dynamo_component_n", None),
    ("create_gauge", ("g", "h"), "dynamo_component_g", None),
    ("create_intgauge", ("ig", "h"), "dynamo_component_ig", None),
    ("create_histogram", ("lat", "h"), "dynamo_component_lat", None),
    ("create_summary", ("s", "h"), "dynamo_component_s", None),
    ("create_countervec", ("cv", "h", NAMES), "dynamo_component_cv", NAMES),
    ("create_intcountervec", ("icv", "h", NAMES), "dynamo_component_icv", NAMES),
    ("create_gaugevec", ("gv", "h", NAMES), "dynamo_component_gv", NAMES),
    ("create_intgaugevec", ("igv", "h", NAMES), "dynamo_component_igv", NAMES),
    ("create_histogramvec", ("hv", "h", ["z", "a"]), "dynamo_component_hv", ["z", "a"]),
    ("create_summaryvec", ("sv", "h", ["z", "a"]), "dynamo_component_sv", ["z", "a"]),
]


@pytest.mark.parametrize("create, args, name, variable", NAME_ROWS)
def test_name_const_labels_and_variable_labels_as_the_binding(create, args, name, variable):
    metric = getattr(_endpoint().metrics, create)(*args, CONST)
    assert metric.name() == name
    labels = metric.const_labels()
    assert labels == {**AUTO, "alpha": "2", "zeta": "1"} and type(labels) is dict
    assert list(labels) == sorted(labels)  # rust-prometheus' Desc keeps them by name
    labels["alpha"] = "changed"  # a new dict each time
    assert metric.const_labels()["alpha"] == "2"
    got = metric.variable_labels()
    assert got == (variable or []) and type(got) is list  # declared order, not sorted
    got.append("x")
    assert metric.variable_labels() == (variable or [])


def test_name_and_labels_without_the_hierarchy():
    c = dm.Counter("jobs_total", "Jobs", const_labels={"queue": "a"})
    assert (c.name(), c.const_labels(), c.variable_labels()) == ("jobs_total", {"queue": "a"}, [])
    v = dm.IntGaugeVec("q", "Queue", ["b", "a"])
    assert (v.name(), v.const_labels(), v.variable_labels()) == ("q", {}, ["b", "a"])


# -- .metrics as a property and as a call, on every node -------------------------------------

NODE_ROWS = [
    # (id, path from a runtime to the node)
    ("runtime", lambda drt: drt),
    ("namespace", lambda drt: drt.namespace("ns")),
    ("nested_namespace", lambda drt: drt.namespace("ns").namespace("inner")),
    ("component", lambda drt: drt.namespace("ns").component("comp")),
    ("endpoint", lambda drt: drt.namespace("ns").component("comp").endpoint("ep")),
]

FORM_ROWS = [
    # (id, how the facade is reached)
    ("property", lambda node: node.metrics),
    ("call", lambda node: node.metrics()),
    ("call_of_call", lambda node: node.metrics()()),
]


def _populate(m):
    m.create_counter("c_total", "Counter", [("k", "v")]).inc_by(2)
    m.create_intgaugevec("g", "Gauge", NAMES).set(3, LABELS)
    m.create_histogram("h", "Histogram", buckets=[1.0]).observe(0.5)
    m.register_callback(lambda: None)
    m.register_prometheus_expfmt_callback(lambda: "# TYPE ext gauge\next 1\n")


@pytest.mark.parametrize("path", [pytest.param(p, id=i) for i, p in NODE_ROWS])
@pytest.mark.parametrize("form", [pytest.param(f, id=i) for i, f in FORM_ROWS])
def test_metrics_property_and_call_give_the_same_facade_and_bytes(path, form):
    node = path(runtime(7))
    assert form(node) is node.metrics is node.metrics()
    assert isinstance(node.metrics, Metrics)
    ours, theirs = path(runtime(7)), path(runtime(7))
    _populate(form(ours))
    _populate(theirs.metrics())  # the canonical call spelling
    got, want = (mask_uptime(dm.generate_latest(n).decode()) for n in (ours, theirs))
    assert got == want and 'dynamo_component_g{dp_rank="0"' in got
    assert mask_uptime(form(ours).prometheus_expfmt()) == mask_uptime(
        theirs.metrics().prometheus_expfmt()
    )


def test_a_facade_from_the_property_is_a_source_everywhere():
    ep = _endpoint()
    ep.metrics.create_counter("x_total", "X").inc()
    for source in (ep, ep.metrics, ep.metrics()):
        assert b"dynamo_component_x_total{" in dm.generate_latest(source)
