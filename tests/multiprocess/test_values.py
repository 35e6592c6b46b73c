"""Multiprocess cells: every metric type writes its file and still reads back in process."""

import math
import os

import pytest

import dyn_metrics as dm
from dyn_metrics.multiprocess import layout, mode


@pytest.fixture
def mp(tmp_path):
    """Multiprocess mode on in ``tmp_path`` for the test; yields a reader of this file."""
    mode.enable(str(tmp_path))
    path = os.path.join(str(tmp_path), layout.process_file_name(os.getpid()))

    def entries():
        return {
            (k.sample, k.labels): (v, t, k)
            for k, v, t in layout.read_file(path)
            if k.type != "_pad"
        }

    try:
        yield entries
    finally:
        mode.disable()


def test_counter_writes_its_value_and_reads_it_back(mp):
    c = dm.Counter("jobs_total", "Jobs", const_labels={"q": "a"}, unit="")
    c.inc()
    c.inc(2.5)
    c.inc_by(1)
    value, _, key = mp()[("jobs_total", (("q", "a"),))]
    assert value == 4.5 and c.get() == 4.5
    assert key == layout.Key("jobs_total", "counter", "Jobs", "", "jobs_total", (("q", "a"),), "")
    with pytest.raises(dm.InvalidValueError):
        c.inc(-1)
    with pytest.raises(dm.InvalidValueError):
        c.inc_by(math.nan)
    assert mp()[("jobs_total", (("q", "a"),))][0] == 4.5


def test_int_counter_vec_and_exemplars_stay_in_process(mp):
    v = dm.IntCounterVec("req_total", "Requests", ["code"])
    v.labels("200").inc(3, exemplar={"trace_id": "abc"})
    v.labels(code="500").inc()
    with pytest.raises(dm.InvalidValueError):
        v.labels("200").inc_by(1.5)
    assert v.labels("200").get() == 3 and isinstance(v.labels("200").get(), int)
    got = mp()
    assert got[("req_total", (("code", "200"),))][0] == 3.0
    assert got[("req_total", (("code", "500"),))][0] == 1.0
    reg = dm.Registry()
    reg.register(v)
    assert '# {trace_id="abc"} 3' in reg.openmetrics_expfmt()


def test_count_exceptions_counts_in_the_file(mp):
    c = dm.Counter("errors_total", "Errors")
    with pytest.raises(KeyError):
        with c.count_exceptions(KeyError):
            raise KeyError("x")
    assert mp()[("errors_total", ())][0] == 1.0


GAUGE_MODES = [
    # (mode, whether a timestamp is written)
    ("all", False),
    ("liveall", False),
    ("sum", False),
    ("livesum", False),
    ("max", False),
    ("livemax", False),
    ("min", False),
    ("livemin", False),
    ("mostrecent", True),
    ("livemostrecent", True),
]


@pytest.mark.parametrize("gauge_mode, stamped", GAUGE_MODES)
def test_gauge_modes_are_written_in_the_key(mp, gauge_mode, stamped):
    g = dm.GaugeVec("g_" + gauge_mode, "G", ["k"], multiprocess_mode=gauge_mode)
    g.labels("a").set(4)
    g.labels("a").inc(2)
    g.labels("a").dec(0.5)
    value, stamp, key = mp()[("g_" + gauge_mode, (("k", "a"),))]
    assert (value, key.mode, key.type) == (5.5, gauge_mode, "gauge")
    assert (stamp > 0) is stamped
    assert g.labels("a").get() == 5.5


def test_gauge_helpers_and_functions(mp):
    g = dm.IntGauge("inflight", "In flight", multiprocess_mode="livesum")
    with g.track_inprogress():
        assert mp()[("inflight", ())][0] == 1.0
    g.set(7)
    g.set_function(lambda: 42)
    g.inc()  # nothing while a function gives the value
    assert g.get() == 42
    assert mp()[("inflight", ())][0] == 7.0  # functions are not written to the file
    g.set_function(None)
    assert g.get() == 7 and isinstance(g.get(), int)
    g.set_to_current_time()
    assert abs(mp()[("inflight", ())][0] - int(__import__("time").time())) <= 2
    with pytest.raises(dm.InvalidValueError):
        g.set(1.5)
    with pytest.raises(dm.InvalidValueError):
        g.set_function(3)


