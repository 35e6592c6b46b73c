"""The process file: layout, growth, stale files, bad directories, forks, real processes.

The process scenarios run real child processes (``subprocess``) writing their
own files; the parent reads them with ``layout.read_file``, as a collector does.
"""

import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import ConfigError
from dyn_metrics.multiprocess import collector, layout, mode, writer
from dyn_metrics.multiprocess.counter_values import FileCounterCell

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _key(sample, labels=(), help="h"):
    return layout.encode_key(layout.Key(sample, "counter", help, "", sample, labels))


def _entries(path):
    return [(k, v) for k, v, _ in layout.read_file(str(path)) if k.type != layout.PAD]


def test_a_new_file_is_a_header_only(tmp_path):
    f = writer.ProcessFile(str(tmp_path), pid=12345)
    assert (
        f.path == str(tmp_path / layout.process_file_name(12345)) and f.used == layout.HEADER_SIZE
    )
    assert layout.read_file(f.path) == []
    assert os.path.getsize(f.path) == writer.SEGMENT_SIZE


@pytest.mark.parametrize("size", range(writer.MIN_PAD, writer.MIN_PAD + 80, 8))
def test_pad_entries_have_the_exact_size(size):
    data = writer.pad_entry(size)
    assert len(data) == size
    ((key, value, _),) = layout.parse(layout.header(16 + size) + data)
    assert (key.type, value) == (layout.PAD, 0.0)


def test_growth_maps_segments_and_every_entry_reads_back(tmp_path):
    f = writer.ProcessFile(str(tmp_path), pid=1, segment_size=4096)
    places = []
    for i in range(600):
        labels = (("series", str(i) * (1 + i % 7)),)
        view, (index,) = f.allocate([(_key("c_total", labels), 0.0, 0.0)])
        view[index] = float(i)
        places.append((view, index))
    # One entry longer than a whole segment gets a segment of its own size.
    view, (index,) = f.allocate([(_key("big_total", help="x" * 9000), 0.0, 0.0)])
    view[index] = -1.0
    assert len(f._segments) > 5
    got = _entries(f.path)
    assert [v for _, v in got] == [float(i) for i in range(600)] + [-1.0]
    assert os.path.getsize(f.path) == sum(len(m) for _, m, _ in f._segments)
    for offset, mapped, _ in f._segments:
        assert offset % 4096 == 0 and len(mapped) % 4096 == 0


def test_a_key_allocated_again_gets_its_entry_back(tmp_path):
    f = writer.ProcessFile(str(tmp_path), pid=1)
    group = [(_key("a_total"), 5.0, 0.0), (_key("b_total"), 6.0, 0.0)]
    view, first = f.allocate(group)
    view[first[0]] = 7.0
    again = f.allocate(group)
    assert again is not None and again[1] == first
    assert _entries(f.path) == [
        (layout.decode_key(group[0][0]), 7.0),
        (layout.decode_key(group[1][0]), 6.0),
    ]


def test_a_stale_file_of_the_same_pid_is_retired_not_overwritten(tmp_path):
    old = writer.ProcessFile(str(tmp_path), pid=77)
    view, (i,) = old.allocate([(_key("old_total"), 3.0, 0.0)])
    old.close()
    writer.ProcessFile(str(tmp_path), pid=77)
    names = _process_files(tmp_path)
    retired = [n for n in names if layout.parse_file_name(n) == ("retired", 77)]
    assert len(names) == 2 and len(retired) == 1 and layout.process_file_name(77) in names
    assert [v for _, v in _entries(tmp_path / retired[0])] == [3.0]
    assert _entries(tmp_path / layout.process_file_name(77)) == []


def test_an_allocation_that_finds_the_file_busy_defers_the_cell(tmp_path):
    f = writer.ProcessFile(str(tmp_path), pid=1)
    assert f._lock.acquire(False)  # as if this thread were interrupted mid-allocation
    cell = FileCounterCell(f, [_key("late_total")])
    cell.inc()
    cell.inc_by(2)
    assert cell.get() == 3 and _entries(f.path) == []
    f._lock.release()
    f.attach_deferred()  # what the interrupted allocation does on its way out
    assert [v for _, v in _entries(f.path)] == [3.0]
    cell.inc()
    assert cell.get() == 4 and [v for _, v in _entries(f.path)] == [4.0]


# -- enable() and bad directories ------------------------------------------------------------


