"""MultiProcessCollector: dyn_metrics' own files (layout.write_file) and prometheus_client's."""

import logging
import os
import shutil
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import multiprocess as client_multiprocess

import dyn_metrics as dm
from dyn_metrics.errors import ConfigError
from dyn_metrics.multiprocess import layout
from dyn_metrics.multiprocess import mode as mp_mode
from dyn_metrics.multiprocess.collector import MultiProcessCollector, resolve_directory
from dyn_metrics.multiprocess.compaction import mark_process_dead
from tests.multiprocess import write_client_dir

K = layout.Key
MODES = [
    "all",
    "liveall",
    "min",
    "livemin",
    "max",
    "livemax",
    "sum",
    "livesum",
    "mostrecent",
    "livemostrecent",
]


def process_entries(i, stamp=0.0):
    """One process's entries; ``i`` makes its values differ from every other's."""
    out = [
        (K("req_total", "counter", "Requests", "", "req_total", (("code", "200"),)), 1.0 + i, 0),
        (K("req_total", "counter", "Requests", "", "req_total", (("code", "500"),)), 10.0, 0),
        (K("lat_seconds", "histogram", "Latency", "seconds", "lat_seconds_bucket",
           (("route", "/a"), ("le", "0.5"))), 1.0 + i, 0),
        (K("lat_seconds", "histogram", "Latency", "seconds", "lat_seconds_bucket",
           (("route", "/a"), ("le", "1.0"))), 2.0, 0),
        (K("lat_seconds", "histogram", "Latency", "seconds", "lat_seconds_bucket",
           (("route", "/a"), ("le", "+Inf"))), 1.0, 0),
        (K("lat_seconds", "histogram", "Latency", "seconds", "lat_seconds_sum",
           (("route", "/a"),)), 2.5 * (i + 1), 0),
        (K("size", "summary", "Sizes", "", "size_sum", ()), 100.0 + i, 0),
        (K("size", "summary", "Sizes", "", "size_count", ()), 2.0, 0),
    ]  # fmt: skip
    for mode in MODES:
        name = "g_" + mode
        # labels out of order: the collector sorts them
        labels = (("zone", "z"), ("engine", "0"))
        ts = stamp + i if "mostrecent" in mode else 0.0
        out.append((K(name, "gauge", "Gauge " + mode, "", name, labels, mode), 10.0 * i - 3, ts))
    return out


def write_process(directory, pid, entries, retired_stamp=None):
    name = (
        layout.process_file_name(pid)
        if retired_stamp is None
        else layout.retired_file_name(pid, retired_stamp)
    )
    layout.write_file(os.path.join(directory, name), entries)
    return name


def view(families):
    """{family: (type, help, {(sample, labels): value})}, asserting no duplicate series."""
    out = {}
    for f in families:
        samples = {(s.name, s.labels): s.value for s in f.samples}
        assert len(samples) == len(f.samples), f"duplicate series in {f.name}"
        out[f.name] = (f.type, f.help, samples)
    return out


def scrape(directory):
    return view(MultiProcessCollector(directory).collect())


def values_of(families, name):
    return {labels: value for (_, labels), value in families[name][2].items()}


def test_counters_histograms_summaries_are_summed(tmp_path):
    for i, pid in enumerate((101, 102, 103)):
        write_process(tmp_path, pid, process_entries(i))
    got = scrape(tmp_path)
    assert got["req_total"] == (
        "counter",
        "Requests",
        {("req_total", (("code", "200"),)): 6.0, ("req_total", (("code", "500"),)): 30.0},
    )
    family = next(f for f in MultiProcessCollector(tmp_path).collect() if f.name == "lat_seconds")
    assert [(s.name, s.labels, s.value) for s in family.samples] == [
        ("lat_seconds_bucket", (("route", "/a"), ("le", "0.5")), 6.0),
        ("lat_seconds_bucket", (("route", "/a"), ("le", "1.0")), 12.0),
        ("lat_seconds_bucket", (("route", "/a"), ("le", "+Inf")), 15.0),
        ("lat_seconds_sum", (("route", "/a"),), 15.0),
        ("lat_seconds_count", (("route", "/a"),), 15.0),
    ]
    assert family.unit == "seconds"
    assert got["size"][2] == {("size_sum", ()): 303.0, ("size_count", ()): 6.0}