def test_gauge_mode_is_checked_with_or_without_multiprocess_mode(mp):
    for cls in (dm.Gauge, dm.IntGauge):
        with pytest.raises(dm.InvalidValueError, match="'median'"):
            cls("x", "x", multiprocess_mode="median")
    for cls in (dm.GaugeVec, dm.IntGaugeVec):
        with pytest.raises(dm.InvalidValueError, match="multiprocess_mode"):
            cls("x", "x", ["k"], multiprocess_mode=None)
    mode.disable()
    g = dm.Gauge("off", "Off", multiprocess_mode="max")  # accepted, unused
    g.set(1)
    assert g.get() == 1


def test_histogram_buckets_are_not_cumulative_in_the_file(mp):
    h = dm.HistogramVec("lat", "Latency", ["r"], buckets=[0.1, 1.0])
    child = h.labels("/")
    for v in (0.05, 0.1, 0.5, 3.0, math.nan):
        child.observe(v)
    got = mp()
    assert [got[("lat_bucket", (("r", "/"), ("le", le)))][0] for le in ("0.1", "1", "+Inf")] == [
        2.0,
        1.0,
        2.0,
    ]
    assert math.isnan(got[("lat_sum", (("r", "/"),))][0])
    assert ("lat_count", (("r", "/"),)) not in got  # the count is the buckets' total
    assert child.get_sample_count() == 5
    with child.time():
        pass
    assert child.get_sample_count() == 6
    assert 'lat_bucket{r="/",le="1"} 4' in _text(h)  # the timed block is fast: in 0.1


def test_native_histogram_is_refused_before_anything_is_registered(mp):
    reg = dm.Registry()
    with pytest.raises(dm.ConfigError, match="'nh'"):
        reg.register(dm.Histogram("nh", "Native", native=True))
    with pytest.raises(dm.ConfigError):
        dm.HistogramVec("nhv", "Native", ["k"], native=True)
    assert reg.prometheus_expfmt() == ""


def test_summary_sum_and_count_in_the_file_quantiles_in_process(mp):
    s = dm.Summary("rpc", "RPC", objectives={0.5: 0.05})
    for v in (1.0, 2.0, 3.0):
        s.observe(v)
    got = mp()
    assert (got[("rpc_sum", ())][0], got[("rpc_count", ())][0]) == (6.0, 3.0)
    assert 'rpc{quantile="0.5"} 2' in _text(s)
    plain = dm.SummaryVec("plain", "Plain", ["k"])
    plain.labels("a").observe(4)
    assert mp()[("plain_count", (("k", "a"),))][0] == 1.0
    assert plain.labels("a").get_sample_sum() == 4.0


def test_info_and_stateset_are_liveall_gauges(mp):
    info = dm.Info("build", "Build")
    info.info({"version": "1"})
    info.info({"version": "2"})
    st = dm.StateSet("state", "State", states=["starting", "ready"])
    st.state("ready")
    st.set("starting", True)
    got = mp()
    assert got[("build_info", (("version", "2"),))][0] == 1.0
    assert got[("build_info", (("version", "1"),))][0] == 0.0
    assert {k.mode for _, _, k in got.values()} == {"liveall"}
    assert got[("state", (("state", "ready"),))][0] == 1.0
    assert got[("state", (("state", "starting"),))][0] == 1.0
    assert st.get() == ("starting", "ready") and info.get() == {"version": "2"}


def test_same_operations_give_the_same_scrape_in_process_and_in_multiprocess_mode(mp):
    def build():
        reg = dm.Registry()
        c = reg.register(dm.CounterVec("c_total", "C", ["k"]))
        g = reg.register(dm.Gauge("g", "G"))
        h = reg.register(dm.Histogram("h", "H", buckets=[1, 2]))
        s = reg.register(dm.Summary("s", "S"))
        i = reg.register(dm.InfoVec("i", "I", ["k"]))
        e = reg.register(dm.Enum("e", "E", states=["a", "b"]))
        c.labels("x").inc(3)
        c.labels("y").inc()
        g.set(2.5)
        g.dec()
        for v in (0.5, 1.5, 9):
            h.observe(v)
        s.observe(2)
        i.labels("z").info({"v": "1"})
        e.state("b")
        return reg.prometheus_expfmt()

    in_file = build()
    mode.disable()
    assert in_file == build()
    assert 'c_total{k="x"} 3' in in_file


