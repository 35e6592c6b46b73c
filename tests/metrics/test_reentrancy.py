"""Re-entrancy: the metrics API called from a signal handler or a GC callback mid-scrape.

Each scenario runs in a subprocess with a timeout: a deadlock (the handler
waiting for a lock its own thread holds in the interrupted scrape) makes the
subprocess time out and the test fail. The handler increments, observes,
sets, reads and creates children while the main thread scrapes and updates
the same metrics; the final totals must be exact.
"""

import json
import subprocess
import sys
import textwrap

import pytest

import dyn_metrics as dm
from dyn_metrics.metrics import cells, counter_cell
from tests.metrics.support import scrape

COMMON = """
import gc, json, math, signal, sys
import dyn_metrics as dm

reg = dm.Registry()
c = dm.Counter("c_total", "c")
fc = dm.Counter("fc_total", "fc")
ic = dm.IntCounter("ic_total", "ic")
g = dm.Gauge("g", "g")
h = dm.Histogram("h", "h", buckets=[0.5])
cv = dm.CounterVec("cv_total", "cv", ["k"])
hv = dm.HistogramVec("hv", "hv", ["k"], buckets=[0.5])
gv = dm.IntGaugeVec("gv", "gv", ["k"])
# Few buckets allowed, so folds nested in scrapes also reduce the schema.
nh = dm.Histogram("nh", "nh", native=True, schema=6, max_buckets=8)
for m in (c, fc, ic, g, h, cv, hv, gv, nh):
    reg.register(m)
calls = 0
depth = 0
bad_reads = []

def touch(*_):
    # On a slow machine the timer can fire faster than the handler runs: past a few
    # levels of a handler interrupting itself, return at once so the stack unwinds.
    global depth
    if depth >= 4:
        return
    depth += 1
    try:
        _touch()
    finally:
        depth -= 1

def _touch():
    global calls
    calls += 1
    mine = calls  # the handler may interrupt itself too; then its reads are not checked
    before = c.get(), h.get_sample_count(), fc.get()
    c.inc()
    fc.inc_by(0.5)
    ic.inc_by(2)
    g.add(1.0)
    h.observe(0.25)
    cv.with_label_values(str(calls % 300)).inc()  # new children mid-scrape
    hv.with_label_values(str(calls % 7)).observe(1.0)
    gv.with_label_values("a").inc()
    nh.observe(float(calls % 41) - 20.0)
    # Reads nested in a scrape see every update made before them.
    after = c.get(), h.get_sample_count(), fc.get()
    if calls == mine and after != (before[0] + 1, before[1] + 1, before[2] + 0.5):
        bad_reads.append((before, after))
"""

REPORT = """
main = 0
for i in range(SCRAPES):
    text = reg.prometheus_expfmt()
    assert "c_total" in text
    c.inc()
    fc.inc_by(0.5)
    h.observe(1.0)
    g.sub(1.0)
    nh.observe(0.5)
    if i % 10 == 0:
        assert b"nh" in reg.protobuf_expfmt()
    main += 1
    WAIT
STOP
families = {f.name: f for f in reg.collect()}
print(json.dumps({
    "calls": calls, "main": main, "bad_reads": bad_reads[:5],
    "c": c.get(), "fc": fc.get(), "ic": ic.get(), "g": g.get(),
    "h": h.get_sample_count(), "hsum": h.get_sample_sum(),
    "cv": sum(s.value for s in families["cv_total"].samples),
    "hv": sum(s.value for s in families["hv"].samples if s.name == "hv_count"),
    "gv": gv.with_label_values("a").get(),
    "nh": nh.get_sample_count(),
    "nh_buckets": [
        s.native.zero_count + sum(c for _, c in s.native.positive + s.native.negative)
        for s in families["nh"].samples if s.name == "nh_count"
    ],
    "text_ok": reg.prometheus_expfmt().count("\\n") > 10,
}))
"""

SIGNAL = (
    COMMON
    + """
signal.signal(signal.SIGALRM, touch)
signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
"""
    + REPORT.replace("SCRAPES", "400")
    .replace("WAIT", "")
    .replace("STOP", "signal.setitimer(signal.ITIMER_REAL, 0)")
)

GC = (
    COMMON
    + """
gc.set_threshold(50, 1, 1)
gc.callbacks.append(lambda phase, info: touch() if phase == "start" else None)
"""
    + REPORT.replace("SCRAPES", "300")
    .replace("WAIT", "junk = [[j] for j in range(200)]")
    .replace("STOP", "gc.callbacks.clear()")
)

FINALIZER = (
    COMMON
    + """
import weakref
gc.set_threshold(50, 1, 1)

class Junk:
    def __init__(self):
        self.me = self  # a cycle: freed by a GC pass, at any allocation of the scrape

    def __del__(self):
        touch()

class Other:
    pass

def litter():
    for _ in range(20):
        Junk()
        o = Other()
        o.me = o
        weakref.finalize(o, touch)
"""
    + REPORT.replace("SCRAPES", "300").replace("WAIT", "litter()").replace("STOP", "gc.disable()")
)


def _run(script):
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,  # a deadlock fails here
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "script",
    [SIGNAL, GC, FINALIZER],
    ids=["setitimer signal handler", "gc.callbacks", "__del__ and weakref.finalize"],
)
def test_metrics_called_mid_scrape_on_the_same_thread_neither_deadlock_nor_lose(script):
    r = _run(script)
    n, main = r["calls"], r["main"]
    assert n > 20, r  # the handler really ran, many times, during scrapes
    assert r["bad_reads"] == [], r
    assert r["c"] == n + main
    assert r["fc"] == 0.5 * (n + main)
    assert r["ic"] == 2 * n
    assert r["g"] == n - main
    assert r["h"] == n + main
    assert r["hsum"] == 0.25 * n + 1.0 * main
    assert r["cv"] == n
    assert r["hv"] == n
    assert r["gv"] == n
    assert r["nh"] == n + main
    assert r["nh_buckets"] == [n + main]
    assert r["text_ok"]


