"""The reader of prometheus_client's multiprocess files, against prometheus_client itself."""

import logging
import math
import os
import shutil
import struct
import threading

import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

import dyn_metrics as dm
from dyn_metrics.exposition import openmetrics, text
from dyn_metrics.multiprocess import PrometheusFilesReader, layout
from dyn_metrics.multiprocess.collector import MultiProcessCollector as MultiProcessCollector_
from dyn_metrics.multiprocess.compaction import compact
from dyn_metrics.multiprocess.prometheus_files import float_to_go_string, read_db_file
from tests.multiprocess import write_client_dir


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("multiproc")
    write_client_dir(path)
    return path


def client_view(path):
    """prometheus_client's aggregate: {name: (type, help, {(sample, labels): value})}."""
    out = {}
    for metric in MultiProcessCollector(None, str(path)).collect():
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in metric.samples}
        out[metric.name] = (metric.type, metric.documentation, samples)
    return out


def our_view(families):
    out = {}
    for f in families:
        # prometheus_client names a counter family without its _total.
        name = f.name[: -len("_total")] if f.type == "counter" else f.name
        samples = {(s.name, tuple(sorted(s.labels))): s.value for s in f.samples}
        assert len(samples) == len(f.samples), f"duplicate series in {f.name}"
        out[name] = (f.type, f.help, samples)
    return out


def by_name(families):
    return {f.name: f for f in families}


def test_reader_aggregates_exactly_as_multiprocess_collector(client_dir):
    ours = PrometheusFilesReader(client_dir).families()
    assert our_view(ours) == client_view(client_dir)
    assert [f.name for f in ours] == sorted(f.name for f in ours)
    assert "vllm:request_success_total" in by_name(ours)


# mode -> the served (labels, value) pairs; child 0 set 7, child 1 set 17
GAUGE_MODES = [
    ("min", [((("engine", "0"),), 7.0)]),
    ("livemin", [((("engine", "0"),), 7.0)]),
    ("max", [((("engine", "0"),), 17.0)]),
    ("livemax", [((("engine", "0"),), 17.0)]),
    ("sum", [((("engine", "0"),), 24.0)]),
    ("livesum", [((("engine", "0"),), 24.0)]),
    ("mostrecent", [((("engine", "0"),), 17.0)]),
    ("livemostrecent", [((("engine", "0"),), 17.0)]),
]


@pytest.mark.parametrize(("mode", "expected"), GAUGE_MODES)
def test_gauge_modes_fold_processes(client_dir, mode, expected):
    family = by_name(PrometheusFilesReader(client_dir).families())["gauge_" + mode]
    assert family.type == "gauge"
    assert [(s.labels, s.value) for s in family.samples] == expected


@pytest.mark.parametrize("mode", ["all", "liveall"])
def test_gauge_all_modes_keep_one_series_per_pid(client_dir, mode):
    family = by_name(PrometheusFilesReader(client_dir).families())["gauge_" + mode]
    values = sorted(s.value for s in family.samples)
    pids = {dict(s.labels)["pid"] for s in family.samples}
    assert values == [7.0, 17.0]
    assert len(pids) == 2 and all(p.isdigit() for p in pids)
    assert all([k for k, _ in s.labels] == ["engine", "pid"] for s in family.samples)


def test_histogram_buckets_are_summed_and_cumulative(client_dir):
    family = by_name(PrometheusFilesReader(client_dir).families())[
        "vllm:time_to_first_token_seconds"
    ]
    got = [(s.name.rsplit("_", 1)[1], dict(s.labels).get("le"), s.value) for s in family.samples]
    # observations 0.05, 2.0 (child 0) and 0.1, 3.0 (child 1)
    assert got[:-2] == [
        ("bucket", "0.1", 2.0),
        ("bucket", "1.0", 2.0),
        ("bucket", "2.5", 3.0),
        ("bucket", "1e+07", 4.0),
        ("bucket", "+Inf", 4.0),
    ]
    assert got[-2][0] == "sum" and math.isclose(got[-2][2], 5.15)
    assert got[-1] == ("count", None, 4.0)
    assert family.samples[0].labels == (("model_name", "llama"), ("le", "0.1"))


def test_families_encode_to_valid_text_and_openmetrics(client_dir):
    families = PrometheusFilesReader(client_dir).families()
    for body, fmt in (
        (text.encode_to_string(families), "text"),
        (openmetrics.encode_to_string(families), "openmetrics"),
    ):
        result = dm.check(body, format=fmt)
        assert result.errors == [], (fmt, result.errors)


