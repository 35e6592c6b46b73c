"""Concurrency: exact totals under contention, consistent histogram scrapes,
one child per label set. Threads start together on a barrier and are joined
with timeouts; a thread that raised fails the test."""

import re
import subprocess
import sys
import threading

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.metrics import counter
from tests.metrics.support import new_cell

THREADS = 8
OPS = 100_000  # per thread
TIMEOUT = 60.0

COUNTER_CELLS = [
    counter.CounterCell,
    counter.CounterVecCell,
    counter.LockedCounterCell,
    counter.IntCounterCell,
    counter.IntCounterVecCell,
    counter.LockedIntCounterCell,
]
FLOAT_COUNTER_CELLS = [counter.CounterCell, counter.CounterVecCell, counter.LockedCounterCell]
INT_COUNTER_CELLS = [
    counter.IntCounterCell,
    counter.IntCounterVecCell,
    counter.LockedIntCounterCell,
]


def _cell_id(cls):
    return cls.__name__


def run_concurrently(fn, threads=THREADS, timeout=TIMEOUT):
    """Run ``fn(index)`` on ``threads`` threads started together; return their results."""
    barrier = threading.Barrier(threads)
    results = [None] * threads
    errors = []

    def target(i):
        try:
            barrier.wait(timeout=timeout)
            results[i] = fn(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=timeout)
    assert not any(w.is_alive() for w in workers), "a worker thread did not finish in time"
    if errors:
        raise errors[0]
    return results


# -- exact totals -----------------------------------------------------------------------


def test_counter_exact_total_under_contention():
    c = dm.Counter("c_total", "h")

    def work(_):
        inc = c.inc
        for _ in range(OPS):
            inc()

    run_concurrently(work)
    assert c.get() == THREADS * OPS == 800_000


@pytest.mark.parametrize("cls", COUNTER_CELLS, ids=_cell_id)
def test_counter_cell_inc_exact_total(cls):
    cell = new_cell(cls)

    def work(_):
        inc = cell.inc
        for _ in range(OPS):
            inc()

    run_concurrently(work)
    assert cell.get() == THREADS * OPS


@pytest.mark.parametrize("cls", FLOAT_COUNTER_CELLS, ids=_cell_id)
def test_counter_cell_inc_by_half_exact_total(cls):
    # 0.5 is a binary fraction and every partial sum is exact, so the total is too.
    cell = new_cell(cls)
    ops = OPS

    def work(_):
        inc_by = cell.inc_by
        for _ in range(ops):
            inc_by(0.5)

    run_concurrently(work)
    assert cell.get() == THREADS * ops * 0.5


