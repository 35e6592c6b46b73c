"""The newer metric types against the real components a user meets them in.

Summary (with objectives), Info, StateSet/Enum, function and timestamp
gauges, exemplars, units and the default collectors go through a real
``prometheus-node-exporter`` textfile collector, a real Prometheus 2.42
(text and OpenMetrics targets, exemplar storage on), ``promtool check
metrics`` and prometheus_client's two parsers. The binaries come from
Debian's packages; a missing one fails the test (tests/realtools.py).

Every registry here is ``_registry(k)``: the values of our own metrics
are functions of the generation ``k`` (``_expected(k)``), so a scrape can
be checked sample by sample, and a scrape that mixed two generations is
caught.
"""

import math
import random
import subprocess
import threading
import time

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

import dyn_metrics as dm
from tests.realtools import DEADLINE, NodeExporter, Prometheus, binary, poll

OBJECTIVES = {0.5: 0.05, 0.9: 0.01, 0.99: 0.001}
N = 1000  # the summary observes k * (1..N), shuffled
STATES = ("starting", "ready", "draining")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
# sample labels whose values are numbers: compared as numbers ("1" == "1.0")
NUMERIC_LABELS = ("le", "quantile")
SCRAPES = 60  # of node_exporter while the file is rewritten


def _registry(k, created=False):
    """A registry of every type, our metrics' values set from the generation ``k``."""
    reg = dm.Registry(created=created)
    jobs = dm.Counter("jobs_total", "Jobs done")
    jobs.inc(k, exemplar={"trace_id": TRACE})
    plain = dm.Counter("testcounter", "A counter named without _total")
    plain.inc_by(1.5 * k)
    temperature = dm.Gauge("temperature_celsius", "Temperature", unit="celsius")
    temperature.set(k + 0.5)
    level = dm.IntGauge("level", "Level")
    level.set(-k)
    depth = dm.Gauge("queue_depth", "Depth, read at each scrape")
    depth.set_function(lambda: 10.0 * k)
    stamp = dm.Gauge("last_success_seconds", "When it last succeeded", unit="seconds")
    stamp.set_to_current_time()
    hist = dm.Histogram("lat_seconds", "Latency", buckets=[0.1, 0.5, 1.0], unit="seconds")
    for v in (0.05, 0.2, 0.7, 2.0):
        for _ in range(k):
            hist.observe(v)
    hist.observe(0.3, exemplar={"trace_id": TRACE})
    summary = dm.Summary("rpc_seconds", "RPC latency", objectives=OBJECTIVES, unit="seconds")
    data = list(range(1, N + 1))
    random.Random(11).shuffle(data)
    for v in data:
        summary.observe(v * k)
    per_method = dm.SummaryVec("req_seconds", "Per-method latency", ["method"])
    per_method.labels("get").observe(k)
    per_method.labels(method="put").observe(2 * k)
    build = dm.Info("build", "Build information")
    build.info({"version": f"1.{k}", "commit": "abc"})
    host = dm.InfoVec("host", "Host information", ["dc"])
    host.labels("eu").info({"os": "linux"})
    state = dm.Enum("worker_state", "Worker state", states=STATES)
    state.state(STATES[k % len(STATES)])
    features = dm.StateSetVec("features", "Feature flags", ["tier"], states=["fast", "safe"])
    features.labels("gold").set("safe", True)  # "fast", the first state, is on already
    features.labels("free").state("safe")
    metrics = (jobs, plain, temperature, level, depth, stamp, hist, summary, per_method)
    for metric in (*metrics, build, host, state, features):
        reg.register(metric)
    for collector in (dm.ProcessCollector(), dm.PlatformCollector(), dm.GCCollector()):
        reg.register(collector)
    return reg