def test_metrics_created_before_enable_stay_in_process(tmp_path):
    before = dm.Counter("before_total", "Before")
    mode.enable(str(tmp_path))
    try:
        after = dm.Counter("after_total", "After")
        before.inc()
        after.inc()
        path = tmp_path / layout.process_file_name(os.getpid())
        assert [k.sample for k, _, _ in layout.read_file(str(path))] == ["after_total"]
        assert before.get() == 1
    finally:
        mode.disable()


def test_a_child_made_again_gets_its_entry_back(mp):
    v = dm.CounterVec("again_total", "Again", ["k"])
    v.labels("a").inc(2)
    v.remove_label_values("a")
    v.labels("a").inc()
    entries = [k for k, _, _ in layout.read_file(_path_of(mp))]
    assert [k.sample for k in entries] == ["again_total"]  # one key, once
    assert mp()[("again_total", (("k", "a"),))][0] == 3.0


def _path_of(mp):
    return os.path.join(mode.enabled_path(), layout.process_file_name(os.getpid()))


def _text(metric):
    reg = dm.Registry()
    reg.register(metric)
    return reg.prometheus_expfmt()


# -- regressions -------------------------------------------------------------------------------


def test_a_queued_cell_whose_lock_is_busy_still_reaches_the_file(mp):
    # Replayed interleaving: another thread allocates (file lock held) while this
    # child is created (queued with a private buffer); the allocation ends while
    # the child's own lock is held mid-update, and nothing else is ever created.
    vec = dm.CounterVec("queued_total", "Queued", ["k"])
    file = mode._backend.file
    assert file._lock.acquire(False)
    cell = vec.labels("a")
    assert not cell._attached
    assert cell._lock.acquire(False)
    file._lock.release()
    file.attach_deferred()  # finds the cell busy
    cell._lock.release()
    for _ in range(1000):
        vec.labels("a").inc()
    assert cell._attached and not file._deferred
    assert mp()[("queued_total", (("k", "a"),))][0] == 1000.0


def test_a_queued_cell_retry_that_finds_the_file_busy_is_not_lost(mp):
    # The cell's lock holder retries while the file is still held: the file's
    # holder, on its way out, sees the wake-up and attaches the cell.
    vec = dm.CounterVec("requeued_total", "Queued", ["k"])
    file = mode._backend.file
    assert file._lock.acquire(False)
    cell = vec.labels("a")
    assert cell._lock.acquire(False)
    cell._pending.append(file)  # the marker an attach leaves when it finds the cell busy
    cell._lock.release()
    cell.inc()  # retries the attach: the file lock is busy
    assert not cell._attached
    file._lock.release()
    file.attach_deferred()
    assert cell._attached and mp()[("requeued_total", (("k", "a"),))][0] == 1.0


def test_info_set_while_the_file_is_busy_reaches_the_file(mp):
    info = dm.Info("build", "Build")
    info.info({"version": "1"})
    file = mode._backend.file
    assert file._lock.acquire(False)  # another thread is allocating
    info.info({"version": "2"})
    file._lock.release()
    file.attach_deferred()  # what that allocation does on its way out
    values = {labels: v for (sample, labels), (v, _, _) in mp().items() if sample == "build_info"}
    assert values == {(): 0.0, (("version", "1"),): 0.0, (("version", "2"),): 1.0}
    assert info.get() == {"version": "2"}


def test_a_cell_that_loses_the_race_to_become_the_child_writes_nothing(mp):
    # Replayed: thread 2 is inside new_cell for child "a" while thread 1 creates
    # the child and sets it; thread 2's cell then loses the setdefault.
    vec = dm.GaugeVec("temp", "Temp", ["k"], multiprocess_mode="max")
    states = dm.StateSetVec("phase", "Phase", ["k"], states=["up", "down"])
    vec.labels("a").set(1)
    states.labels("a").state("down")
    for family in (vec, states):
        loser = mode._backend.new_cell(family, ("a",))
        assert family._children.setdefault(("a",), loser) is not loser
    got = mp()
    assert got[("temp", (("k", "a"),))][0] == 1.0
    assert got[("phase", (("k", "a"), ("phase", "down")))][0] == 1.0
    assert got[("phase", (("k", "a"), ("phase", "up")))][0] == 0.0


def test_a_forked_child_summary_starts_its_quantiles_over(mp):
    s = dm.Summary("lat", "Latency", objectives={0.5: 0.05})
    for _ in range(100):
        s.observe(1000.0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            s.observe(1.0)
            os.write(w, _text(s).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as out:
        text = out.read()
    lines = text.splitlines()
    assert 'lat{quantile="0.5"} 1' in lines and "lat_count 1" in lines