def test_enable_refuses_what_is_not_a_writable_directory(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    rows = [
        # (path, message)
        (str(tmp_path / "missing"), "does not exist"),
        (str(a_file), "is not a directory"),
        ("", "non-empty path"),
        (42, "must be a path"),
        # Not writable for root too: nothing can be created in /proc.
        ("/proc", "is not writable"),
    ]
    for path, message in rows:
        with pytest.raises(dm.ConfigError, match=message) as caught:
            mode.enable(path)
        assert repr(path) in str(caught.value) or message == "must be a path"
        assert mode.enabled_path() is None


def test_enable_twice(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    mode.enable(str(tmp_path))
    try:
        mode.enable(str(tmp_path) + "/.")  # the same directory: nothing happens
        with pytest.raises(dm.ConfigError, match="already enabled"):
            mode.enable(str(other))
        assert mode.enabled_path() == os.path.realpath(str(tmp_path))
    finally:
        mode.disable()
    assert mode.enabled_path() is None


def test_enable_from_environment(tmp_path):
    assert mode.enable_from_environment({}) is None
    assert mode.enable_from_environment({"DYN_METRICS_MULTIPROC_DIR": ""}) is None
    with pytest.raises(dm.ConfigError, match="does not exist"):
        mode.enable_from_environment({"DYN_METRICS_MULTIPROC_DIR": str(tmp_path / "nope")})
    try:
        got = mode.enable_from_environment({"DYN_METRICS_MULTIPROC_DIR": str(tmp_path)})
        assert got == os.path.realpath(str(tmp_path))
    finally:
        mode.disable()


# -- real processes ---------------------------------------------------------------------------


def _run(script, *args, timeout=60, **kwargs):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def _process_files(directory):
    """The names of the process files in ``directory`` (not the lock, not others)."""
    return sorted(n for n in os.listdir(directory) if layout.parse_file_name(n) is not None)


def _totals(directory):
    """{sample: summed value} over every process file in ``directory``."""
    totals = {}
    for name in os.listdir(directory):
        if layout.parse_file_name(name) is not None:
            for key, value in _entries(os.path.join(directory, name)):
                totals[key.sample] = totals.get(key.sample, 0.0) + value
    return totals


COUNTING = """
import sys, threading
import dyn_metrics as dm
from dyn_metrics.multiprocess import mode
mode.enable(sys.argv[1])
threads, each = int(sys.argv[2]), int(sys.argv[3])
c = dm.Counter("c_total", "c")
v = dm.CounterVec("v_total", "v", ["k"])
h = dm.Histogram("h", "h", buckets=[0.5])
g = dm.Gauge("g", "g", multiprocess_mode="sum")
def work(t):
    child = v.labels(str(t % 2))
    for _ in range(each):
        c.inc()
        child.inc(2)
        h.observe(0.25)
        g.inc()
ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
"""


def test_processes_and_threads_add_up_exactly(tmp_path):
    processes, threads, each = 4, 3, 4000
    running = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(COUNTING),
                str(tmp_path),
                str(threads),
                str(each),
            ],
            env={**os.environ, "PYTHONPATH": ROOT},
        )
        for _ in range(processes)
    ]
    assert [p.wait(timeout=60) for p in running] == [0] * processes
    n = processes * threads * each
    totals = _totals(tmp_path)
    assert len(_process_files(tmp_path)) == processes
    assert (totals["c_total"], totals["v_total"], totals["g"]) == (n, 2 * n, n)
    assert (totals["h_bucket"], totals["h_sum"]) == (n, 0.25 * n)


HAMMER = """
import sys
import dyn_metrics as dm
from dyn_metrics.multiprocess import mode
mode.enable(sys.argv[1])
c = dm.Counter("c_total", "c")
v = dm.CounterVec("v_total", "v", ["k"])
h = dm.HistogramVec("h", "h", ["k"], buckets=[1, 2, 3])
n = 0
while True:
    n += 1
    c.inc()
    v.labels(str(n % 3000)).inc()  # new series: the file grows by segments meanwhile
    h.labels(str(n % 50)).observe(n % 4)
    if n % 500 == 0:
        sys.stdout.write(".")
        sys.stdout.flush()
"""


