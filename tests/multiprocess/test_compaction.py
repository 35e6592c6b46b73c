"""Compaction and mark_process_dead: folding retired files, crash safety, thousands of restarts."""

import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from dyn_metrics.multiprocess import collector as collector_module
from dyn_metrics.multiprocess import layout
from dyn_metrics.multiprocess.collector import MultiProcessCollector
from dyn_metrics.multiprocess.compaction import compact, mark_process_dead
from tests.multiprocess.test_collector import (
    MODES,
    K,
    process_entries,
    scrape,
    values_of,
    view,
    write_process,
)


def entries_of(path):
    return {(k.family, k.sample, k.labels, k.mode): (v, t) for k, v, t in layout.read_file(path)}


def test_compaction_keeps_the_totals_and_leaves_one_file(tmp_path):
    write_process(tmp_path, 1, process_entries(0, stamp=100.0))
    for i, pid in enumerate((2, 3, 4), start=1):
        write_process(tmp_path, pid, process_entries(i, stamp=100.0), retired_stamp=10 + i)
    before = scrape(tmp_path)
    compact(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [layout.LOCK, layout.AGGREGATE, layout.process_file_name(1)]
    )
    assert scrape(tmp_path) == before
    stored = entries_of(tmp_path / layout.AGGREGATE)
    e = (("engine", "0"), ("zone", "z"))
    assert stored[("req_total", "req_total", (("code", "200"),), "")] == (2 + 3 + 4, 0.0)
    # buckets stay per bound (not cumulative) in the file
    le = (("route", "/a"), ("le", "0.5"))
    assert stored[("lat_seconds", "lat_seconds_bucket", le, "")] == (2 + 3 + 4, 0.0)
    # all: one entry per pid, the pid as a label; mostrecent keeps its timestamp
    for pid, value in (("2", 7.0), ("3", 17.0), ("4", 27.0)):
        labels = (("engine", "0"), ("pid", pid), ("zone", "z"))
        assert stored[("g_all", "g_all", labels, "all")] == (value, 0.0)
    assert stored[("g_mostrecent", "g_mostrecent", e, "mostrecent")] == (27.0, 103.0)
    assert stored[("g_max", "g_max", e, "max")][0] == 27.0
    assert stored[("g_min", "g_min", e, "min")][0] == 7.0
    assert stored[("g_sum", "g_sum", e, "sum")][0] == 51.0
    assert not [k for k in stored if k[3].startswith("live")]
    # another round folds into the same aggregate
    write_process(tmp_path, 5, process_entries(4, stamp=100.0), retired_stamp=20)
    before = scrape(tmp_path)
    compact(tmp_path)
    assert scrape(tmp_path) == before
    assert values_of(before, "req_total")[(("code", "200"),)] == 1 + 2 + 3 + 4 + 5


def test_mark_process_dead_retires_compacts_and_removes_client_live_files(tmp_path):
    write_process(tmp_path, 1, process_entries(0))
    write_process(tmp_path, 12, process_entries(1))
    for name in (
        "gauge_livesum_1.db",
        "gauge_liveall_1.db",
        "gauge_all_1.db",
        "gauge_livesum_11.db",
    ):
        (tmp_path / name).write_bytes(b"")
    live_before = values_of(scrape(tmp_path), "g_livesum")
    mark_process_dead(1, tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [
            layout.LOCK,
            layout.AGGREGATE,
            layout.process_file_name(12),
            "gauge_all_1.db",
            "gauge_livesum_11.db",
        ]
    )
    got = scrape(tmp_path)
    assert live_before == {(("engine", "0"), ("zone", "z")): 4.0}
    assert values_of(got, "g_livesum") == {(("engine", "0"), ("zone", "z")): 7.0}
    assert values_of(got, "req_total")[(("code", "200"),)] == 3.0
    mark_process_dead(999, tmp_path)  # nothing of that pid: nothing changes
    assert scrape(tmp_path) == got


def test_corrupt_aggregate_is_left_alone(tmp_path, caplog):
    (tmp_path / layout.AGGREGATE).write_bytes(b"DYNMPV99garbage!")
    name = write_process(tmp_path, 3, process_entries(0), retired_stamp=1)
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        compact(tmp_path)
    assert (tmp_path / name).exists()
    assert len(caplog.records) == 1 and layout.AGGREGATE in caplog.records[0].getMessage()