@pytest.mark.parametrize("cls", FLOAT_COUNTER_CELLS, ids=_cell_id)
def test_counter_cell_mixed_inc_and_inc_by_exact_total(cls):
    cell = new_cell(cls)
    ops = 20_000

    def work(i):
        for _ in range(ops):
            if i % 2:
                cell.inc()
            else:
                cell.inc_by(0.25)

    run_concurrently(work)
    assert cell.get() == (THREADS // 2) * ops * (1 + 0.25)


@pytest.mark.parametrize("cls", INT_COUNTER_CELLS, ids=_cell_id)
def test_int_counter_cell_inc_by_exact_total(cls):
    cell = new_cell(cls)
    ops = OPS // 2

    def work(_):
        for _ in range(ops):
            cell.inc_by(3)
            cell.inc()

    run_concurrently(work)
    assert cell.get() == THREADS * ops * 4


def test_intcounter_big_increments_exact_total():
    c = dm.IntCounter("c_total", "h")
    ops = 20_000

    def work(_):
        for _ in range(ops):
            c.inc_by(2**64)

    run_concurrently(work)
    assert c.get() == THREADS * ops * 2**64


def test_vec_child_exact_total():
    v = dm.CounterVec("v_total", "h", ["method", "status"])

    def work(_):
        for _ in range(OPS):
            v.with_label_values("GET", "200").inc()

    run_concurrently(work)
    assert v.with_label_values("GET", "200").get() == THREADS * OPS
    assert len(v.collect()[0].samples) == 1


def test_gauge_inc_dec_balance_and_add_exact():
    g = dm.Gauge("g", "h")
    ig = dm.IntGauge("ig", "h")
    ops = 20_000

    def work(i):
        for _ in range(ops):
            if i % 2:
                g.inc()
                ig.dec()
            else:
                g.dec()
                ig.inc()
            g.add(0.5)

    run_concurrently(work)
    assert g.get() == THREADS * ops * 0.5
    assert ig.get() == 0


def test_histogram_exact_totals():
    h = dm.Histogram("h", "h", buckets=[1, 2, 3])
    observations = (0.5, 1.5, 2.5, 3.5)  # one per bucket; sums stay exact

    def work(i):
        observe = h.observe
        for k in range(OPS):
            observe(observations[(i + k) % 4])

    run_concurrently(work)
    n = THREADS * OPS
    family = h.collect()[0]
    buckets = [s.value for s in family.samples if s.name == "h_bucket"]
    assert buckets == [n // 4, n // 2, 3 * n // 4, n]
    assert h.get_sample_count() == n
    assert h.get_sample_sum() == sum(observations) * n / 4


# -- consistent scrapes -------------------------------------------------------------------

_SAMPLE = re.compile(r"^(\w+?)(_bucket|_sum|_count)(\{.*\})? (\S+)$")


def check_histograms(text):
    """Every histogram series: buckets non-decreasing and ``_count`` == ``+Inf`` bucket."""
    series = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        name, suffix, labels, value = m.groups()
        labels = labels or ""
        le = re.search(r',?le="([^"]*)"', labels)
        key = (name, re.sub(r',?le="[^"]*"', "", labels).replace("{}", ""))
        entry = series.setdefault(key, {"buckets": []})
        if suffix == "_bucket":
            entry["buckets"].append((le.group(1), int(value)))
        else:
            entry[suffix] = value
    for key, entry in series.items():
        counts = [c for _, c in entry["buckets"]]
        assert counts == sorted(counts), (key, counts)
        assert entry["buckets"][-1][0] == "+Inf"
        assert int(entry["_count"]) == counts[-1], (key, entry)
    return len(series)


def test_scrapes_during_observe_are_consistent():
    reg = dm.Registry()
    h = reg.register(dm.Histogram("lat_seconds", "h", buckets=[0.1, 0.5, 1, 5]))
    hv = reg.register(dm.HistogramVec("size_bytes", "h", ["route"], buckets=[10, 100]))
    stop = threading.Event()
    observers = 4
    scrapes = 200
    children = [hv.with_label_values(f"/r{i}") for i in range(2)]
    # Scraping starts once every observer has recorded something.
    warmed_up = threading.Barrier(observers + 1)

    def observer(i):
        child = children[i % 2]
        h.observe(0.05)
        child.observe(1)
        k = 1  # observations of h so far
        warmed_up.wait(timeout=TIMEOUT)
        while not stop.is_set():
            h.observe((0.05, 0.3, 0.7, 2.0, 9.0)[k % 5])
            child.observe(k % 150)
            k += 1
        return k

    def scraper():
        seen = 0
        last = 0
        try:
            warmed_up.wait(timeout=TIMEOUT)
            for _ in range(scrapes):
                text = reg.prometheus_expfmt()
                seen = max(seen, check_histograms(text))
                count = int(re.search(r"^lat_seconds_count (\d+)$", text, re.M).group(1))
                assert count >= last  # never goes backwards
                last = count
        finally:
            stop.set()
        return seen, last

    results = {}

    def target(i):
        if i == observers:
            results["scraper"] = scraper()
            return None
        return observer(i)

    counts = run_concurrently(target, threads=observers + 1)
    seen, last = results["scraper"]
    assert seen == 3  # lat_seconds and both size_bytes children
    assert last > 0  # the scrapes really ran while observations arrived
    total = sum(c for c in counts if c is not None)
    assert h.get_sample_count() == total >= last
    check_histograms(reg.prometheus_expfmt())


# -- concurrent child creation ------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [dm.CounterVec, dm.GaugeVec, dm.HistogramVec], ids=lambda c: c.__name__
)
def test_concurrent_child_creation_one_child_per_label_set(cls):
    v = cls("v", "h", ["a", "b"])
    label_sets = [(str(i), str(i % 7)) for i in range(1000)]

    def work(i):
        # Each thread walks the sets in a different order.
        order = label_sets[i * 125 :] + label_sets[: i * 125]
        return {values_: v.with_label_values(*values_) for values_ in order}

    maps = run_concurrently(work)
    for m in maps[1:]:
        assert all(m[k] is maps[0][k] for k in label_sets)
    assert len({id(child) for child in maps[0].values()}) == 1000
    assert len(v.collect_groups()) == 1000


def test_concurrent_registration_one_winner():
    reg = dm.Registry()
    counters = [dm.Counter("same_total", "h") for _ in range(THREADS)]

    def work(i):
        try:
            reg.register(counters[i])
            return True
        except dm.AlreadyRegisteredError:
            return False

    assert sum(run_concurrently(work)) == 1
    assert reg.prometheus_expfmt().count("same_total 0\n") == 1


def test_concurrent_creates_on_one_node():
    drt = dm.DistributedRuntime(config=SystemConfig())
    m = drt.namespace("ns").component("c").metrics()

    def work(i):
        made = [m.create_counter(f"c{i}_{k}_total", "h") for k in range(50)]
        for c in made:
            c.inc()
        return len(made)

    assert run_concurrently(work) == [50] * THREADS
    text = m.prometheus_expfmt()
    assert text.count("# TYPE ") == THREADS * 50
    assert text.count("} 1\n") == THREADS * 50


FREE_THREADED_SCENARIO = r"""
import sys
sys._is_gil_enabled = lambda: False  # what a free-threaded interpreter reports
import threading
import dyn_metrics as dm
from dyn_metrics.metrics import cells, counter

assert not cells.GIL_ENABLED
assert dm.Counter._cell_class is counter.LockedCounterCell
assert dm.IntCounterVec._cell_class is counter.LockedIntCounterCell
reg = dm.Registry()
c = reg.register(dm.Counter("c_total", "h"))
v = reg.register(dm.IntCounterVec("v_total", "h", ["a"]))
child = v.with_label_values("x")

def work():
    for _ in range(20000):
        c.inc()
        c.inc_by(0.5)
        child.inc()

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(reg.prometheus_expfmt(), end="")
"""


def test_free_threaded_fallback_is_exact_end_to_end():
    # The counter cells a free-threaded interpreter gets, exercised through
    # the public API in a fresh interpreter that reports no GIL.
    out = subprocess.run(
        [sys.executable, "-c", FREE_THREADED_SCENARIO],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out == (
        "# HELP c_total h\n# TYPE c_total counter\nc_total 240000\n"
        '# HELP v_total h\n# TYPE v_total counter\nv_total{a="x"} 160000\n'
    )