def test_a_process_killed_at_random_moments_leaves_consistent_files(tmp_path):
    rng = random.Random(7)
    for run in range(3):
        directory = tmp_path / str(run)
        directory.mkdir()
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HAMMER), str(directory)],
            env={**os.environ, "PYTHONPATH": ROOT},
            stdout=subprocess.PIPE,
        )
        path = directory / layout.process_file_name(child.pid)
        last = 0.0
        dots = 0
        for _ in range(rng.randint(2, 6)):
            dots += len(child.stdout.read(rng.randint(1, 4)))
            totals = _totals(directory)  # read while the child writes
            assert totals["c_total"] >= max(last, dots * 500)
            last = totals["c_total"]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        entries = layout.read_file(str(path))  # parses whole, whatever the moment
        totals = _totals(directory)
        c, v = totals["c_total"], totals["v_total"]
        assert c >= last and c - 1 <= v <= c  # at most the one update in flight is missing
        assert c - 1 <= totals["h_bucket"] <= v
        assert len(entries) > 3000
        assert os.path.getsize(path) > writer.SEGMENT_SIZE  # grew by several segments


FORKING = """
import json, os, sys
import dyn_metrics as dm
from dyn_metrics.multiprocess import mode
mode.enable(sys.argv[1])
c = dm.Counter("c_total", "c")
g = dm.Gauge("g", "g")
c.inc(5)
g.set(9)
pid = os.fork()
if pid == 0:
    c.inc(3)
    dm.CounterVec("late_total", "late", ["k"]).labels("x").inc()
    os._exit(0 if c.get() == 3 and g.get() == 0 else 1)
_, status = os.waitpid(pid, 0)
c.inc()
print(json.dumps({"child": pid, "status": status, "parent": c.get()}))
"""


def test_a_forked_child_writes_its_own_file(tmp_path):
    done = _run(FORKING, tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == 0 and out["parent"] == 6
    child = {k.sample: v for k, v in _entries(tmp_path / layout.process_file_name(out["child"]))}
    assert child == {"c_total": 3.0, "g": 0.0, "late_total": 1.0}
    parent = [n for n in _process_files(tmp_path) if n != layout.process_file_name(out["child"])]
    assert {k.sample: v for k, v in _entries(tmp_path / parent[0])} == {"c_total": 6.0, "g": 9.0}


REENTRANT = """
import gc, json, signal, sys
import dyn_metrics as dm
from dyn_metrics.multiprocess import layout, mode
mode.enable(sys.argv[1])
c = dm.Counter("c_total", "c")
g = dm.Gauge("g", "g")
h = dm.Histogram("h", "h", buckets=[0.5])
v = dm.CounterVec("v_total", "v", ["k"])
calls = 0
def touch(*_):
    global calls
    calls += 1
    c.inc()
    g.inc()
    h.observe(0.25)
    v.labels(str(calls % 400)).inc()  # new entries while the main loop allocates too
    c.get()
gc.callbacks.append(lambda phase, info: touch() if phase == "start" else None)
signal.signal(signal.SIGALRM, touch)
signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
main = 0
while calls < 3000:
    main += 1
    c.inc()
    g.inc()
    h.observe(0.25)
    v.labels("m" + str(main % 700)).inc()
    [[] for _ in range(5)]  # garbage: GC passes start mid-update
signal.setitimer(signal.ITIMER_REAL, 0)
gc.callbacks.clear()
path = mode._backend.file.path
sums = {}
for k, value, _ in layout.read_file(path):
    if k.type != layout.PAD:
        sums[k.sample] = sums.get(k.sample, 0) + value
print(json.dumps({"calls": calls, "main": main, "sums": sums, "c": c.get()}))
"""


def test_counter_updates_from_threads_while_the_cell_moves_into_the_file_lose_nothing(
    tmp_path, monkeypatch
):
    # Counter updates take no lock: the move from the private buffer must not lose one.
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)  # restored after
    sys.setswitchinterval(1e-6)
    f = writer.ProcessFile(str(tmp_path), pid=5)
    threads, each = 4, 20000
    with f._lock:  # the file is busy: the cell starts in a private buffer, queued
        cell = FileCounterCell(f, [_key("moving_total")])
    assert not cell._attached and f._deferred == [cell]
    started = threading.Barrier(threads + 1)

    def work():
        started.wait()
        for i in range(each):
            if i % 2:
                cell.inc()
            else:
                cell.inc_by(0.5)

    running = [threading.Thread(target=work) for _ in range(threads)]
    for t in running:
        t.start()
    try:
        started.wait()
        while cell.get() < 1000:  # the threads are updating it
            pass
        f.attach_deferred()  # moves the cell into the file while the threads update it
    finally:
        for t in running:
            t.join()
    expected = threads * each * 0.75
    assert cell._attached and not f._deferred
    assert cell.get() == expected
    assert {k.sample: v for k, v in _entries(f.path)}["moving_total"] == expected


