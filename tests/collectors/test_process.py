"""ProcessCollector: a fake /proc gives exact values; real /proc matches prometheus_client."""

import logging
import os
import resource

import prometheus_client
import pytest

import dyn_metrics as dm
from dyn_metrics.collectors import ProcessCollector
from dyn_metrics.model import Family, Sample
from tests.collectors import assert_round_trips, client_view, our_view, shape

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = resource.getpagesize()
BTIME = 1_700_000_000
LIMITS = (
    b"Limit                     Soft Limit           Hard Limit           Units     \n"
    b"Max cpu time              unlimited            unlimited            seconds   \n"
    b"Max open files            1024                 524288               files     \n"
)
# The command name holds spaces and ")": the fields start after the last ")".
COMM = b"(my (odd) proc) x)"
# The fields after the command name (index 0 is field 3, the state).
FIELDS = {11: 250, 12: 50, 19: 12_345, 20: 987_654_321, 21: 4_321}


def stat_line(fields=FIELDS, comm=COMM):
    parts = [b"S"] + [b"0"] * 49
    for index, value in fields.items():
        parts[index] = str(value).encode()
    return b"1234 " + comm + b" " + b" ".join(parts) + b"\n"


def make_proc(root, pid="1234", stat=None, limits=LIMITS, fds=5, btime=BTIME):
    """A fake procfs under ``root``; a file given as None is left out."""
    root.mkdir(exist_ok=True)
    if btime is not None:
        (root / "stat").write_bytes(b"cpu  1 2 3\nintr 0\nbtime %d\nprocesses 9\n" % btime)
    base = root / pid
    base.mkdir()
    (base / "stat").write_bytes(stat_line() if stat is None else stat)
    if limits is not None:
        (base / "limits").write_bytes(limits)
    if fds is not None:
        (base / "fd").mkdir()
        for fd in range(fds):
            (base / "fd" / str(fd)).write_bytes(b"")
    return root


def family(name, type_word, help_text, value):
    return Family(name, type_word, help_text, (Sample(name, (), value),))