# -- the nested paths, step by step ----------------------------------------------------
# A call nested in a scrape runs while its own thread holds every stripe; holding
# them with cells.take_all() puts a call in exactly that position, deterministically.


class _Nested:
    """``with _Nested():`` the body runs as if nested in a scrape on this thread."""

    def __enter__(self):
        assert cells.take_all()

    def __exit__(self, *exc):
        cells.drop_all()


def _counter_first_inc_by():
    c = dm.Counter("c_total", "c")
    c.inc()
    with _Nested():
        c.inc_by(2.5)  # no list yet, and its stripe is ours: deferred
        c.inc_by(0.5)
        inside = c.get()
    c.inc_by(1.0)  # moves the deferred amounts into the list, in order
    return inside, c.get(), scrape(c).splitlines()[-1]


def _counter_first_read():
    c = dm.IntCounter("c_total", "c")
    for _ in range(5):
        c.inc()
    with _Nested():
        inside = c.get()  # no read count yet and none can be made: read by repr
    return inside, c.get(), scrape(c).splitlines()[-1]


def _gauge_many_adds():
    g = dm.Gauge("g", "g")
    with _Nested():
        for _ in range(3 * cells.FOLD_AT):
            g.add(0.5)  # cannot fold: items stay pending
        inside = g.get()
    return inside, g.get(), scrape(g).splitlines()[-1]


def _histogram_many_observations():
    h = dm.Histogram("h", "h", buckets=[1.0])
    with _Nested():
        for _ in range(3 * cells.FOLD_AT):
            h.observe(0.5)
        inside = (h.get_sample_count(), h.get_sample_sum())
    return inside, (h.get_sample_count(), h.get_sample_sum()), scrape(h).splitlines()[-1]


def _scrape_inside_a_scrape():
    v = dm.CounterVec("v_total", "v", ["k"])
    v.with_label_values("a").inc_by(2)
    with _Nested():
        v.with_label_values("b").inc()  # a new child mid-scrape
        inside = scrape(v).splitlines()[-2:]
    return inside, scrape(v).splitlines()[-2:], len(v.collect()[0].samples)


NESTED_ROWS = [
    # (id, scenario, (value read nested, value read after, last text line or extra))
    ("counter: first inc_by deferred", _counter_first_inc_by, (4.0, 5.0, "c_total 5")),
    ("counter: first read by repr", _counter_first_read, (5, 5, "c_total 5")),
    ("gauge: adds pile up, read from a copy", _gauge_many_adds, (384.0, 384.0, "g 384")),
    (
        "histogram: observations pile up, read from a copy",
        _histogram_many_observations,
        ((768, 384.0), (768, 384.0), "h_count 768"),
    ),
    (
        "vec: child created and scraped mid-scrape",
        _scrape_inside_a_scrape,
        (['v_total{k="a"} 2', 'v_total{k="b"} 1'], ['v_total{k="a"} 2', 'v_total{k="b"} 1'], 2),
    ),
]


@pytest.mark.parametrize(
    "scenario, expected", [r[1:] for r in NESTED_ROWS], ids=[r[0] for r in NESTED_ROWS]
)
def test_calls_nested_in_a_held_stripe_neither_wait_nor_lose(scenario, expected):
    assert scenario() == expected
    assert counter_cell.DEFERRED == []
    assert cells._HELD.locks == []


def test_nested_reads_change_nothing_and_folds_resume_after():
    g = dm.GaugeVec("g", "g", ["k"]).with_label_values("a")
    with _Nested():
        for _ in range(cells.FOLD_AT + 10):
            g.add(1.0)
        assert g.get() == cells.FOLD_AT + 10
        assert len(g._value) == cells.FOLD_AT + 11  # nothing folded while the stripe is ours
    assert g.get() == cells.FOLD_AT + 10
    assert g._value == [cells.FOLD_AT + 10]  # the next read folded


CROSS_THREAD = """
import json, signal, threading
import dyn_metrics as dm
from dyn_metrics.metrics.cells import STRIPES, stripe

reg = dm.Registry()
counters = [reg.register(dm.Counter(f"c{i}_total", "h")) for i in range(300)]
for c in counters:
    c.inc_by(0.5)  # pending amounts: every family read takes all stripes


def place(c):
    return STRIPES.index(stripe(c._cell if hasattr(c, "_cell") else c))


high = max(counters, key=place)  # the main thread holds this one's stripe...
low = min(counters, key=place)  # ...when the handler reads this one's
busy = [False]


def handler(*_):
    if not busy[0]:
        busy[0] = True
        try:
            low.get()
        finally:
            busy[0] = False


stop = threading.Event()


def scraper():
    while not stop.is_set():
        reg.prometheus_expfmt()


signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
thread = threading.Thread(target=scraper, daemon=True)
thread.start()
for _ in range(100_000):
    high.inc_by(1.0)
    high.get()
signal.setitimer(signal.ITIMER_REAL, 0)
stop.set()
thread.join()
print(json.dumps({"main": high.get(), "low": low.get()}))
"""


def test_a_handler_read_never_waits_for_a_scrape_of_another_thread():
    # Main holds stripe X and its handler reads stripe Y while a scraper thread
    # holds Y and waits for X: before, a deadlock; a nested call now only tries.
    r = _run(CROSS_THREAD)
    assert r == {"main": 100_000.5, "low": 0.5}