# mode -> the served {labels: value}; live pids 1 and 2 (i = 0, 1), retired pid 3 (i = 2)
E = (("engine", "0"), ("zone", "z"))
GAUGE_RULES = [
    ("all", {E[:1] + (("pid", "1"),) + E[1:]: -3.0, E[:1] + (("pid", "2"),) + E[1:]: 7.0,
             E[:1] + (("pid", "3"),) + E[1:]: 17.0}),
    ("liveall", {E[:1] + (("pid", "1"),) + E[1:]: -3.0, E[:1] + (("pid", "2"),) + E[1:]: 7.0}),
    ("min", {E: -3.0}),
    ("livemin", {E: -3.0}),
    ("max", {E: 17.0}),
    ("livemax", {E: 7.0}),
    ("sum", {E: 21.0}),
    ("livesum", {E: 4.0}),
    ("mostrecent", {E: 17.0}),  # the retired one wrote last
    ("livemostrecent", {E: 7.0}),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "expected"), GAUGE_RULES)
def test_gauge_modes_live_and_retired(tmp_path, mode, expected):
    write_process(tmp_path, 1, process_entries(0, stamp=1000.0))
    write_process(tmp_path, 2, process_entries(1, stamp=1000.0))
    write_process(tmp_path, 3, process_entries(2, stamp=1000.0), retired_stamp=5)
    got = scrape(tmp_path)
    assert got["g_" + mode][0] == "gauge"
    assert values_of(got, "g_" + mode) == expected


def test_mostrecent_never_set_is_not_served(tmp_path):
    key = K("g", "gauge", "G", "", "g", (), "mostrecent")
    write_process(tmp_path, 1, [(key, 5.0, 0.0)])
    assert "g" not in scrape(tmp_path)
    write_process(tmp_path, 2, [(key, 6.0, 1.0)])
    assert values_of(scrape(tmp_path), "g") == {(): 6.0}


def test_aggregate_and_folded_files(tmp_path):
    counter = K("c_total", "counter", "C", "", "c_total", ())
    all_gauge = K("g", "gauge", "G", "", "g", (("pid", "7"),), "all")
    folded = K("", layout.FOLDED, "", "", layout.retired_file_name(7, 1), ())
    layout.write_file(
        tmp_path / layout.AGGREGATE, [(counter, 100.0, 0), (all_gauge, 4.0, 0), (folded, 0, 0)]
    )
    # already folded (a compactor stopped before deleting it): not counted again
    write_process(tmp_path, 7, [(counter, 100.0, 0)], retired_stamp=1)
    write_process(tmp_path, 8, [(counter, 1.0, 0)], retired_stamp=2)
    write_process(tmp_path, 9, [(counter, 0.5, 0), (all_gauge._replace(labels=()), 3.0, 0)])
    got = scrape(tmp_path)
    assert values_of(got, "c_total") == {(): 101.5}
    assert values_of(got, "g") == {(("pid", "7"),): 4.0, (("pid", "9"),): 3.0}


def test_reused_pid_serves_the_latest_all_value_once(tmp_path):
    key = K("g", "gauge", "G", "", "g", (), "all")
    layout.write_file(tmp_path / layout.AGGREGATE, [(key._replace(labels=(("pid", "5"),)), 1, 0)])
    write_process(tmp_path, 5, [(key, 2.0, 0)], retired_stamp=10)
    write_process(tmp_path, 5, [(key, 3.0, 0)], retired_stamp=9)
    assert values_of(scrape(tmp_path), "g") == {(("pid", "5"),): 2.0}
    write_process(tmp_path, 5, [(key, 4.0, 0)])
    assert values_of(scrape(tmp_path), "g") == {(("pid", "5"),): 4.0}


def test_registered_collector_serves_valid_text_and_openmetrics(tmp_path):
    for i, pid in enumerate((11, 12)):
        write_process(tmp_path, pid, process_entries(i, stamp=50.0))
    write_client_dir(tmp_path)
    registry = dm.Registry()
    registry.register(MultiProcessCollector(tmp_path))
    text = registry.prometheus_expfmt()
    assert dm.check(text).errors == []
    parsed = {f.name: f for f in dm.parse(text)}
    assert parsed["req_total"].samples[0].value == 3.0
    assert "vllm:request_success_total" in parsed and "g_all" in parsed
    openmetrics = dm.generate_latest(registry, format="openmetrics")  # type: ignore[attr-defined]
    assert dm.check(openmetrics, format="openmetrics").errors == []


def test_cached_scrapes_follow_value_changes_and_new_series(tmp_path):
    collector = MultiProcessCollector(tmp_path)
    key = K("c_total", "counter", "C", "", "c_total", ())
    write_process(tmp_path, 1, [(key, 1.0, 0)])
    assert values_of(view(collector.collect()), "c_total") == {(): 1.0}
    write_process(tmp_path, 1, [(key, 2.0, 0)])  # same shape, new value
    assert values_of(view(collector.collect()), "c_total") == {(): 2.0}
    other = key._replace(labels=(("a", "b"),))
    write_process(tmp_path, 1, [(key, 2.0, 0), (other, 5.0, 0)])  # grown
    assert values_of(view(collector.collect()), "c_total") == {(): 2.0, (("a", "b"),): 5.0}
    write_process(tmp_path, 1, [(other, 7.0, 0), (key, 3.0, 0)])  # same size, other keys
    assert values_of(view(collector.collect()), "c_total") == {(): 3.0, (("a", "b"),): 7.0}
    os.unlink(tmp_path / layout.process_file_name(1))
    assert collector.collect() == []


