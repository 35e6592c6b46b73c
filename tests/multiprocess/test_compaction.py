"""Compaction and mark_process_dead: folding retired files, crash safety, thousands of restarts."""

import logging
import os
import shutil
import signal
import subprocess
import sys

import pytest

from dyn_metrics.multiprocess import layout
from dyn_metrics.multiprocess.collector import MultiProcessCollector
from dyn_metrics.multiprocess.compaction import compact, mark_process_dead
from tests.multiprocess.test_collector import (
    MODES,
    K,
    process_entries,
    scrape,
    values_of,
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
    assert sorted(os.listdir(tmp_path)) == sorted([layout.LOCK, layout.AGGREGATE, "dm_1.db"])
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
        [layout.LOCK, layout.AGGREGATE, "dm_12.db", "gauge_all_1.db", "gauge_livesum_11.db"]
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
        assert sorted(os.listdir(directory)) == sorted([layout.LOCK, layout.AGGREGATE, "dm_2.db"])
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