@pytest.mark.parametrize(
    "value", [0.1, 1.0, 2.5, 10.0, 1e6, 1e7, 12345678.9, 0.000001, 1e-300, math.inf, -math.inf]
)
def test_float_to_go_string_is_prometheus_clients(value):
    assert float_to_go_string(value) == floatToGoString(value)


def test_bad_files_are_skipped_with_one_log_line_each(client_dir, tmp_path, caplog):
    bad_dir = tmp_path / "bad"
    shutil.copytree(client_dir, bad_dir)
    counter = sorted(bad_dir.glob("counter_*.db"))[0]
    kept = counter.read_bytes()[:20]  # the header promises more than is left
    counter.write_bytes(kept)
    (bad_dir / "counter_999.db").write_bytes(b"\x40\x00\x00\x00garbage!" + b"\xff" * 56)
    (bad_dir / "weird_1.db").write_bytes(b"")
    gauge = sorted(bad_dir.glob("gauge_all_*.db"))[0]
    gauge.write_bytes(gauge.read_bytes()[:6])
    reader = PrometheusFilesReader(bad_dir)
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.multiprocess"):
        first = reader.families()
        second = reader.families()
    assert first == second
    logged = sorted(r.getMessage().split("'")[1].rsplit("/", 1)[1] for r in caplog.records)
    assert logged == sorted([counter.name, "counter_999.db", "weird_1.db", gauge.name])
    # What is left is what prometheus_client makes of the good files alone.
    good = tmp_path / "good"
    shutil.copytree(client_dir, good)
    (good / counter.name).unlink()
    (good / gauge.name).unlink()
    assert our_view(first) == client_view(good)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x01\x00", "shorter than the 8-byte header"),
        (b"\x00\x01\x00\x00" + b"\x00" * 12, "bytes in use"),
        (b"\x18\x00\x00\x00\x00\x00\x00\x00\xff\x00\x00\x00" + b"\x00" * 12, "runs past"),
    ],
)
def test_read_db_file_refuses_broken_files(tmp_path, data, problem):
    path = tmp_path / "counter_1.db"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=problem):
        read_db_file(str(path))


def test_repeated_scrapes_follow_changes_in_place_and_new_files(tmp_path):
    def key(route):
        return mmap_key("hits", "hits_total", ["route"], [route], "Hits")

    path = tmp_path / "counter_1.db"
    reader = PrometheusFilesReader(tmp_path)

    def served():
        return {s.labels: s.value for f in reader.families() for s in f.samples}

    mmap = MmapedDict(str(path))
    mmap.write_value(key("/a"), 1.0, 0.0)
    assert served() == {(("route", "/a"),): 1.0}
    mmap.write_value(key("/a"), 2.0, 0.0)  # in place: the cached shape is reused
    assert served() == {(("route", "/a"),): 2.0}
    mmap.write_value(key("/b"), 5.0, 0.0)  # a new entry
    assert served() == {(("route", "/a"),): 2.0, (("route", "/b"),): 5.0}
    mmap.close()
    path.unlink()
    mmap = MmapedDict(str(path))  # same size, other keys
    mmap.write_value(key("/c"), 7.0, 0.0)
    mmap.write_value(key("/d"), 8.0, 0.0)
    mmap.close()
    assert served() == {(("route", "/c"),): 7.0, (("route", "/d"),): 8.0}
    path.unlink()
    assert served() == {}


def test_prometheus_client_scrapes_a_directory_holding_dyn_metrics_files(tmp_path):
    write_client_dir(tmp_path, children=1)
    counter = layout.Key("dm_c_total", "counter", "C", "", "dm_c_total", ())
    layout.write_file(str(tmp_path / layout.retired_file_name(5, 1)), [(counter, 1.0, 0.0)])
    compact(tmp_path)
    layout.write_file(str(tmp_path / layout.retired_file_name(6, 1)), [(counter, 2.0, 0.0)])
    layout.write_file(str(tmp_path / layout.process_file_name(7)), [(counter, 4.0, 0.0)])
    assert layout.AGGREGATE in os.listdir(tmp_path)
    theirs = client_view(tmp_path)  # raised JSONDecodeError on dm_*.db files
    assert "dm_c" not in theirs and "tokens" in theirs
    ours = by_name(MultiProcessCollector_(tmp_path).collect())
    assert [s.value for s in ours["dm_c_total"].samples] == [7.0]
    assert [s.value for s in ours["tokens_total"].samples] == [100.0]


