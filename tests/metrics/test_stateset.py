"""State sets: ``StateSet`` (``Enum``), ``StateSetVec``, both formats, bad input, threads."""

import json
import shutil
import subprocess
import sys
import textwrap
import threading

import prometheus_client
import pytest
from prometheus_client.openmetrics import exposition as pc_om
from prometheus_client.openmetrics import parser as pc_om_parser
from prometheus_client.parser import text_string_to_metric_families as pc_text_families

import dyn_metrics as dm
from dyn_metrics.errors import (
    CardinalityError,
    InvalidLabelsError,
    InvalidNameError,
    InvalidValueError,
)
from dyn_metrics.exposition.text import encode_to_string
from dyn_metrics.metrics import cells, stateset
from dyn_metrics.metrics.stateset import Enum, StateSet, StateSetVec
from tests.metrics.support import sample_lines

STATES = ["starting", "ready", "draining"]


def _new(**kw):
    return StateSet("worker_state", "State", states=STATES, **kw)


def _expose(metric):
    reg = dm.Registry()
    reg.register(metric)
    return reg.prometheus_expfmt(), reg.openmetrics_expfmt()


def _fast_text(metric):
    parts = []
    metric.write_text(parts.append)
    return "".join(parts)


# -- updates -> bytes, both formats ------------------------------------------------------

UPDATE_ROWS = [
    # (id, updates [(method, args)], true states after, text sample values in declared order)
    ("starts in its first state", [], ("starting",), (1, 0, 0)),
    ("state() moves the one true state", [("state", ("ready",))], ("ready",), (0, 1, 0)),
    (
        "last state() wins",
        [("state", ("draining",)), ("state", ("starting",)), ("state", ("ready",))],
        ("ready",),
        (0, 1, 0),
    ),
    ("set() turns one more on", [("set", ("draining", True))], ("starting", "draining"), (1, 0, 1)),
    ("set() turns the first off", [("set", ("starting", False))], (), (0, 0, 0)),
    (
        "set() on a true state is a no-op",
        [("set", ("starting", True))],
        ("starting",),
        (1, 0, 0),
    ),
    (
        "state() after set() leaves only one",
        [("set", ("ready", True)), ("set", ("draining", True)), ("state", ("draining",))],
        ("draining",),
        (0, 0, 1),
    ),
    (
        "set() after state() changes that state only",
        [("state", ("ready",)), ("set", ("starting", True)), ("set", ("ready", False))],
        ("starting",),
        (1, 0, 0),
    ),
    ("all on", [("set", (s, True)) for s in STATES], tuple(STATES), (1, 1, 1)),
]


@pytest.mark.parametrize(
    "updates, true, values", [r[1:] for r in UPDATE_ROWS], ids=[r[0] for r in UPDATE_ROWS]
)
def test_updates_give_the_expected_bytes_in_both_formats(updates, true, values):
    st = _new()
    for method, args in updates:
        getattr(st, method)(*args)
    assert st.get() == true
    lines = "".join(f'worker_state{{worker_state="{s}"}} {v}\n' for s, v in zip(STATES, values))
    text, om = _expose(st)
    assert text == "# HELP worker_state State\n# TYPE worker_state gauge\n" + lines
    assert om == "# TYPE worker_state stateset\n# HELP worker_state State\n" + lines + "# EOF\n"
    assert _fast_text(st) == encode_to_string(st.collect()) == text
    assert dm.check(text, "text").errors == []
    assert dm.check(om, "openmetrics").errors == []


def test_state_label_sits_among_the_other_labels_in_name_order():
    st = StateSet("m", "h", ["x", "y"], {"z": "1", "a": "2"})
    vec = StateSetVec("v", "h", ["zz", "b"], ["on"], {"c": "3"})
    vec.with_label_values("1", "2").state("on")
    assert sample_lines(_expose(st)[0]) == [
        'm{a="2",m="x",z="1"} 1',
        'm{a="2",m="y",z="1"} 0',
    ]
    assert sample_lines(_expose(vec)[0]) == ['v{b="2",c="3",v="on",zz="1"} 1']
    for metric in (st, vec):
        assert _fast_text(metric) == encode_to_string(metric.collect())