def _expected(k, total=False):
    """``{(sample name, labels): value}`` of every sample of ours that ``k`` fixes.

    ``total``: the counter named without ``_total`` shows with it (OpenMetrics,
    and prometheus_client's text parser, which adds it).
    """
    states = {s: float(s == STATES[k % len(STATES)]) for s in STATES}
    rows = {
        ("jobs_total", ()): k,
        ("testcounter_total" if total else "testcounter", ()): 1.5 * k,
        ("temperature_celsius", ()): k + 0.5,
        ("level", ()): -k,
        ("queue_depth", ()): 10.0 * k,
        ("lat_seconds_bucket", (("le", 0.1),)): k,
        ("lat_seconds_bucket", (("le", 0.5),)): 2 * k + 1,
        ("lat_seconds_bucket", (("le", 1.0),)): 3 * k + 1,
        ("lat_seconds_bucket", (("le", math.inf),)): 4 * k + 1,
        ("lat_seconds_count", ()): 4 * k + 1,
        ("lat_seconds_sum", ()): 2.95 * k + 0.3,
        ("rpc_seconds_count", ()): N,
        ("rpc_seconds_sum", ()): k * N * (N + 1) / 2,
        ("req_seconds_count", (("method", "get"),)): 1,
        ("req_seconds_sum", (("method", "get"),)): k,
        ("req_seconds_count", (("method", "put"),)): 1,
        ("req_seconds_sum", (("method", "put"),)): 2 * k,
        ("build_info", (("commit", "abc"), ("version", f"1.{k}"))): 1,
        ("host_info", (("dc", "eu"), ("os", "linux"))): 1,
        ("features", (("features", "fast"), ("tier", "gold"))): 1,
        ("features", (("features", "safe"), ("tier", "gold"))): 1,
        ("features", (("features", "fast"), ("tier", "free"))): 0,
        ("features", (("features", "safe"), ("tier", "free"))): 1,
    }
    for s, v in states.items():
        rows[("worker_state", (("worker_state", s),))] = v
    return rows


def _key(name, labels):
    pairs = []
    for label, value in dict(labels).items():  # ours are pairs, prometheus_client's dicts
        pairs.append((label, float(value) if label in NUMERIC_LABELS else value))
    return name, tuple(sorted(pairs))


def _samples(families):
    """``{(sample name, labels): value}`` of parsed families (ours or prometheus_client's)."""
    return {_key(s.name, s.labels): s.value for f in families for s in f.samples}


def _assert_values(samples, k, total=False):
    wanted = _expected(k, total)
    got = {key: samples.get(key) for key in wanted}
    assert got == pytest.approx(wanted)
    _assert_quantiles(lambda q: samples[_key("rpc_seconds", {"quantile": str(q)})], k)


def _assert_quantiles(value_of, k):
    # The data are k * (1..N): the value of rank r is k * r. Each reported
    # quantile must have a rank within eps * N of q * N.
    for q, eps in OBJECTIVES.items():
        rank = value_of(q) / k
        assert abs(rank - q * N) <= eps * N, (q, rank)


# -- node_exporter's textfile collector ------------------------------------------


def _textfile_exporter(directory):
    return NodeExporter(
        [
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={directory}",
            "--web.disable-exporter-metrics",  # no process_* of its own beside ours
        ]
    )


def _node_scrape(exporter):
    families = {f.name: f for f in dm.parse(exporter.scrape().decode(), "text")}
    error = families.pop("node_textfile_scrape_error")
    assert [s.value for s in error.samples] == [0]
    # node_exporter's own families (node_textfile_mtime_seconds,
    # node_exporter_build_info, promhttp_metric_handler_errors_total, ...),
    # beside those of the file, which has none of these prefixes
    return {n: f for n, f in families.items() if not n.startswith(("node_", "promhttp_"))}


def _assert_reexposed(written, served):
    """Every family of the file, re-exposed by node_exporter with the same values."""
    mine = {f.name: f for f in dm.parse(written.decode(), "text")}
    assert sorted(served) == sorted(mine)
    for name, family in mine.items():
        assert (served[name].type, served[name].help) == (family.type, family.help), name
        assert _samples([served[name]]) == _samples([family]), name


def test_interop_types_node_exporter_reexposes_textfile(tmp_path):
    path = tmp_path / "app.prom"
    dm.write_to_textfile(path, _registry(1))
    exporter = _textfile_exporter(tmp_path)
    try:
        served = _node_scrape(exporter)
        _assert_reexposed(path.read_bytes(), served)
        _assert_values(_samples(served.values()), 1)
        assert {"process_cpu_seconds_total", "python_info", "python_gc_collections_total"} <= set(
            served
        )
        types = {name: served[name].type for name in ("rpc_seconds", "build_info", "features")}
        assert types == {"rpc_seconds": "summary", "build_info": "gauge", "features": "gauge"}

        # A rewrite shows at the next scrape, with every new value.
        dm.write_to_textfile(path, _registry(2))

        def rewritten():
            families = _node_scrape(exporter)
            return families if families["jobs_total"].samples[0].value == 2 else None

        served = poll("the rewritten file", rewritten)
        _assert_reexposed(path.read_bytes(), served)
        _assert_values(_samples(served.values()), 2)
    finally:
        exporter.stop()