def newer_version(path):
    data = bytearray(path.read_bytes())
    data[6:8] = b"02"
    data[8:12] = (2).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_bad_files_are_logged_once_and_skipped(tmp_path, caplog):
    good = K("c_total", "counter", "C", "", "c_total", ())
    write_process(tmp_path, 1, [(good, 1.0, 0)])
    truncated = tmp_path / write_process(tmp_path, 2, [(good, 2.0, 0)] * 3)
    truncated.write_bytes(truncated.read_bytes()[:-20])
    corrupt = tmp_path / write_process(tmp_path, 3, [(good, 4.0, 0)])
    data = corrupt.read_bytes()
    corrupt.write_bytes(data[:20] + b"\xff{" + data[22:])
    newer = tmp_path / write_process(tmp_path, 4, [(good, 8.0, 0)], retired_stamp=1)
    newer_version(newer)
    foreign = tmp_path / "dm_stray.dmdb"
    foreign.write_bytes(b"hello")
    unknown = tmp_path / write_process(tmp_path, 5, [(good._replace(type="gaugehistogram"), 1, 0)])
    bucket = K("h", "histogram", "H", "", "h_bucket", (("le", "x"),))
    no_bound = tmp_path / write_process(tmp_path, 6, [(bucket, 1, 0)])
    (tmp_path / "dm_7.dmdb").write_bytes(b"\x00" * 4096)  # being created: silent
    collector = MultiProcessCollector(tmp_path)
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        first = collector.collect()
        second = collector.collect()
    assert first == second
    assert values_of(view(first), "c_total") == {(): 1.0}
    logged = sorted(r.getMessage().split("'")[1].rsplit("/", 1)[1] for r in caplog.records)
    bad = [truncated, corrupt, newer, foreign, unknown, no_bound]
    assert logged == sorted(p.name for p in bad)


def test_file_vanishing_after_listing_is_skipped_silently(tmp_path, monkeypatch, caplog):
    write_process(tmp_path, 1, [(K("c_total", "counter", "C", "", "c_total", ()), 1.0, 0)])
    real = os.listdir
    gone = [layout.process_file_name(2), layout.retired_file_name(3, 1), layout.AGGREGATE]
    monkeypatch.setattr(os, "listdir", lambda p: real(p) + gone)
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        got = scrape(tmp_path)
    assert values_of(got, "c_total") == {(): 1.0}
    assert caplog.records == []


def test_missing_directory_is_logged_not_raised(tmp_path, caplog):
    collector = MultiProcessCollector(tmp_path / "nope")
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        assert collector.collect() == []
    assert len(caplog.records) == 1


def test_directory_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv("DYN_METRICS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(ConfigError, match="no multiprocess directory"):
        MultiProcessCollector()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "p"))
    assert resolve_directory(None) == str(tmp_path / "p")
    monkeypatch.setenv("DYN_METRICS_MULTIPROC_DIR", str(tmp_path / "d"))
    assert MultiProcessCollector().path == str(tmp_path / "d")
    assert resolve_directory(tmp_path / "x") == str(tmp_path / "x")
    enabled = tmp_path / "e"
    enabled.mkdir()
    mp_mode.enable(enabled)
    try:
        assert resolve_directory(None) == mp_mode.enabled_path() == os.path.realpath(enabled)
    finally:
        mp_mode.disable()
    assert resolve_directory(None) == str(tmp_path / "d")


# --- prometheus_client as the oracle --------------------------------------------------------


def oracle(directory):
    """prometheus_client's own aggregate of ``directory``, parsed."""
    registry = CollectorRegistry()
    client_multiprocess.MultiProcessCollector(registry, str(directory))
    return exposition_view(generate_latest(registry))


def exposition_view(text):
    out = {}
    for f in dm.parse(text):
        samples = {(s.name, tuple(sorted(s.labels))): s.value for s in f.samples}
        out[f.name] = (f.type, f.help, samples)
    return out


def ours(directory):
    registry = dm.Registry()
    registry.register(MultiProcessCollector(directory))
    return exposition_view(registry.prometheus_expfmt())


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("client")
    write_client_dir(path, children=3)
    return path


def client_pids(directory):
    return sorted({int(p.name.rsplit("_", 1)[1][:-3]) for p in directory.glob("gauge_all_*.db")})