def test_label_value_escaping_and_unicode_states():
    st = StateSet("m", "h", ['a"b', "c\\d", "e\nf", "é"])
    st.state("é")
    text, om = _expose(st)
    assert sample_lines(text) == [
        'm{m="a\\"b"} 0',
        'm{m="c\\\\d"} 0',
        'm{m="e\\nf"} 0',
        'm{m="é"} 1',
    ]
    assert _fast_text(st) == encode_to_string(st.collect())
    assert dm.check(om, "openmetrics").errors == []


def test_enum_is_the_state_set_and_a_hierarchy_name_names_the_label():
    assert Enum is StateSet
    e = Enum("dynamo_component_worker_state", "h", states=["a", "b"])
    e.state("b")
    assert sample_lines(_expose(e)[0])[1] == (
        'dynamo_component_worker_state{dynamo_component_worker_state="b"} 1'
    )


# -- against prometheus_client ------------------------------------------------------------


def _pc_enum(labelnames=(), values=None, state="ready"):
    reg = prometheus_client.CollectorRegistry()
    e = prometheus_client.Enum("worker_state", "State", labelnames, states=STATES, registry=reg)
    (e.labels(*values) if values else e).state(state)
    return reg


def _parsed(families):
    return [
        (f.name, f.type, f.documentation, [(s.name, s.labels, float(s.value)) for s in f.samples])
        for f in families
    ]


@pytest.mark.parametrize("labelled", [False, True], ids=["plain", "vec child"])
def test_same_exposition_as_prometheus_clients_enum(labelled):
    if labelled:
        ours = StateSetVec("worker_state", "State", ["z", "a"], STATES)
        ours.with_label_values("1", "2").state("ready")
        pc = _pc_enum(["z", "a"], ["1", "2"])
    else:
        ours = _new()
        ours.state("ready")
        pc = _pc_enum()
    text, om = _expose(ours)
    pc_text = prometheus_client.generate_latest(pc).decode()
    # prometheus_client writes 1.0 and 0.0 where we write 1 and 0: otherwise byte-equal.
    assert text == pc_text.replace(" 1.0\n", " 1\n").replace(" 0.0\n", " 0\n")
    assert _parsed(pc_text_families(text)) == _parsed(pc_text_families(pc_text))
    pc_om_text = pc_om.generate_latest(pc).decode()
    ours_om = _parsed(pc_om_parser.text_string_to_metric_families(om))
    assert ours_om == _parsed(pc_om_parser.text_string_to_metric_families(pc_om_text))
    assert ours_om[0][1] == "stateset"


# -- bad input ----------------------------------------------------------------------------

CREATE_ROWS = [
    # (id, args, kwargs, error, message fragment)
    ("empty states", ("m", "h", []), {}, InvalidValueError, "at least one state"),
    ("states a string", ("m", "h", "abc"), {}, InvalidValueError, "sequence of strings"),
    ("states None", ("m", "h", None), {}, InvalidValueError, "got None"),
    ("a non-string state", ("m", "h", ["a", 1]), {}, InvalidValueError, "got 1"),
    ("duplicate states", ("m", "h", ["a", "b", "a"]), {}, InvalidValueError, "duplicate state 'a'"),
    ("a lone surrogate", ("m", "h", ["\ud800"]), {}, InvalidValueError, "UTF-8"),
    ("colon name", ("a:b", "h", ["x"]), {}, InvalidNameError, "'a:b' must also be a valid label"),
    ("reserved name", ("__m", "h", ["x"]), {}, InvalidNameError, "not starting with '__'"),
    ("invalid name", ("1m", "h", ["x"]), {}, InvalidNameError, "1m"),
    (
        "const label named like the metric",
        ("m", "h", ["x"], {"m": "1"}),
        {},
        InvalidLabelsError,
        "label 'm' of state set 'm' is named like the metric",
    ),
    ("a unit", ("m_seconds", "h", ["x"]), {"unit": "seconds"}, InvalidNameError, "has no unit"),
    ("empty help", ("m", "", ["x"]), {}, InvalidValueError, "empty help"),
]


