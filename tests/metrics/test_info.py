"""Info metrics: ``Info``, ``InfoVec``, both formats, bad input, threads, re-entrancy."""

import json
import shutil
import subprocess
import sys
import textwrap
import threading
from collections import OrderedDict
from types import MappingProxyType

import prometheus_client
import pytest
from prometheus_client.openmetrics import exposition as pc_om
from prometheus_client.openmetrics import parser as pc_om_parser
from prometheus_client.parser import text_string_to_metric_families as pc_text_families

import dyn_metrics as dm
from dyn_metrics.errors import InvalidLabelsError, InvalidNameError, InvalidValueError
from dyn_metrics.exposition.text import encode_to_string
from dyn_metrics.metrics import cells, info
from dyn_metrics.metrics.info import Info, InfoVec
from tests.metrics.support import sample_lines

HEAD = "# HELP build_info Build info\n# TYPE build_info gauge\n"
OM_HEAD = "# TYPE build info\n# HELP build Build info\n"


def _expose(metric):
    reg = dm.Registry()
    reg.register(metric)
    return reg.prometheus_expfmt(), reg.openmetrics_expfmt()


def _fast_text(metric):
    parts = []
    metric.write_text(parts.append)
    return "".join(parts)


class _Str(str):
    """A str subclass that prints differently from its text."""

    def __str__(self):
        return "other"


# -- updates -> bytes, both formats ------------------------------------------------------

UPDATE_ROWS = [
    # (id, const labels, info() calls, get() after, the sample line)
    ("nothing set", None, [], {}, "build_info 1"),
    ("nothing set, const labels", {"env": "p"}, [], {}, 'build_info{env="p"} 1'),
    (
        "keys sorted",
        None,
        [{"version": "1.2", "commit": "abc"}],
        {"commit": "abc", "version": "1.2"},
        'build_info{commit="abc",version="1.2"} 1',
    ),
    (
        "const labels sorted in",
        {"m": "x"},
        [{"z": "1", "a": "2"}],
        {"a": "2", "z": "1"},
        'build_info{a="2",m="x",z="1"} 1',
    ),
    ("last info() replaces", None, [{"a": "1"}, {"b": "2"}], {"b": "2"}, 'build_info{b="2"} 1'),
    ("empty info() clears", {"e": "1"}, [{"a": "1"}, {}], {}, 'build_info{e="1"} 1'),
    (
        "escaping",
        None,
        [{"q": 'a"b', "s": "c\\d", "n": "e\nf"}],
        {"n": "e\nf", "q": 'a"b', "s": "c\\d"},
        'build_info{n="e\\nf",q="a\\"b",s="c\\\\d"} 1',
    ),
    (
        "unicode and empty values",
        None,
        [{"u": "é", "e": ""}],
        {"e": "", "u": "é"},
        'build_info{e="",u="é"} 1',
    ),
    (
        "le and quantile are fine",
        None,
        [{"le": "1", "quantile": "2"}],
        {"le": "1", "quantile": "2"},
        'build_info{le="1",quantile="2"} 1',
    ),
    ("any mapping", None, [MappingProxyType({"a": "1"})], {"a": "1"}, 'build_info{a="1"} 1'),
    (
        "ordered dict",
        None,
        [OrderedDict([("b", "1"), ("a", "2")])],
        {"a": "2", "b": "1"},
        'build_info{a="2",b="1"} 1',
    ),
    (
        "str subclasses stored as text",
        None,
        [{_Str("k"): _Str("v")}],
        {"k": "v"},
        'build_info{k="v"} 1',
    ),
]


@pytest.mark.parametrize(
    "const, calls, got, line", [r[1:] for r in UPDATE_ROWS], ids=[r[0] for r in UPDATE_ROWS]
)
def test_info_gives_the_expected_bytes_in_both_formats(const, calls, got, line):
    i = Info("build", "Build info", const)
    for mapping in calls:
        i.info(mapping)
    assert i.get() == got
    assert type(next(iter(i.get()), "")) is str
    text, om = _expose(i)
    assert text == HEAD + line + "\n"
    assert om == OM_HEAD + line + "\n# EOF\n"
    assert _fast_text(i) == encode_to_string(i.collect()) == text
    assert dm.check(text, "text").errors == []
    assert dm.check(om, "openmetrics").errors == []


def test_get_returns_a_copy():
    i = Info("build", "Build info")
    i.info({"a": "1"})
    i.get()["a"] = "2"
    assert i.get() == {"a": "1"}


def test_info_copies_the_mapping_it_is_given():
    i = Info("build", "Build info")
    given = {"a": "1"}
    i.info(given)
    given["a"] = "changed"
    assert sample_lines(_expose(i)[0]) == ['build_info{a="1"} 1']