def expected(prefix="process_", fields=FIELDS, fds=5, max_fds=1024.0):
    return [
        family(prefix + "virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               float(fields[20])),
        family(prefix + "resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               float(fields[21]) * PAGE),
        family(prefix + "start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.",
               fields[19] / TICKS + BTIME),
        family(prefix + "cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.",
               fields[11] / TICKS + fields[12] / TICKS),
        family(prefix + "open_fds", "gauge", "Number of open file descriptors.", fds),
        family(prefix + "max_fds", "gauge", "Maximum number of open file descriptors.", max_fds),
    ]  # fmt: skip


STAT_NAMES = [
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_cpu_seconds_total",
]
FD_NAMES = ["process_open_fds", "process_max_fds"]


def names(families):
    return [f.name for f in families]


def client_collector(**kwargs):
    """prometheus_client's own collector, registered nowhere."""
    return prometheus_client.ProcessCollector(registry=None, **kwargs)


# -- a fake /proc -------------------------------------------------------------------------


def test_fake_proc_gives_exact_values(tmp_path):
    proc = make_proc(tmp_path / "proc")
    got = ProcessCollector(pid="1234", proc=proc).collect()
    assert got == expected()
    assert [type(f.samples[0].value) for f in got] == [float] * 4 + [int, float]


def test_fake_proc_matches_prometheus_client_exactly(tmp_path):
    proc = make_proc(tmp_path / "proc")
    ours = ProcessCollector(pid="1234", proc=str(proc)).collect()
    theirs = client_collector(pid=lambda: "1234", proc=str(proc)).collect()
    assert our_view(ours) == client_view(theirs)


@pytest.mark.parametrize("namespace", ["myapp", "a:b", "_x"])
def test_namespace_prefix_is_prometheus_clients(tmp_path, namespace):
    proc = make_proc(tmp_path / "proc")
    ours = ProcessCollector(namespace=namespace, pid=1234, proc=proc).collect()
    assert ours == expected(prefix=f"{namespace}_process_")
    theirs = client_collector(namespace=namespace, pid=lambda: 1234, proc=str(proc)).collect()
    assert our_view(ours) == client_view(theirs)


def test_pid_callable_is_read_at_each_collect(tmp_path):
    proc = make_proc(tmp_path / "proc", pid="1", fds=1)
    other = {**FIELDS, 11: 900}
    make_proc(proc, pid="2", stat=stat_line(other), fds=3)
    calls = []

    def pid():
        calls.append(None)
        return "1" if len(calls) % 2 else " 2\n"  # a pid file's content is stripped

    collector = ProcessCollector(pid=pid, proc=proc)
    assert calls == []
    assert collector.collect() == expected(fds=1)
    assert collector.collect() == expected(fields=other, fds=3)
    assert collector.collect() == expected(fds=1)
    assert len(calls) == 3


# (what is changed in the fake /proc, the families still collected)
DAMAGE_ROWS = [
    ({"stat": b""}, FD_NAMES),
    ({"stat": b"garbage with no fields"}, FD_NAMES),
    ({"stat": stat_line({**FIELDS, 20: "lots"})}, FD_NAMES),
    ({"stat": stat_line()[:60]}, FD_NAMES),  # truncated: too few fields
    ({"limits": None}, STAT_NAMES),
    ({"limits": b"Limit Soft Hard\n"}, STAT_NAMES),  # no "Max open files" line
    ({"limits": b"Max open files            many   many   files\n"}, STAT_NAMES),
    ({"limits": b"Max open files\n"}, STAT_NAMES),
    ({"fds": None}, STAT_NAMES),
    ({"btime": None}, []),
]


@pytest.mark.parametrize("damage, kept", DAMAGE_ROWS)
def test_damaged_proc_leaves_out_what_it_cannot_read(tmp_path, damage, kept):
    proc = make_proc(tmp_path / "proc", **damage)
    assert names(ProcessCollector(pid="1234", proc=proc).collect()) == kept


def test_garbled_btime_yields_nothing(tmp_path):
    proc = make_proc(tmp_path / "proc")
    (proc / "stat").write_bytes(b"btime soon\n")
    assert ProcessCollector(pid="1234", proc=proc).collect() == []
    (proc / "stat").write_bytes(b"btime\n")
    assert ProcessCollector(pid="1234", proc=proc).collect() == []


def test_missing_proc_or_vanished_pid_yields_nothing_and_logs_once(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="dyn_metrics.collectors")
    missing = ProcessCollector(proc=tmp_path / "absent")
    assert missing.collect() == []
    assert missing.collect() == []
    proc = make_proc(tmp_path / "proc")
    vanished = ProcessCollector(pid=99999, proc=proc)
    assert vanished.collect() == []
    assert vanished.collect() == []
    records = [r for r in caplog.records if r.name.startswith("dyn_metrics.collectors")]
    assert [r.levelno for r in records] == [logging.DEBUG, logging.DEBUG]


def test_boot_time_read_once_available(tmp_path):
    proc = make_proc(tmp_path / "proc", btime=None)
    collector = ProcessCollector(pid="1234", proc=proc)
    assert collector.collect() == []
    (proc / "stat").write_bytes(b"btime %d\n" % BTIME)
    assert collector.collect() == expected()
    (proc / "stat").unlink()  # read once: later scrapes do not need it
    assert collector.collect() == expected()


# (what the pid callable does)
BAD_PID_CALLABLE_ROWS = [
    pytest.param(lambda: 1 / 0, id="raises"),
    pytest.param(lambda: None, id="None"),
    pytest.param(lambda: "../1234", id="path"),
    pytest.param(lambda: -1, id="negative"),
    pytest.param(lambda: True, id="bool"),
    pytest.param(lambda: "", id="empty"),
]


@pytest.mark.parametrize("pid", BAD_PID_CALLABLE_ROWS)
def test_bad_pid_callable_yields_nothing_and_warns_once(tmp_path, caplog, pid):
    proc = make_proc(tmp_path / "proc")
    collector = ProcessCollector(pid=pid, proc=proc)
    assert collector.collect() == []
    assert collector.collect() == []
    records = [r for r in caplog.records if r.name.startswith("dyn_metrics.collectors")]
    assert [r.levelno for r in records] == [logging.WARNING]


# (constructor arguments, error, text the message holds)
BAD_ARGUMENT_ROWS = [
    ({"namespace": "1app"}, dm.InvalidNameError, "'1app'"),
    ({"namespace": "my-app"}, dm.InvalidNameError, "'my-app'"),
    ({"namespace": 5}, dm.InvalidNameError, "5"),
    ({"pid": "abc"}, dm.InvalidValueError, "'abc'"),
    ({"pid": -1}, dm.InvalidValueError, "-1"),
    ({"pid": True}, dm.InvalidValueError, "True"),
    ({"pid": 1.5}, dm.InvalidValueError, "1.5"),
    ({"pid": None}, dm.InvalidValueError, "None"),
]


@pytest.mark.parametrize("kwargs, error, text", BAD_ARGUMENT_ROWS)
def test_bad_arguments_raise_typed_errors(kwargs, error, text):
    with pytest.raises(error, match=r"^[a-z]") as info:
        ProcessCollector(**kwargs)
    assert text in str(info.value)


def test_describe_lists_the_families_without_samples(tmp_path):
    proc = make_proc(tmp_path / "proc")
    collector = ProcessCollector(namespace="app", pid="1234", proc=proc)
    described = collector.describe()
    assert described == [f._replace(samples=()) for f in collector.collect()]
    assert ProcessCollector(proc=tmp_path / "absent").describe() == [
        f._replace(name=f.name[len("app_") :]) for f in described
    ]


def test_fake_proc_round_trips_through_both_formats(tmp_path):
    proc = make_proc(tmp_path / "proc")
    assert_round_trips(ProcessCollector(namespace="app", pid="1234", proc=proc).collect())


# -- the real /proc -----------------------------------------------------------------------

linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")


@linux_only
def test_real_proc_matches_prometheus_client():
    ours = our_view(ProcessCollector().collect())
    theirs = client_view(client_collector().collect())
    assert shape(ours) == shape(theirs)
    assert names(ProcessCollector().collect()) == STAT_NAMES + FD_NAMES
    got = {name: samples[0][2] for name, _, _, samples in ours}
    want = {name: samples[0][2] for name, _, _, samples in theirs}
    assert abs(got["process_cpu_seconds_total"] - want["process_cpu_seconds_total"]) < 1.0
    for name in ("process_virtual_memory_bytes", "process_resident_memory_bytes"):
        assert 0.5 < got[name] / want[name] < 2.0, name
    assert abs(got["process_start_time_seconds"] - want["process_start_time_seconds"]) <= (
        1.0 / TICKS
    )
    assert abs(got["process_open_fds"] - want["process_open_fds"]) <= 3
    assert got["process_max_fds"] == want["process_max_fds"]


@linux_only
def test_real_proc_by_pid_number_round_trips():
    collector = ProcessCollector(pid=os.getpid)
    families = collector.collect()
    assert names(families) == STAT_NAMES + FD_NAMES
    assert_round_trips(families)