@pytest.mark.parametrize(
    "args, kwargs, error, fragment", [r[1:] for r in CREATE_ROWS], ids=[r[0] for r in CREATE_ROWS]
)
def test_bad_creation_raises_a_typed_error(args, kwargs, error, fragment):
    with pytest.raises(error) as info:
        StateSet(*args, **kwargs)
    assert fragment in str(info.value)
    assert str(info.value)[0].islower() or str(info.value)[0] in "'_"


VEC_CREATE_ROWS = [
    # (id, label names, const labels, error, message fragment)
    ("variable label named like the metric", ["k", "v"], None, InvalidLabelsError, "'v'"),
    ("const label named like the metric", ["k"], {"v": "1"}, InvalidLabelsError, "'v'"),
    ("bad variable label", ["1k"], None, InvalidNameError, "1k"),
]


@pytest.mark.parametrize(
    "names, const, error, fragment",
    [r[1:] for r in VEC_CREATE_ROWS],
    ids=[r[0] for r in VEC_CREATE_ROWS],
)
def test_bad_vec_creation_raises_a_typed_error(names, const, error, fragment):
    with pytest.raises(error) as info:
        StateSetVec("v", "h", names, ["x"], const)
    assert fragment in str(info.value)


def test_bad_max_children_is_refused():
    with pytest.raises(InvalidValueError):
        StateSetVec("v", "h", ["k"], ["x"], max_children=-1)


UPDATE_ERROR_ROWS = [
    # (id, method, args, message fragment)
    ("state() undeclared", "state", ("stopped",), "'stopped' is not a state of 'worker_state'"),
    ("state() names the declared", "state", ("x",), "['starting', 'ready', 'draining']"),
    ("state() not a string", "state", (1,), "1 is not a state"),
    ("state() unhashable", "state", ([],), "[] is not a state"),
    ("set() undeclared", "set", ("stopped", True), "'stopped' is not a state"),
    ("set() a non-bool", "set", ("ready", 1), "True or False, got 1"),
    ("set() None", "set", ("ready", None), "got None"),
]


@pytest.mark.parametrize(
    "method, args, fragment",
    [r[1:] for r in UPDATE_ERROR_ROWS],
    ids=[r[0] for r in UPDATE_ERROR_ROWS],
)
def test_bad_updates_raise_and_change_nothing(method, args, fragment):
    st = _new()
    st.set("draining", True)
    before = _expose(st)
    child = StateSetVec("worker_state", "State", ["k"], STATES).with_label_values("a")
    for target in (st, child):
        with pytest.raises(InvalidValueError) as info:
            getattr(target, method)(*args)
        assert fragment in str(info.value)
    assert _expose(st) == before
    assert child.get() == ("starting",)


# -- vec ----------------------------------------------------------------------------------


def test_vec_children_remove_and_clear():
    vec = StateSetVec("v", "h", ["k"], ["on", "off"])
    assert _expose(vec)[0] == ""  # no children, no family
    vec.with_label_values("b").state("off")
    vec.with_labels({"k": "a"}).set("off", True)
    assert vec.with_label_values("b") is vec.with_labels({"k": "b"})
    assert vec.states == ("on", "off")
    assert sample_lines(_expose(vec)[0]) == [
        'v{k="a",v="on"} 1',
        'v{k="a",v="off"} 1',
        'v{k="b",v="on"} 0',
        'v{k="b",v="off"} 1',
    ]
    vec.remove_label_values("a")
    assert sample_lines(_expose(vec)[0]) == ['v{k="b",v="on"} 0', 'v{k="b",v="off"} 1']
    assert vec.with_label_values("a").get() == ("on",)  # recreated fresh
    vec.clear()
    assert _expose(vec)[0] == ""
    with pytest.raises(CardinalityError):
        vec.with_label_values()