def test_signal_handlers_and_gc_callbacks_mid_update_lose_nothing(tmp_path):
    done = _run(REENTRANT, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    n = out["calls"] + out["main"]
    assert out["calls"] >= 3000
    assert out["sums"] == {"c_total": n, "g": n, "h_bucket": n, "h_sum": 0.25 * n, "v_total": n}
    assert out["c"] == n


# -- regressions -------------------------------------------------------------------------------


def _no_space(*_):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_no_space_at_enable_is_a_config_error_naming_the_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", _no_space)
    with pytest.raises(ConfigError, match="has no space") as caught:
        mode.enable(str(tmp_path))
    assert repr(str(tmp_path)) in str(caught.value)
    assert mode.enabled_path() is None and _process_files(tmp_path) == []


def test_no_space_later_keeps_every_update_in_private_memory(tmp_path, monkeypatch, caplog):
    f = writer.ProcessFile(str(tmp_path), pid=5, segment_size=4096)
    first = FileCounterCell(f, [_key("first_total")])
    monkeypatch.setattr(os, "posix_fallocate", _no_space)  # the filesystem is full now
    cells = [FileCounterCell(f, [_key("c_total", (("i", str(i)),))]) for i in range(200)]
    for i, cell in enumerate(cells):
        cell.inc_by(i)
    first.inc()
    assert f.private and [c.get() for c in cells] == list(range(200))
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f.path in errors[0].getMessage()
    got = {k.sample + str(k.labels): v for k, v in _entries(f.path)}  # still a valid file
    assert got["first_total()"] == 1.0 and len(got) < 201


FORK_EXEC = """
import json, os, sys
import dyn_metrics as dm
from dyn_metrics.multiprocess import layout, mode
mode.enable(sys.argv[1])
v = dm.CounterVec("v_total", "v", ["k"])
for i in range(1000):
    v.labels(str(i)).inc()
idle = os.fork()
if idle == 0:
    os._exit(0)  # as fork + exec: no metric touched
os.waitpid(idle, 0)
busy = os.fork()
if busy == 0:
    v.labels("7").inc(5)
    os._exit(0)
os.waitpid(busy, 0)
print(json.dumps({"idle": idle, "busy": busy}))
"""


def test_a_forked_child_creates_its_file_only_when_it_uses_a_metric(tmp_path):
    done = _run(FORK_EXEC, tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    names = _process_files(tmp_path)
    assert layout.process_file_name(out["idle"]) not in names and len(names) == 2
    busy = _entries(tmp_path / layout.process_file_name(out["busy"]))
    assert [(k.labels, v) for k, v in busy] == [((("k", "7"),), 5.0)]


def test_retiring_a_stale_file_and_creating_the_new_one_hold_the_directory_lock(
    tmp_path, monkeypatch
):
    stale = writer.ProcessFile(str(tmp_path), pid=88)
    stale.close()
    seen = []

    @contextlib.contextmanager
    def recording(directory, exclusive):
        seen.append(("enter", directory, exclusive, _process_files(directory)))
        yield True
        seen.append(("exit", directory, exclusive, _process_files(directory)))

    monkeypatch.setattr(collector, "locked", recording)
    writer.ProcessFile(str(tmp_path), pid=88)
    (enter, exit_) = seen
    assert enter == ("enter", str(tmp_path), True, [layout.process_file_name(88)])
    assert exit_[:3] == ("exit", str(tmp_path), True) and len(exit_[3]) == 2


DISABLED_FORK = """
import json, os, sys
import dyn_metrics as dm
from dyn_metrics.multiprocess import layout, mode
mode.enable(sys.argv[1])
c = dm.Counter("c_total", "c")
c.inc(5)
mode.disable()
pid = os.fork()
if pid == 0:
    c.inc(1000)
    os._exit(0)
os.waitpid(pid, 0)
mode.enable(sys.argv[1])  # again: the same file goes on
c.inc(100)
print(json.dumps({"child": pid, "parent": c.get(), "path": mode._backend.file.path}))
"""


def test_after_disable_a_fork_still_moves_cells_and_enable_keeps_the_own_file(tmp_path):
    done = _run(DISABLED_FORK, tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["parent"] == 105
    names = _process_files(tmp_path)
    assert all(layout.parse_file_name(n)[0] != "retired" for n in names) and len(names) == 2
    assert _entries(out["path"])[0][1] == 105.0
    assert _entries(tmp_path / layout.process_file_name(out["child"]))[0][1] == 1000.0