# A compactor that SIGKILLs itself just before its k-th file operation (0: never).
KILLER = r"""
import os, signal, sys
from dyn_metrics.multiprocess.compaction import mark_process_dead

directory, pid, stop_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
calls = 0

def stopping(real):
    def call(*args, **kwargs):
        global calls
        calls += 1
        if calls == stop_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call

for name in ("rename", "replace", "unlink", "remove", "fsync"):
    setattr(os, name, stopping(getattr(os, name)))
mark_process_dead(pid, directory)
print(calls)
"""


def run_killer(directory, pid, stop_at):
    return subprocess.run(
        [sys.executable, "-c", KILLER, str(directory), str(pid), str(stop_at)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_compactor_killed_at_any_step_never_double_counts_or_loses(tmp_path):
    start = tmp_path / "start"
    start.mkdir()
    write_process(start, 1, process_entries(0, stamp=10.0))
    write_process(start, 2, process_entries(1, stamp=10.0))
    write_process(start, 3, process_entries(2, stamp=10.0), retired_stamp=7)
    compact(start)  # an aggregate from earlier deaths
    write_process(start, 4, process_entries(3, stamp=10.0), retired_stamp=8)
    write_process(start, 5, process_entries(4, stamp=10.0), retired_stamp=9)
    before = scrape(start)
    done = tmp_path / "done"
    shutil.copytree(start, done)
    finished = run_killer(done, 1, 0)
    assert finished.returncode == 0, finished.stderr
    steps = int(finished.stdout)
    after = scrape(done)
    assert after != before  # process 1's live gauges are gone
    assert values_of(after, "req_total") == values_of(before, "req_total")
    assert steps >= 5  # rename, fsync, replace, and the deletions
    states = set()
    for stop_at in range(1, steps + 1):
        directory = tmp_path / f"killed{stop_at}"
        shutil.copytree(start, directory)
        killed = run_killer(directory, 1, stop_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        # Killed before its rename: nothing happened; after it: as good as done.
        names = os.listdir(directory)
        states.add(tuple(sorted(".dm-tmp" if n.startswith(".dm-tmp") else n for n in names)))
        expected = before if stop_at == 1 else after
        assert scrape(directory) == expected, stop_at
        compact(directory)
        assert scrape(directory) == expected, stop_at
        mark_process_dead(1, directory)  # the supervisor's retry
        assert scrape(directory) == after, stop_at
        assert sorted(os.listdir(directory)) == sorted(
            [layout.LOCK, layout.AGGREGATE, layout.process_file_name(2)]
        )
        compact(directory)
        assert scrape(directory) == after, stop_at
        folded = [k for k, _, _ in layout.read_file(directory / layout.AGGREGATE)]
        assert [k for k in folded if k.type == layout.FOLDED] == []
    assert len(states) == steps  # every kill left the directory in another state


CHILD = r"""
import os, sys
from dyn_metrics.multiprocess import layout
directory, i = sys.argv[1], int(sys.argv[2])
key = layout.Key("runs_total", "counter", "Runs", "", "runs_total", ())
gauge = layout.Key("up", "gauge", "Up", "", "up", (), "livesum")
seen = layout.Key("seen", "gauge", "Seen", "", "seen", (), "max")
path = os.path.join(directory, layout.process_file_name(os.getpid()))
layout.write_file(path, [(key, 1.0 + i, 0.0), (gauge, 1.0, 0.0), (seen, float(i), 0.0)])
"""


def test_a_thousand_restarts_leave_a_handful_of_files(tmp_path, monkeypatch):
    # Durability is not what this measures: skip the fsyncs of a thousand writes.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    key = K("runs_total", "counter", "Runs", "", "runs_total", ())
    gauge = K("up", "gauge", "Up", "", "up", (), "livesum")
    seen = K("seen", "gauge", "Seen", "", "seen", (), "max")
    pids = list(range(100_000, 101_000))
    for n, pid in enumerate(pids):
        write_process(tmp_path, pid, [(key, 1.0 + n, 0.0), (gauge, 1.0, 0.0), (seen, n, 0.0)])
        # a worker dies: its file is retired; the directory is compacted now and then
        os.rename(
            tmp_path / layout.process_file_name(pid),
            tmp_path / layout.retired_file_name(pid, n),
        )
        if n % 100 == 99:
            compact(tmp_path)
    real = []
    for i in range(1000, 1010):
        subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(i)], check=True)
    for name in os.listdir(tmp_path):
        kind = layout.parse_file_name(name)
        if kind is not None and kind[0] == "live":
            real.append(kind[1])
    assert len(real) == 10
    for pid in real:
        mark_process_dead(pid, tmp_path)
    assert sorted(os.listdir(tmp_path)) == [layout.LOCK, layout.AGGREGATE]
    got = scrape(tmp_path)
    expected = sum(1.0 + n for n in range(1000)) + sum(1.0 + i for i in range(1000, 1010))
    assert values_of(got, "runs_total") == {(): expected}
    assert values_of(got, "seen") == {(): 1009.0}
    assert "up" not in got  # livesum: every process is dead


@pytest.mark.parametrize("mode", MODES)
def test_compaction_is_invisible_for_every_gauge_mode(tmp_path, mode):
    name = "g_" + mode
    for i, pid in enumerate((1, 2, 3)):
        key = K(name, "gauge", "G", "", name, (("a", "b"),), mode)
        entries = [(key, 5.0 * i - 1, 10.0 + (2 - i)), (key._replace(labels=()), 1.0, 0.0)]
        write_process(tmp_path, pid, entries, retired_stamp=i)
    write_process(tmp_path, 9, [(K(name, "gauge", "G", "", name, (("a", "b"),), mode), 2, 50)])
    before = scrape(tmp_path)
    compact(tmp_path)
    assert scrape(tmp_path) == before
    assert MultiProcessCollector(tmp_path).collect()  # something is served


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A signal handler scraping (and retiring a process) while this process compacts:
# SIGUSR1 is sent just before the new aggregate is written, under the exclusive lock.
NESTED_IN_COMPACTION = r"""
import os, signal, sys
from dyn_metrics.multiprocess import compaction, layout
from dyn_metrics.multiprocess.collector import MultiProcessCollector
d = sys.argv[1]
key = layout.Key("c_total", "counter", "C", "", "c_total", ())
layout.write_file(os.path.join(d, layout.retired_file_name(5, 1)), [(key, 3.0, 0.0)])
layout.write_file(os.path.join(d, layout.process_file_name(6)), [(key, 4.0, 0.0)])
nested = []
def handler(*_):
    nested.append(MultiProcessCollector(d).collect())
    compaction.mark_process_dead(6, d)  # nested: renamed, not compacted
signal.signal(signal.SIGUSR1, handler)
write_file = layout.write_file
def write_file_interrupted(path, entries):
    os.kill(os.getpid(), signal.SIGUSR1)
    write_file(path, entries)
compaction.layout.write_file = write_file_interrupted
compaction.compact(d)
compaction.layout.write_file = write_file
after = MultiProcessCollector(d).collect()
compaction.compact(d)
final = MultiProcessCollector(d).collect()
print(*[[s.value for f in got for s in f.samples] for got in (nested[0], after, final)])
print(sorted(os.listdir(d)))
"""


def test_signal_handler_scrape_during_a_compaction_in_this_process(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", NESTED_IN_COMPACTION, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    values, names = done.stdout.splitlines()
    assert values.split() == ["[7.0]", "[7.0]", "[7.0]"]
    assert names == str(sorted([layout.LOCK, layout.AGGREGATE]))


def _in_thread(function):
    result = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(30)  # a bound on a hang, not a timing assertion
    assert not thread.is_alive(), "blocked"
    return result[0]


def bad_retired_file(directory, kind):
    """A FIFO, or a file with a deeply nested key (RecursionError), named as a retired file."""
    name = layout.retired_file_name(7, 1)
    if kind == "fifo":
        os.mkfifo(os.path.join(directory, name))
        return name
    key = b"[" * 100_000
    entry = layout.LENGTH.pack(len(key)) + key
    entry += b"\x00" * (-len(entry) % 8) + layout.VALUE.pack(1.0, 0.0)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(layout.header(layout.HEADER_SIZE + len(entry)) + entry)
    return name


@pytest.mark.parametrize("kind", ["fifo", "nested_key"])
def test_a_bad_retired_file_is_left_in_place_and_the_others_fold(tmp_path, caplog, kind):
    counter = K("c_total", "counter", "C", "", "c_total", ())
    write_process(tmp_path, 2, [(counter, 2.0, 0)], retired_stamp=1)
    write_process(tmp_path, 3, [(counter, 3.0, 0)], retired_stamp=1)
    bad = bad_retired_file(tmp_path, kind)
    write_process(tmp_path, 9, [(counter, 4.0, 0)])
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        _in_thread(lambda: compact(tmp_path))
        _in_thread(lambda: mark_process_dead(9, tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([layout.LOCK, layout.AGGREGATE, bad])
    assert values_of(scrape(tmp_path), "c_total") == {(): 9.0}
    logged = [r for r in caplog.records if r.name.endswith(".compaction")]
    assert len([r for r in logged if bad in r.getMessage()]) == 1


def test_the_aggregate_is_readable_by_other_users(tmp_path):
    write_process(tmp_path, 2, process_entries(0), retired_stamp=1)
    old = os.umask(0o022)
    try:
        compact(tmp_path)
    finally:
        os.umask(old)
    assert os.stat(tmp_path / layout.AGGREGATE).st_mode & 0o777 == 0o644
    write_process(tmp_path, 3, process_entries(1), retired_stamp=1)
    old = os.umask(0o077)
    try:
        compact(tmp_path)
    finally:
        os.umask(old)
    assert os.stat(tmp_path / layout.AGGREGATE).st_mode & 0o777 == 0o600


# The collector's side of the same bad files.


def scrape_with(collector):
    return view(collector.collect())


@pytest.mark.parametrize("name", [layout.process_file_name(2), layout.retired_file_name(3, 1)])
def test_a_fifo_named_like_a_process_file_is_skipped(tmp_path, caplog, name):
    write_process(tmp_path, 1, [(K("c_total", "counter", "C", "", "c_total", ()), 2.0, 0)])
    os.mkfifo(tmp_path / name)
    collector = MultiProcessCollector(tmp_path)
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        first = _in_thread(lambda: scrape_with(collector))
        second = _in_thread(lambda: scrape_with(collector))
    assert values_of(first, "c_total") == values_of(second, "c_total") == {(): 2.0}
    logged = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(logged) == 1 and "not a regular file" in logged[0]


def nested_key_file(path):
    """A process file whose one key is deeply nested JSON (RecursionError in json)."""
    key = b"[" * 100_000
    entry = layout.LENGTH.pack(len(key)) + key
    entry += b"\x00" * (-len(entry) % 8) + layout.VALUE.pack(1.0, 0.0)
    with open(path, "wb") as f:
        f.write(layout.header(layout.HEADER_SIZE + len(entry)) + entry)


def test_a_deeply_nested_key_is_skipped_not_raised(tmp_path, caplog):
    write_process(tmp_path, 1, [(K("c_total", "counter", "C", "", "c_total", ()), 2.0, 0)])
    nested_key_file(tmp_path / layout.process_file_name(2))
    nested_key_file(tmp_path / layout.retired_file_name(3, 1))
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        assert values_of(scrape(tmp_path), "c_total") == {(): 2.0}
    assert len(caplog.records) == 2


def test_scrape_does_not_wait_forever_for_the_lock(tmp_path, monkeypatch, caplog):
    write_process(tmp_path, 1, [(K("c_total", "counter", "C", "", "c_total", ()), 2.0, 0)])
    monkeypatch.setattr(collector_module, "LOCK_TIMEOUT", 0.01)
    monkeypatch.setattr(collector_module, "_lock_logged", {})
    fd = os.open(tmp_path / layout.LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a compactor holding it (another open file)
        with caplog.at_level(logging.WARNING, logger="dyn_metrics.multiprocess"):
            first = _in_thread(lambda: scrape(tmp_path))
            second = _in_thread(lambda: scrape(tmp_path))
    finally:
        os.close(fd)
    assert values_of(first, "c_total") == values_of(second, "c_total") == {(): 2.0}
    assert len([r for r in caplog.records if "still locked" in r.getMessage()]) == 1