def test_vec_overflow_child_beyond_max_children():
    vec = StateSetVec("v", "h", ["k"], ["on", "off"], max_children=1)
    vec.with_label_values("a").state("off")
    over = vec.with_label_values("b")
    assert over is vec.with_label_values("c")
    over.set("off", True)
    text, om = _expose(vec)
    assert sample_lines(text) == [
        'v{k="__overflow__",v="on"} 1',
        'v{k="__overflow__",v="off"} 1',
        'v{k="a",v="on"} 0',
        'v{k="a",v="off"} 1',
    ]
    assert _fast_text(vec) == encode_to_string(vec.collect())
    assert dm.check(om, "openmetrics").errors == []


# -- threads and re-entrancy --------------------------------------------------------------


def _on_threads(fn, n=8):
    barrier = threading.Barrier(n + 1)
    errors = []

    def target(i):
        try:
            barrier.wait(timeout=30)
            fn(i)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for w in workers:
        w.start()
    return barrier, workers, errors


def test_threads_flipping_states_while_another_scrapes(switch_often):
    e = _new()
    reg = dm.Registry()
    reg.register(e)
    done = threading.Event()
    barrier, workers, errors = _on_threads(
        lambda i: [e.state(STATES[(i + j) % 3]) for j in range(20_000)]
    )
    barrier.wait(timeout=30)
    scrapes = 0
    while not done.is_set():
        text = reg.prometheus_expfmt()
        values = [line.rsplit(" ", 1)[1] for line in sample_lines(text)]
        assert sorted(values) == ["0", "0", "1"], text  # exactly one true state
        assert len(e.get()) == 1
        scrapes += 1
        if not any(w.is_alive() for w in workers):
            done.set()
    for w in workers:
        w.join(timeout=30)
    assert not errors
    assert scrapes > 0
    assert dm.check(reg.openmetrics_expfmt(), "openmetrics").errors == []


@pytest.fixture
def switch_often():
    """Threads switch every 10 µs, so that updates of different threads interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def test_concurrent_set_calls_lose_nothing(switch_often):
    # Each thread owns one state, toggles it, and ends with it on (even) or
    # off (odd), the threads one after another while the others still run: a
    # read-modify-write would write a stale copy of a finished thread's state.
    names = [f"s{i}" for i in range(8)]
    st = StateSet("m", "h", names)
    st.set("s0", False)
    barrier, workers, errors = _on_threads(
        lambda i: [st.set(names[i], j % 2 == i % 2) for j in range(2000 * (i + 1) + 1)]
    )
    barrier.wait(timeout=30)
    while any(w.is_alive() for w in workers):
        assert set(st.get()) <= set(names)
    for w in workers:
        w.join(timeout=30)
    assert not errors
    assert st.get() == ("s0", "s2", "s4", "s6")


def test_set_calls_nested_in_a_held_stripe_neither_wait_nor_lose():
    st = StateSetVec("worker_state", "State", ["k"], STATES).with_label_values("a")
    assert cells.take_all()  # exactly where a call nested in a scrape runs
    try:
        for i in range(3 * cells.FOLD_AT):
            st.set("ready", i % 2 == 0)
        st.set("draining", True)
        inside = st.get()
        pending = len(st._value)
    finally:
        cells.drop_all()
    assert inside == ("starting", "draining")
    assert pending == 3 * cells.FOLD_AT + 2  # nothing folded while the stripes were held
    assert st.get() == inside
    assert st._value == [0b101]  # the next read folded
    assert cells._HELD.locks == []


def test_a_bare_cell_is_usable():
    cell = stateset.StateSetCell(threading.Lock())
    assert cell.get() == ("",)
    assert "StateSetCell" in repr(cell)


REENTRANT = """
import gc, json, signal
import dyn_metrics as dm
from dyn_metrics.metrics.stateset import StateSet, StateSetVec