def test_interop_types_node_exporter_never_reads_a_partial_textfile(tmp_path):
    # A writer rewrites the file as fast as it can, cycling through four
    # generations, while node_exporter is scraped: every scrape must read one
    # whole generation (a torn read shows as node_textfile_scrape_error 1 or
    # as mixed values). A writer that truncates and rewrites in place fails
    # this within a few scrapes.
    path = tmp_path / "app.prom"
    registries = {k: _registry(k) for k in (1, 2, 3, 4)}
    dm.write_to_textfile(path, registries[1])
    exporter = _textfile_exporter(tmp_path)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            for reg in registries.values():
                dm.write_to_textfile(path, reg)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    deadline = time.monotonic() + DEADLINE
    try:
        # back to back, no pause: the point is to land scrapes during writes
        while len(seen) < SCRAPES or len(set(seen)) < 3:
            assert time.monotonic() < deadline, f"generations seen in {len(seen)} scrapes: {seen}"
            samples = _samples(_node_scrape(exporter).values())
            assert ("jobs_total", ()) in samples, f"a torn read: {sorted(samples)}"
            k = int(samples[("jobs_total", ())])
            _assert_values(samples, k)
            seen.append(k)
    finally:
        stop.set()
        thread.join()
        exporter.stop()
    assert set(seen) <= set(registries)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.prom"]  # no temporary left


# -- a real Prometheus -----------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus():
    """One Prometheus scraping the same registry as text and as OpenMetrics."""
    reg = _registry(4)
    servers = [dm.start_http_server(reg, port=0, host="127.0.0.1")]
    prom = None
    try:
        servers.append(dm.start_http_server(reg, port=0, host="127.0.0.1", openmetrics=True))
        instances = [f"127.0.0.1:{s.port}" for s in servers]
        prom = Prometheus(instances, flags=["--enable-feature=exemplar-storage"])
        targets = prom.targets()
        assert sorted((t["health"], t["lastError"]) for t in targets) == [("up", "")] * 2
        yield prom, dict(zip(("text", "openmetrics"), instances))
    finally:
        if prom is not None:
            prom.stop()
        for server in servers:
            server.stop()


def _one(result):
    assert len(result) == 1, result
    return float(result[0]["value"][1])


@pytest.mark.parametrize("fmt", ["text", "openmetrics"])
def test_interop_types_prometheus_queries_every_type(prometheus, fmt):
    prom, instances = prometheus
    at = f'instance="{instances[fmt]}"'
    prom.wait_for(f"rpc_seconds_count{{{at}}}")
    assert _one(prom.query(f"up{{{at}}}")) == 1

    quantiles = {}
    for q in OBJECTIVES:
        quantiles[q] = _one(prom.query(f'rpc_seconds{{{at},quantile="{q}"}}'))
    _assert_quantiles(quantiles.__getitem__, 4)
    assert _one(prom.query(f"rpc_seconds_count{{{at}}}")) == N
    assert _one(prom.query(f"rpc_seconds_sum{{{at}}}")) == 4 * N * (N + 1) / 2

    build = prom.query(f'build_info{{{at},version="1.4"}} == 1')
    assert _one(build) == 1 and build[0]["metric"]["commit"] == "abc"
    states = {
        r["metric"]["worker_state"]: float(r["value"][1])
        for r in prom.query(f"worker_state{{{at}}}")
    }
    assert states == {"starting": 0, "ready": 1, "draining": 0}
    assert _one(prom.query(f"jobs_total{{{at}}}")) == 4
    assert _one(prom.query(f"queue_depth{{{at}}}")) == 40
    stamp = prom.query(f"last_success_seconds{{{at}}}")
    assert 0 < _one(stamp) <= stamp[0]["value"][0]  # set before Prometheus scraped it
    # which format Prometheus read shows in the counter's stored name
    own, other = ("testcounter_total", "testcounter")
    if fmt == "text":
        own, other = other, own
    assert _one(prom.query(f"{own}{{{at}}}")) == 6
    assert prom.query(f"{other}{{{at}}}") == []


def test_interop_types_prometheus_stores_openmetrics_exemplars(prometheus):
    prom, instances = prometheus
    now = time.time()

    def exemplars(series):
        def stored():
            return prom.api(
                "query_exemplars",
                query=f'{series}{{instance="{instances["openmetrics"]}"}}',
                start=now - 3600,
                end=now + 3600,
            )

        return poll(f"exemplars of {series}", stored)

    (counter,) = exemplars("jobs_total")
    assert [(e["labels"], float(e["value"])) for e in counter["exemplars"]] == [
        ({"trace_id": TRACE}, 4)
    ]
    buckets = exemplars("lat_seconds_bucket")
    assert [(b["seriesLabels"]["le"], b["exemplars"][0]["labels"]) for b in buckets] == [
        ("0.5", {"trace_id": TRACE})
    ]
    assert float(buckets[0]["exemplars"][0]["value"]) == 0.3
    # text carries no exemplars
    text = prom.api(
        "query_exemplars",
        query=f'jobs_total{{instance="{instances["text"]}"}}',
        start=now - 3600,
        end=now + 3600,
    )
    assert text == []