def test_collect_names_the_family_like_its_samples():
    i = Info("build", "Build info")
    (family,) = i.collect()
    assert (family.name, family.type, family.samples[0].name) == (
        "build_info",
        "info",
        "build_info",
    )
    assert i.describe()[0].name == "build_info"


# -- against prometheus_client ------------------------------------------------------------


def _parsed(families):
    return [
        (f.name, f.type, f.documentation, [(s.name, s.labels, float(s.value)) for s in f.samples])
        for f in families
    ]


PC_ROWS = [
    # (id, label names, children [(label values, info or None)])
    ("nothing set", (), [((), None)]),
    ("set", (), [((), {"version": "1.2", "commit": "abc"})]),
    ("vec", ("z", "env"), [(("1", "p"), {"a": "b", "y": "c"}), (("2", "q"), None)]),
]


@pytest.mark.parametrize("names, children", [r[1:] for r in PC_ROWS], ids=[r[0] for r in PC_ROWS])
def test_same_exposition_as_prometheus_clients_info(names, children):
    reg = prometheus_client.CollectorRegistry()
    pc = prometheus_client.Info("build", "Build info", names, registry=reg)
    ours = InfoVec("build", "Build info", names) if names else Info("build", "Build info")
    for values, mapping in children:
        pc_child = pc.labels(*values) if names else pc
        our_child = ours.with_label_values(*values) if names else ours
        if mapping is not None:
            pc_child.info(mapping)
            our_child.info(mapping)
    text, om = _expose(ours)
    pc_text = prometheus_client.generate_latest(reg).decode()
    # prometheus_client writes 1.0 where we write 1: otherwise byte-equal.
    assert text == pc_text.replace(" 1.0\n", " 1\n")
    assert _parsed(pc_text_families(text)) == _parsed(pc_text_families(pc_text))
    pc_om_text = pc_om.generate_latest(reg).decode()
    ours_om = _parsed(pc_om_parser.text_string_to_metric_families(om))
    assert ours_om == _parsed(pc_om_parser.text_string_to_metric_families(pc_om_text))
    assert ours_om[0][:2] == ("build", "info")


# -- bad input ----------------------------------------------------------------------------

CREATE_ROWS = [
    # (id, args, kwargs, error, message fragment)
    (
        "const label named like the metric",
        ("build", "h", {"build": "1"}),
        {},
        InvalidLabelsError,
        "label 'build' of info metric 'build' is named like the metric",
    ),
    (
        "const label named like the family",
        ("build", "h", {"build_info": "1"}),
        {},
        InvalidLabelsError,
        "'build_info'",
    ),
    ("invalid name", ("1b", "h"), {}, InvalidNameError, "1b"),
    ("empty name", ("", "h"), {}, InvalidNameError, "''"),
    ("name not a string", (5, "h"), {}, InvalidNameError, "5"),
    ("a unit", ("build_seconds", "h"), {"unit": "seconds"}, InvalidNameError, "has no unit"),
    ("empty help", ("build", ""), {}, InvalidValueError, "empty help"),
    ("bad const label", ("build", "h", {"1a": "x"}), {}, InvalidNameError, "1a"),
]


@pytest.mark.parametrize(
    "args, kwargs, error, fragment", [r[1:] for r in CREATE_ROWS], ids=[r[0] for r in CREATE_ROWS]
)
def test_bad_creation_raises_a_typed_error(args, kwargs, error, fragment):
    with pytest.raises(error) as exc:
        Info(*args, **kwargs)
    assert fragment in str(exc.value)


VEC_CREATE_ROWS = [
    # (id, label names, const labels, error, message fragment)
    ("variable label named like the metric", ["env", "build"], None, InvalidLabelsError, "'build'"),
    (
        "variable label named like the family",
        ["build_info"],
        None,
        InvalidLabelsError,
        "'build_info'",
    ),
    ("a label both const and variable", ["env"], {"env": "1"}, InvalidLabelsError, "'env'"),
    ("bad variable label", ["1k"], None, InvalidNameError, "1k"),
]


@pytest.mark.parametrize(
    "names, const, error, fragment",
    [r[1:] for r in VEC_CREATE_ROWS],
    ids=[r[0] for r in VEC_CREATE_ROWS],
)
def test_bad_vec_creation_raises_a_typed_error(names, const, error, fragment):
    with pytest.raises(error) as exc:
        InfoVec("build", "h", names, const)
    assert fragment in str(exc.value)