reg = dm.Registry()
c = reg.register(dm.Counter("c_total", "c"))
e = reg.register(StateSet("e", "e", ["a", "b", "c"]))
s = reg.register(StateSetVec("s", "s", ["k"], ["x", "y"]))
calls = 0
bad = []

busy = False

def touch(*_):
    # A signal may arrive inside this very handler: the flag keeps the bodies from
    # nesting, so the last state set is the one of the last call counted.
    global busy
    if busy:
        return
    busy = True
    try:
        body()
    finally:
        busy = False

def body():
    global calls
    calls += 1
    e.state("abc"[calls % 3])
    child = s.with_label_values(str(calls % 5))
    child.set("xy"[calls % 2], calls % 3 == 0)
    child.set("y", True)
    if "y" not in child.get():  # a read with changes to fold, maybe mid-scrape
        bad.append(child.get())
    c.inc_by(0.5)  # pending amounts: each scrape of c holds every stripe
    if len(e.get()) != 1:
        bad.append(e.get())

MODE
for i in range(300):
    text = reg.prometheus_expfmt()
    lines = [l for l in text.splitlines() if l.startswith("e{")]
    if sorted(l[-1] for l in lines) != ["0", "0", "1"]:
        bad.append(text)
    if i % 50 == 0 and dm.check(reg.openmetrics_expfmt(), "openmetrics").errors:
        bad.append("openmetrics")
    junk = [[j] for j in range(200)]
STOP
print(json.dumps({"calls": calls, "bad": bad[:3], "last": e.get()[0], "want": "abc"[calls % 3]}))
"""

MODES = [
    # (id, set up, tear down)
    (
        "setitimer signal handler",
        "signal.signal(signal.SIGALRM, touch)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)",
        "signal.setitimer(signal.ITIMER_REAL, 0)",
    ),
    (
        "gc.callbacks",
        "gc.set_threshold(50, 1, 1)\n"
        "gc.callbacks.append(lambda phase, info: touch() if phase == 'start' else None)",
        "gc.callbacks.clear()",
    ),
]


@pytest.mark.parametrize("setup, stop", [m[1:] for m in MODES], ids=[m[0] for m in MODES])
def test_updates_called_mid_scrape_on_the_same_thread(setup, stop):
    script = textwrap.dedent(REENTRANT).replace("MODE", setup).replace("STOP", stop)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["calls"] > 20, r
    assert r["bad"] == [], r
    assert r["last"] == r["want"]


def test_same_named_state_sets_of_one_registry_merge_in_both_formats():
    reg = dm.Registry()
    a = reg.register(StateSet("st", "S", ["x", "y"], {"node": "b"}))
    reg.register(StateSet("st", "S", ["x", "y"], {"node": "a"}))
    a.state("y")
    lines = ['st{node="a",st="x"} 1', 'st{node="a",st="y"} 0']
    lines += ['st{node="b",st="x"} 0', 'st{node="b",st="y"} 1']
    text, om = reg.prometheus_expfmt(), reg.openmetrics_expfmt()
    assert text == "# HELP st S\n# TYPE st gauge\n" + "\n".join(lines) + "\n"
    assert om == "# TYPE st stateset\n# HELP st S\n" + "\n".join(lines) + "\n# EOF\n"
    assert dm.check(om, "openmetrics").errors == []


def test_a_child_exposes_the_metric_api_only():
    child = StateSetVec("v", "h", ["k"], ["on"]).with_label_values("a")
    assert [n for n in dir(child) if not n.startswith("_")] == ["get", "set", "state"]
    st = StateSet("m", "h", ["on"])
    assert {n for n in ("get", "set", "state") if n in vars(st)} == {"get", "set", "state"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_text_without_a_lint():
    vec = StateSetVec("v", "Vec of states", ["k"], ["on", "off"])
    vec.with_label_values("a").set("off", True)
    st = _new()
    st.state("ready")
    reg = dm.Registry()
    reg.register(vec)
    reg.register(st)
    done = subprocess.run(
        ["promtool", "check", "metrics"],
        input=reg.prometheus_expfmt().encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