def test_equals_prometheus_client_on_its_files(client_dir):
    expected = oracle(client_dir)
    assert ours(client_dir) == expected
    assert {"gauge_" + m for m in MODES} <= expected.keys()
    assert "latency_seconds" in expected and "vllm:time_to_first_token_seconds" in expected


@pytest.mark.parametrize("dead_by", ["prometheus_client", "dyn_metrics"])
def test_equals_prometheus_client_after_mark_process_dead(client_dir, tmp_path, dead_by):
    directory = tmp_path / "d"
    shutil.copytree(client_dir, directory)
    pid = client_pids(directory)[0]
    before = oracle(directory)
    if dead_by == "prometheus_client":
        client_multiprocess.mark_process_dead(pid, str(directory))
    else:
        mark_process_dead(pid, directory)
    expected = oracle(directory)
    assert ours(directory) == expected
    # The live modes lost the dead process; the others kept it.
    assert expected["gauge_livesum"] != before["gauge_livesum"]
    assert expected["gauge_sum"] == before["gauge_sum"]
    assert not list(directory.glob(f"gauge_live*_{pid}.db"))
    assert list(directory.glob(f"gauge_all_{pid}.db"))


def test_mixed_directory_merges_same_families(client_dir, tmp_path, caplog):
    directory = tmp_path / "d"
    shutil.copytree(client_dir, directory)
    client_only = oracle(directory)
    tokens = K("tokens_total", "counter", "Tokens", "", "tokens_total", ())
    clash = K("latency_seconds", "gauge", "Not a summary", "", "latency_seconds", (), "max")
    own = K("own_total", "counter", "Own", "", "own_total", ())
    write_process(directory, 4242, [(tokens, 1.5, 0), (clash, 9.0, 0), (own, 2.0, 0)])
    registry = dm.Registry()
    registry.register(MultiProcessCollector(directory))
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        got = exposition_view(registry.prometheus_expfmt())
        assert exposition_view(registry.prometheus_expfmt()) == got
    (_, _, samples) = client_only["tokens_total"]
    assert got["tokens_total"][2] == {k: v + 1.5 for k, v in samples.items()}
    assert got["latency_seconds"] == ("gauge", "Not a summary", {("latency_seconds", ()): 9.0})
    assert got["own_total"][2] == {("own_total", ()): 2.0}
    mine = ("tokens_total", "latency_seconds", "own_total")
    rest = {k: v for k, v in got.items() if k not in mine}
    assert rest == {k: v for k, v in client_only.items() if k not in mine}
    assert len([r for r in caplog.records if "latency_seconds" in r.getMessage()]) == 1


WRITER = r"""
import os, sys
from dyn_metrics.multiprocess import layout
from dyn_metrics.multiprocess import mode as mp_mode
directory, rounds = sys.argv[1], int(sys.argv[2])
key = layout.Key("ticks_total", "counter", "Ticks", "", "ticks_total", ())
path = os.path.join(directory, layout.process_file_name(os.getpid()))
for n in range(1, rounds + 1):
    layout.write_file(path, [(key, float(n), 0.0)])
    if n == 1:
        print("started", flush=True)
"""


def test_scrapes_while_real_processes_write(tmp_path):
    rounds = 300
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "started\n"
    collector = MultiProcessCollector(tmp_path)
    last = {}
    while any(child.poll() is None for child in children):
        for labels, value in values_of(view(collector.collect()), "ticks_total").items():
            assert value >= last.get(labels, 0.0)  # never goes back, never fails
            last[labels] = value
    assert [child.wait() for child in children] == [0, 0, 0]
    assert values_of(view(collector.collect()), "ticks_total") == {(): 3.0 * rounds}


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A signal handler scraping while the main thread is inside collect() (SIGUSR1 sent
# from within the scrape, so the handler runs while the collector's lock is held).
NESTED_SCRAPE = r"""
import os, signal, sys
from dyn_metrics.multiprocess import layout
from dyn_metrics.multiprocess.collector import MultiProcessCollector
d = sys.argv[1]
key = layout.Key("c_total", "counter", "C", "", "c_total", ())
layout.write_file(os.path.join(d, layout.process_file_name(5)), [(key, 3.0, 0.0)])
collector = MultiProcessCollector(d)
nested = []
signal.signal(signal.SIGUSR1, lambda *_: nested.append(collector.collect()))
add_to = collector._prometheus.add_to
def add_to_interrupted(scrape):
    os.kill(os.getpid(), signal.SIGUSR1)
    add_to(scrape)
collector._prometheus.add_to = add_to_interrupted
outer = collector.collect()
print([s.value for f in nested[0] for s in f.samples], [s.value for f in outer for s in f.samples])
"""


def test_scrape_in_a_signal_handler_during_a_scrape_does_not_wait(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", NESTED_SCRAPE, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[3.0]", "[3.0]"]