INFO_ERROR_ROWS = [
    # (id, info() argument, error, message fragment)
    ("not a mapping", [("a", "1")], InvalidLabelsError, "must be a dict"),
    ("a string", "a=1", InvalidLabelsError, "got 'a=1'"),
    ("None", None, InvalidLabelsError, "got None"),
    ("a non-string key", {1: "x"}, InvalidLabelsError, "must be strings, got 1"),
    ("a non-string value", {"a": 1}, InvalidLabelsError, "'a' of 'build' needs a string value"),
    ("a None value", {"a": None}, InvalidLabelsError, "got None"),
    ("an invalid name", {"a-b": "1"}, InvalidNameError, "'a-b' is not a valid info label name"),
    ("an empty name", {"": "1"}, InvalidNameError, "'' is not a valid"),
    ("a reserved name", {"__a": "1"}, InvalidNameError, "not starting with '__'"),
    ("a colon name", {"a:b": "1"}, InvalidNameError, "'a:b'"),
    ("named like the metric", {"build": "1"}, InvalidLabelsError, "named like the metric"),
    ("named like the family", {"build_info": "1"}, InvalidLabelsError, "named like the metric"),
    ("a const label", {"env": "x"}, InvalidLabelsError, "'env' of 'build' is already a label"),
    ("a lone surrogate", {"a": "\udc80"}, InvalidLabelsError, "UTF-8"),
    ("bad after good keys", {"a": "1", "b": 2}, InvalidLabelsError, "'b'"),
]


@pytest.mark.parametrize(
    "given, error, fragment",
    [r[1:] for r in INFO_ERROR_ROWS],
    ids=[r[0] for r in INFO_ERROR_ROWS],
)
def test_bad_info_raises_and_changes_nothing(given, error, fragment):
    i = Info("build", "Build info", {"env": "p"})
    i.info({"version": "1"})
    before = _expose(i)
    vec = InfoVec("build", "Build info", ["env"])
    child = vec.with_label_values("p")
    for target in (i, child):
        with pytest.raises(error) as exc:
            target.info(given)
        assert fragment in str(exc.value)
        assert str(exc.value)[0] in "abcdefghijklmnopqrstuvwxyz'"
    assert _expose(i) == before
    assert child.get() == {}


def test_a_bare_cell_checks_the_shape_only():
    cell = info.InfoCell(threading.Lock())
    cell.info({"info": "1"})
    assert cell.get() == {"info": "1"}
    with pytest.raises(InvalidLabelsError):
        cell.info({"_info": "1"})  # the bare cell's metric is ""
    assert "InfoCell" in repr(cell)


# -- vec ----------------------------------------------------------------------------------


def test_vec_children_remove_and_clear():
    vec = InfoVec("build", "Build info", ["env"], {"c": "1"})
    assert _expose(vec)[0] == ""  # no children, no family
    vec.with_label_values("q")
    vec.with_labels({"env": "p"}).info({"version": "2"})
    assert vec.with_label_values("p").get() == {"version": "2"}
    text = _expose(vec)[0]
    assert sample_lines(text) == [
        'build_info{c="1",env="p",version="2"} 1',
        'build_info{c="1",env="q"} 1',
    ]
    assert _fast_text(vec) == encode_to_string(vec.collect()) == text
    vec.remove_labels({"env": "p"})
    assert sample_lines(_expose(vec)[0]) == ['build_info{c="1",env="q"} 1']
    assert vec.with_label_values("p").get() == {}  # recreated fresh
    vec.clear()
    assert _expose(vec)[0] == ""


def test_vec_overflow_child_beyond_max_children():
    vec = InfoVec("build", "Build info", ["env"], max_children=1)
    vec.with_label_values("a").info({"v": "1"})
    over = vec.with_label_values("b")
    assert over is vec.with_label_values("c")
    over.info({"v": "2"})
    text, om = _expose(vec)
    assert sample_lines(text) == [
        'build_info{env="__overflow__",v="2"} 1',
        'build_info{env="a",v="1"} 1',
    ]
    assert vec.max_children == 1
    assert dm.check(om, "openmetrics").errors == []


# -- threads and re-entrancy --------------------------------------------------------------