def gauge_files(directory, values, mode):
    for pid, value in enumerate(values, start=1):
        key = layout.Key("g", "gauge", "G", "", "g", (), mode)
        layout.write_file(str(directory / layout.process_file_name(pid)), [(key, value, 0.0)])


@pytest.mark.parametrize(("mode", "expected"), [("max", 5.0), ("min", 2.0), ("livemax", 5.0)])
def test_nan_gauges_of_min_max_modes_are_skipped_whatever_the_file_order(tmp_path, mode, expected):
    nan = float("nan")
    served = []
    for i, values in enumerate([(nan, 5.0, 2.0), (5.0, nan, 2.0), (2.0, 5.0, nan)]):
        directory = tmp_path / str(i)
        directory.mkdir()
        gauge_files(directory, values, mode)
        served += [
            s.value for s in by_name(MultiProcessCollector_(directory).collect())["g"].samples
        ]
    assert served == [expected] * 3
    only_nan = tmp_path / "nan"
    only_nan.mkdir()
    gauge_files(only_nan, (nan, nan), mode)
    [sample] = by_name(MultiProcessCollector_(only_nan).collect())["g"].samples
    assert math.isnan(sample.value)


def test_info_and_stateset_keys_are_served_as_their_types(tmp_path):
    def info(labels, value):
        return (
            layout.Key("build_info", "info", "B", "", "build_info", labels, "liveall"),
            value,
            0,
        )

    def state(name, value):
        key = layout.Key("st", "stateset", "S", "", "st", (("st", name),), "liveall")
        return (key, value, 0.0)

    entries = [info((), 0.0), info((("v", "1"),), 0.0), info((("v", "2"),), 1.0)]
    entries += [state("a", 0.0), state("b", 1.0)]
    layout.write_file(str(tmp_path / layout.process_file_name(4)), entries)
    layout.write_file(str(tmp_path / layout.retired_file_name(3, 1)), [info((("v", "0"),), 1.0)])
    got = by_name(MultiProcessCollector_(tmp_path).collect())
    assert got["build_info"].type == "info" and got["st"].type == "stateset"
    assert [(s.labels, s.value) for s in got["build_info"].samples] == [
        ((("pid", "4"), ("v", "2")), 1.0)
    ]
    assert [(s.labels, s.value) for s in got["st"].samples] == [
        ((("pid", "4"), ("st", "a")), 0.0),
        ((("pid", "4"), ("st", "b")), 1.0),
    ]


def test_a_fifo_or_a_nested_key_among_client_files_is_skipped(tmp_path, caplog):
    write_client_dir(tmp_path, children=1)
    expected = our_view(PrometheusFilesReader(tmp_path).families())
    os.mkfifo(tmp_path / "counter_77.db")
    key = b"[" * 100_000
    entry = struct.pack("i", len(key)) + key
    entry += b" " * (8 - (len(key) + 4) % 8) + struct.pack("dd", 1.0, 0.0)
    (tmp_path / "counter_78.db").write_bytes(struct.pack("i", 8 + len(entry)) + b"\0" * 4 + entry)
    reader = PrometheusFilesReader(tmp_path)
    result = []
    thread = threading.Thread(target=lambda: result.append(reader.families()), daemon=True)
    thread.start()
    thread.join(30)  # a bound on a hang, not a timing assertion
    assert not thread.is_alive(), "blocked on the FIFO"
    assert our_view(result[0]) == expected
    assert our_view(reader.families()) == expected
    names = sorted(r.getMessage().split("'")[1].rsplit("/", 1)[1] for r in caplog.records)
    assert names == ["counter_77.db", "counter_78.db"]


def test_families_called_during_families_does_not_wait(client_dir):
    reader = PrometheusFilesReader(client_dir)
    nested = []
    read_into = reader._read_into

    def interrupted(path, scrape):
        if not nested:
            # Another caller (a thread, or a signal handler) while this one holds the lock.
            thread = threading.Thread(target=lambda: nested.append(reader.families()))
            nested.append(thread)
            thread.start()
            thread.join(30)  # a bound on a hang, not a timing assertion
            waited.append(thread.is_alive())
        read_into(path, scrape)

    waited = []
    reader._read_into = interrupted
    outer = reader.families()
    assert waited == [False], "the second call waited for the first"
    assert len(nested) == 2
    assert our_view(nested[1]) == our_view(outer) == client_view(client_dir)