def test_interop_types_prometheus_keeps_openmetrics_units(prometheus):
    prom, _ = prometheus

    def both_targets():
        found = prom.api("metadata", metric="rpc_seconds").get("rpc_seconds", [])
        return found if len(found) == 2 else None

    # one metadata entry per distinct (type, help, unit): text has no unit
    entries = {(m["type"], m["help"], m["unit"]) for m in poll("metadata", both_targets)}
    assert entries == {("summary", "RPC latency", ""), ("summary", "RPC latency", "seconds")}


# -- promtool ---------------------------------------------------------------------


def test_interop_types_promtool_accepts_every_type():
    promtool = binary("promtool")
    text = dm.generate_latest(_registry(3))
    assert dm.check(text, "text").errors == []
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    output = (proc.stdout + proc.stderr).decode()
    assert proc.returncode in (0, 3), output  # 3 = lint only
    assert "error" not in output.lower(), output


# -- prometheus_client's parsers ---------------------------------------------------


def test_interop_types_prometheus_client_text_parser():
    data = dm.generate_latest(_registry(3)).decode()
    assert dm.check(data, "text").errors == []
    families = {f.name: f for f in text_families(data)}
    # prometheus_client names a counter family without its _total
    types = {name: families[name].type for name in ("jobs", "testcounter", "rpc_seconds")}
    assert types == {"jobs": "counter", "testcounter": "counter", "rpc_seconds": "summary"}
    assert {families[n].type for n in ("build_info", "host_info", "worker_state", "features")} == {
        "gauge"
    }
    assert families["rpc_seconds"].documentation == "RPC latency"
    assert families["python_info"].samples[0].labels["implementation"]
    _assert_values(_samples(families.values()), 3, total=True)


def test_interop_types_prometheus_client_openmetrics_parser():
    data = dm.generate_latest(_registry(3), format="openmetrics").decode()
    assert dm.check(data, "openmetrics").errors == []
    families = {f.name: f for f in openmetrics_families(data)}
    kinds = {
        name: (families[name].type, families[name].unit)
        for name in ("jobs", "rpc_seconds", "lat_seconds", "temperature_celsius", "build")
    }
    kinds.update((n, (families[n].type, families[n].unit)) for n in ("worker_state", "features"))
    assert kinds == {
        "jobs": ("counter", ""),
        "rpc_seconds": ("summary", "seconds"),
        "lat_seconds": ("histogram", "seconds"),
        "temperature_celsius": ("gauge", "celsius"),
        "build": ("info", ""),
        "worker_state": ("stateset", ""),
        "features": ("stateset", ""),
    }
    _assert_values(_samples(families.values()), 3, total=True)

    (jobs,) = families["jobs"].samples
    assert (jobs.exemplar.labels, jobs.exemplar.value) == ({"trace_id": TRACE}, 3)
    assert jobs.exemplar.timestamp is not None
    exemplars = {
        s.labels["le"]: (s.exemplar.labels, s.exemplar.value)
        for s in families["lat_seconds"].samples
        if s.exemplar is not None
    }
    assert exemplars == {"0.5": ({"trace_id": TRACE}, 0.3)}


def test_interop_types_prometheus_client_openmetrics_parser_reads_created():
    before = time.time()
    data = dm.generate_latest(_registry(2, created=True), format="openmetrics").decode()
    after = time.time()
    assert dm.check(data, "openmetrics").errors == []
    families = {f.name: f for f in openmetrics_families(data)}
    created = {
        name: [s.value for s in families[name].samples if s.name == f"{name}_created"]
        for name in ("jobs", "lat_seconds", "rpc_seconds")
    }
    assert [len(v) for v in created.values()] == [1, 1, 1], created
    assert all(before <= v[0] <= after for v in created.values()), (before, created, after)
    per_method = [s for s in families["req_seconds"].samples if s.name == "req_seconds_created"]
    assert sorted(s.labels["method"] for s in per_method) == ["get", "put"]
    _assert_values(_samples(families.values()), 2, total=True)