@pytest.fixture
def switch_often():
    """Threads switch every 10 µs, so that updates and scrapes interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def test_threads_setting_info_while_another_scrapes(switch_often):
    # Each mapping is whole: a scrape shows one of them, never a mix of two.
    i = Info("build", "Build info")
    reg = dm.Registry()
    reg.register(i)
    mappings = [{"a": str(n), "b": str(n), f"k{n}": "x"} for n in range(8)]
    lines = {f'build_info{{a="{n}",b="{n}",k{n}="x"}} 1' for n in range(8)}
    lines.add("build_info 1")
    barrier = threading.Barrier(9)
    errors = []

    def work(n):
        try:
            barrier.wait(timeout=30)
            for _ in range(5000):
                i.info(mappings[n])
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(8)]
    for w in workers:
        w.start()
    barrier.wait(timeout=30)
    seen = set()
    while any(w.is_alive() for w in workers):
        (line,) = sample_lines(reg.prometheus_expfmt())
        assert line in lines
        assert i.get() in mappings or i.get() == {}
        seen.add(line)
    for w in workers:
        w.join(timeout=30)
    assert not errors
    assert i.get() in mappings
    assert seen  # the scraper did run meanwhile
    assert dm.check(reg.openmetrics_expfmt(), "openmetrics").errors == []


def test_info_nested_in_a_held_stripe():
    i = Info("build", "Build info")
    assert cells.take_all()  # exactly where a call nested in a scrape runs
    try:
        i.info({"a": "1"})
        inside = i.get()
    finally:
        cells.drop_all()
    assert inside == {"a": "1"}
    assert cells._HELD.locks == []


REENTRANT = """
import gc, json, signal
import dyn_metrics as dm
from dyn_metrics.metrics.info import Info, InfoVec

reg = dm.Registry()
c = reg.register(dm.Counter("c_total", "c"))
i = reg.register(Info("build", "b"))
v = reg.register(InfoVec("v", "v", ["k"]))
calls = 0
bad = []

def touch(*_):
    global calls
    calls += 1
    # One local: a nested signal between two reads of `calls` would tear the dict itself.
    now = str(calls)
    i.info({"n": now, "m": now})
    v.with_label_values(str(calls % 5)).info({"x": str(calls)})
    c.inc_by(0.5)  # pending amounts: each scrape of c holds every stripe
    got = i.get()
    if got["n"] != got["m"]:
        bad.append(got)

MODE
for n in range(300):
    text = reg.prometheus_expfmt()
    lines = [l for l in text.splitlines() if l.startswith("build_info")]
    if len(lines) != 1:
        bad.append(text)
    elif lines[0] != "build_info 1":
        m, k = lines[0].split('"')[1], lines[0].split('"')[3]
        if m != k:
            bad.append(lines[0])
    if n % 50 == 0 and dm.check(reg.openmetrics_expfmt(), "openmetrics").errors:
        bad.append("openmetrics")
    junk = [[j] for j in range(200)]
STOP
print(json.dumps({"calls": calls, "bad": bad[:3], "last": i.get()["n"]}))
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
def test_info_called_mid_scrape_on_the_same_thread(setup, stop):
    script = textwrap.dedent(REENTRANT).replace("MODE", setup).replace("STOP", stop)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["calls"] > 20, r
    assert r["bad"] == [], r
    assert r["last"] == str(r["calls"])


def test_same_named_infos_of_one_registry_merge_in_both_formats():
    reg = dm.Registry()
    a = reg.register(Info("build", "Build info", {"node": "b"}))
    reg.register(Info("build", "Build info", {"node": "a"}))
    a.info({"v": "1"})
    lines = 'build_info{node="a"} 1\nbuild_info{node="b",v="1"} 1\n'
    assert reg.prometheus_expfmt() == HEAD + lines
    om = reg.openmetrics_expfmt()
    assert om == OM_HEAD + lines + "# EOF\n"
    assert dm.check(om, "openmetrics").errors == []


def test_a_child_exposes_the_metric_api_only():
    child = InfoVec("build", "h", ["k"]).with_label_values("a")
    assert [n for n in dir(child) if not n.startswith("_")] == ["get", "info"]
    i = Info("build", "h")
    assert {n for n in ("get", "info") if n in vars(i)} == {"get", "info"}


def test_many_distinct_names_are_all_checked_and_kept():
    i = Info("build", "Build info", {"env": "p"})
    many = {f"k{n:03}": str(n) for n in range(100)}
    i.info(many)
    i.info(many)  # the second time, remembered names skip their checks
    assert i.get() == many
    assert len(i._children[()]._keys.accepted) == info._REMEMBER
    for bad, error in (({"env": "x"}, InvalidLabelsError), ({"k-1": "x"}, InvalidNameError)):
        with pytest.raises(error):
            i.info({**many, **bad})
    assert i.get() == many


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_text_without_a_lint():
    vec = InfoVec("x", "Vec of infos", ["k"])
    vec.with_label_values("a").info({"b": "c"})
    i = Info("build", "Build info")
    i.info({"version": "1.2"})
    reg = dm.Registry()
    reg.register(vec)
    reg.register(i)
    done = subprocess.run(
        ["promtool", "check", "metrics"],
        input=reg.prometheus_expfmt().encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
