"""register_engine_metrics_callback: an engine's metrics served through the hierarchy."""

import logging
import pathlib

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
)

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.dynamo.engine import register_engine_metrics_callback as register
from dyn_metrics.dynamo.environment import parse_const_labels
from dyn_metrics.errors import ConfigError, InvalidLabelsError, InvalidValueError
from dyn_metrics.multiprocess import PrometheusFilesReader
from tests.multiprocess import write_client_dir

HIERARCHY = {
    "dynamo_namespace": "dyn",
    "dynamo_component": "backend",
    "dynamo_endpoint": "generate",
}


def engine_registry():
    """A vLLM-like prometheus_client registry: every type, colon names."""
    reg = CollectorRegistry()
    requests = Counter(
        "vllm:request_success", "Finished requests", ["finished_reason"], registry=reg
    )
    requests.labels("stop").inc(3, exemplar={"trace_id": "abc"})
    Gauge("vllm:num_requests_running", "Running requests", registry=reg).set(4)
    Gauge("vllm:uptime", "Uptime", unit="seconds", registry=reg).set(12.5)
    ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT", ["model_name"], registry=reg)
    ttft.labels("engine-model").observe(0.3)
    Summary("vllm:e2e_seconds", "End to end", registry=reg).observe(1.5)
    Info("vllm:build", "Build", registry=reg).info({"version": "0.9"})
    Enum("engine_state", "State", states=["starting", "ready"], registry=reg).state("ready")
    Gauge("python_gc_things", "Not the engine's", registry=reg).set(1)
    return reg


def endpoint(worker_id=255, config=None):
    drt = dm.DistributedRuntime(worker_id=worker_id, config=config or SystemConfig())
    return drt, drt.namespace("dyn").component("backend").endpoint("generate")


def families(body, fmt="text"):
    return {f.name: f for f in dm.parse(body, format=fmt)}


def scrape(drt, fmt="text"):
    body = drt.render_exposition(fmt)
    assert dm.check(body, format=fmt).errors == []
    return body


def test_every_type_passes_through_with_hierarchy_labels():
    drt, ep = endpoint()
    register(ep, engine_registry())
    got = families(scrape(drt))
    types = {name: f.type for name, f in got.items() if name != "dynamo_component_uptime_seconds"}
    assert types == {
        "vllm:request_success_total": "counter",
        "vllm:num_requests_running": "gauge",
        "vllm:uptime_seconds": "gauge",
        "vllm:time_to_first_token_seconds": "histogram",
        "vllm:e2e_seconds": "summary",
        "vllm:build_info": "gauge",
        "engine_state": "gauge",
        "python_gc_things": "gauge",
    }
    for name in types:
        for sample in got[name].samples:
            labels = dict(sample.labels)
            assert {k: labels[k] for k in HIERARCHY} == HIERARCHY, sample
            assert labels["worker_id"] == "ff"
    counter = got["vllm:request_success_total"].samples
    assert [(s.name, dict(s.labels)["finished_reason"], s.value) for s in counter] == [
        ("vllm:request_success_total", "stop", 3)
    ]
    bucket = got["vllm:time_to_first_token_seconds"].samples[0]
    assert bucket.labels[-1][0] == "le" and dict(bucket.labels)["model_name"] == "engine-model"


def test_openmetrics_keeps_created_exemplars_and_units():
    drt, ep = endpoint()
    register(ep, engine_registry())
    body = scrape(drt, "openmetrics")
    got = families(body, "openmetrics")
    counter = got["vllm:request_success_total"]
    names = [s.name for s in counter.samples]
    assert names == ["vllm:request_success_total", "vllm:request_success_created"]
    assert counter.samples[0].exemplar.labels == (("trace_id", "abc"),)
    assert got["vllm:uptime_seconds"].unit == "seconds"
    assert got["vllm:build"].type == "info" and got["engine_state"].type == "stateset"
    assert "# TYPE vllm:request_success counter\n" in body
    assert "_created" not in scrape(drt)  # text 0.0.4 has no place for them


# include, exclude -> the engine families served
FILTERS = [
    (None, None, 8),
    (["vllm:"], None, 6),
    ("vllm:", None, 6),
    (["vllm:", "engine_"], None, 7),
    (["vllm:"], ["vllm:num_", "vllm:build"], 4),
    (None, ["python_", "process_"], 7),
    (["vllm:request_success_total"], None, 1),  # the text name, _total included
    (["nothing:"], None, 0),
    ([], [], 8),
]


@pytest.mark.parametrize(("include", "exclude", "count"), FILTERS)
def test_prefix_filters_keep_and_drop_whole_families(include, exclude, count):
    drt, ep = endpoint()
    register(ep, engine_registry(), metric_prefix_filters=include, exclude_prefixes=exclude)
    got = set(families(scrape(drt))) - {"dynamo_component_uptime_seconds"}
    assert len(got) == count, got
    prefixes = [include] if isinstance(include, str) else include or [""]
    assert all(any(n.startswith(p) for p in prefixes) for n in got)
    assert not any(n.startswith(tuple(exclude or ["\0"])) for n in got)


# kwargs, DYN_METRICS_CONST_LABELS -> labels of a plain gauge and of one with its own `model`
PRECEDENCE = [
    ({}, "", {**HIERARCHY, "worker_id": "ff"}, {"model": "src"}),
    (
        {"namespace_name": "prod", "component_name": "vllm-worker", "endpoint_name": "chat"},
        "",
        {"dynamo_namespace": "prod", "dynamo_component": "vllm-worker", "dynamo_endpoint": "chat"},
        {},
    ),
    ({"component_name": "other"}, "", {"dynamo_component": "other", "dynamo_namespace": "dyn"}, {}),
    ({"model_name": "llama"}, "", {"model": "llama", "model_name": "llama"}, {"model": "src"}),
    ({"inject_custom_labels": {"lora": "a"}}, "", {"lora": "a"}, {"lora": "a"}),
    ({"inject_custom_labels": {"team": "custom"}}, "team=env,region=eu", {"team": "custom"}, {}),
    ({}, "team=env,region=eu", {"team": "env", "region": "eu"}, {"region": "eu"}),
    ({}, "model=env", {"model": "env"}, {"model": "src"}),
    ({"model_name": "llama"}, "model=env", {"model": "llama"}, {"model": "src"}),
]


@pytest.mark.parametrize(("kwargs", "env", "plain", "own"), PRECEDENCE)
def test_label_precedence(kwargs, env, plain, own):
    """Sample labels > automatic (explicit names first) > custom > DYN_METRICS_CONST_LABELS."""
    config = SystemConfig.from_env({"DYN_METRICS_CONST_LABELS": env}, strict=True)
    drt, ep = endpoint(config=config)
    reg = CollectorRegistry()
    Gauge("plain", "Plain", registry=reg).set(1)
    Gauge("own", "Own model label", ["model"], registry=reg).labels("src").set(2)
    register(ep, reg, **kwargs)
    got = families(scrape(drt))
    plain_labels = dict(got["plain"].samples[0].labels)
    own_labels = dict(got["own"].samples[0].labels)
    assert {k: plain_labels.get(k) for k in plain} == plain
    assert {k: own_labels.get(k) for k in own} == own


def test_worker_id_is_absent_without_one():
    drt, ep = endpoint(worker_id=None)
    register(ep, engine_registry())
    labels = dict(families(scrape(drt))["vllm:num_requests_running"].samples[0].labels)
    assert labels == HIERARCHY


# Dynamo's upstream vectors for DYN_METRICS_CONST_LABELS
CONST_LABELS_OK = [
    (
        " cluster=us-west-2, team = search ,, env=prod ",
        (("cluster", "us-west-2"), ("team", "search"), ("env", "prod")),
    ),
    ("", ()),
    (" , ", ()),
    ("k=a=b", (("k", "a=b"),)),
]
CONST_LABELS_BAD = [
    "novalue",
    "=empty_name",
    "1bad=x",
    "bad-name=x",
    "__reserved=x",
    "dynamo_namespace=x",
    "dynamo_component=x",
    "dynamo_endpoint=x",
    "worker_id=1",
    "dup=1,dup=2",
    "le=1",
    "ok=1,broken",
]


@pytest.mark.parametrize(("text", "expected"), CONST_LABELS_OK)
def test_const_labels_parse(text, expected):
    assert parse_const_labels(text) == expected
    assert SystemConfig.from_env({"DYN_METRICS_CONST_LABELS": text}).const_labels == expected


@pytest.mark.parametrize("text", CONST_LABELS_BAD)
def test_bad_const_labels_are_a_config_error(text, caplog):
    with pytest.raises(ConfigError, match="DYN_METRICS_CONST_LABELS"):
        SystemConfig.from_env({"DYN_METRICS_CONST_LABELS": text}, strict=True)
    with caplog.at_level(logging.ERROR, logger="dyn_metrics.dynamo.config"):
        config = SystemConfig.from_env({"DYN_METRICS_CONST_LABELS": text})
    assert config.const_labels == ()  # ignored as a whole, as Dynamo does
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "DYN_METRICS_CONST_LABELS" in caplog.records[0].getMessage()


def test_const_labels_are_read_once_by_the_runtime(monkeypatch):
    monkeypatch.setenv("DYN_METRICS_CONST_LABELS", "cluster=prod")
    monkeypatch.delenv("DYN_SYSTEM_PORT", raising=False)
    drt = dm.DistributedRuntime()
    monkeypatch.setenv("DYN_METRICS_CONST_LABELS", "cluster=changed")
    reg = CollectorRegistry()
    Gauge("g", "G", registry=reg).set(1)
    register(drt.namespace("n").component("c").endpoint("e"), reg)
    assert dict(families(scrape(drt))["g"].samples[0].labels)["cluster"] == "prod"
    monkeypatch.setenv("DYN_METRICS_CONST_LABELS", "broken")
    with pytest.raises(ConfigError, match="'broken'"):
        dm.DistributedRuntime(strict_config=True)


def test_const_labels_config_field_is_checked():
    assert SystemConfig(const_labels=[("a", "1")]).const_labels == (("a", "1"),)
    for bad in ([("worker_id", "1")], [("a", 1)], "a=1", [("a", "1"), ("a", "2")], [("a",)]):
        with pytest.raises(ConfigError, match="const_labels"):
            SystemConfig(const_labels=bad)


BAD_INPUT = [
    ({"endpoint": "drt"}, InvalidValueError, "endpoint must be a dyn_metrics Endpoint"),
    ({"endpoint": "component"}, InvalidValueError, "endpoint must be a dyn_metrics Endpoint"),
    ({"registry": 42}, InvalidValueError, "registry must be a prometheus_client registry"),
    ({"registry": object()}, InvalidValueError, "registry must be"),
    ({"registry": "/no/such/dir"}, InvalidValueError, "multiprocess directory"),
    ({"registry": "own"}, InvalidValueError, "part of the runtime's hierarchy"),
    ({"registry": "root"}, InvalidValueError, "part of the runtime's hierarchy"),
    ({"inject_custom_labels": {"le": "1"}}, InvalidLabelsError, "'le' is reserved"),
    ({"inject_custom_labels": {"quantile": "1"}}, InvalidLabelsError, "'quantile' is reserved"),
    ({"inject_custom_labels": {"dynamo_namespace": "x"}}, InvalidLabelsError, "set automatically"),
    ({"inject_custom_labels": {"worker_id": "x"}}, InvalidLabelsError, "set automatically"),
    ({"inject_custom_labels": {"model": "x"}, "model_name": "m"}, InvalidLabelsError, "'model'"),
    ({"inject_custom_labels": {"bad-name": "x"}}, InvalidLabelsError, "not valid"),
    ({"inject_custom_labels": {"__x": "x"}}, InvalidLabelsError, "'__'"),
    ({"inject_custom_labels": {"a": 1}}, InvalidLabelsError, "string value"),
    ({"inject_custom_labels": [("a", "b")]}, InvalidLabelsError, "must be a dict"),
    ({"metric_prefix_filters": 42}, InvalidValueError, "metric_prefix_filters"),
    ({"exclude_prefixes": [b"x"]}, InvalidValueError, "exclude_prefixes"),
    ({"namespace_name": 1}, InvalidValueError, "namespace_name"),
    ({"model_name": ["m"]}, InvalidValueError, "model_name"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_INPUT)
def test_bad_input_raises_and_registers_nothing(kwargs, error, message):
    drt, ep = endpoint()
    before = scrape(drt).split("\n", 3)[3]  # past the uptime gauge
    args = {"endpoint": ep, "registry": engine_registry(), **kwargs}
    args["endpoint"] = {"drt": drt, "component": drt.namespace("dyn").component("backend")}.get(
        args["endpoint"], args["endpoint"]
    )
    args["registry"] = {"own": ep.metrics().registry, "root": drt.metrics().registry}.get(
        args["registry"] if isinstance(args["registry"], str) else None, args["registry"]
    )
    with pytest.raises(error, match=message) as info:
        register(args.pop("endpoint"), args.pop("registry"), **args)
    assert str(info.value)[0].islower()
    assert scrape(drt).split("\n", 3)[3] == before


def test_dm_registry_passes_through():
    drt, ep = endpoint()
    engine = dm.Registry(created=True)
    engine.register(dm.Counter("engine_tokens_total", "Tokens")).inc(5)
    register(ep, engine, model_name="m")
    text = families(scrape(drt))["engine_tokens_total"].samples[0]
    assert text.value == 5 and dict(text.labels)["model"] == "m"
    om = families(scrape(drt, "openmetrics"), "openmetrics")["engine_tokens_total"]
    assert [s.name for s in om.samples] == ["engine_tokens_total", "engine_tokens_created"]


def test_text_callable_passes_through_and_invalid_blocks_are_dropped(caplog):
    drt, ep = endpoint()
    text = (
        "# HELP vllm:num_requests_running Running\n# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0"} 3\n'
        '# TYPE broken histogram\nbroken_bucket{le="1"} 1\n'
    )
    register(ep, lambda: text)
    with caplog.at_level(logging.ERROR):
        got = families(scrape(drt))
        scrape(drt)
    labels = dict(got["vllm:num_requests_running"].samples[0].labels)
    assert labels["engine"] == "0" and labels["worker_id"] == "ff"
    assert "broken" not in got
    assert len([r for r in caplog.records if "broken" in r.getMessage()]) == 1


def test_openmetrics_text_callable_passes_through():
    drt, ep = endpoint()
    register(ep, lambda: "# TYPE jobs counter\njobs_total 2\njobs_created 1.5\n# EOF\n")
    om = families(scrape(drt, "openmetrics"), "openmetrics")["jobs_total"]
    assert [(s.name, s.value) for s in om.samples] == [("jobs_total", 2), ("jobs_created", 1.5)]


def test_multiprocess_directory_passes_through(tmp_path):
    write_client_dir(tmp_path)
    expected = {f.name: f for f in PrometheusFilesReader(tmp_path).families()}
    for source in (str(tmp_path), pathlib.Path(tmp_path)):
        drt, ep = endpoint()
        register(ep, source, metric_prefix_filters=["vllm:", "gauge_sum"])
        got = families(scrape(drt))
        scrape(drt, "openmetrics")
        assert set(got) - {"dynamo_component_uptime_seconds"} == {
            "vllm:request_success_total",
            "vllm:time_to_first_token_seconds",
            "gauge_sum",
        }
        for name in ("vllm:request_success_total", "vllm:time_to_first_token_seconds"):
            served = [(s.name, s.value) for s in got[name].samples]
            assert served == [(s.name, s.value) for s in expected[name].samples]
            assert all(dict(s.labels)["dynamo_endpoint"] == "generate" for s in got[name].samples)


def test_a_failing_or_invalid_engine_never_fails_the_scrape(caplog):
    drt, ep = endpoint()

    class Broken:
        def collect(self):
            raise RuntimeError("engine went away")

    reg = CollectorRegistry()
    Enum("vllm:state", "State", states=["a", "b"], registry=reg)  # label 'vllm:state': invalid
    Gauge("vllm:ok", "Fine", registry=reg).set(1)
    register(ep, Broken())
    register(ep, reg)
    with caplog.at_level(logging.ERROR):
        got = families(scrape(drt))
        scrape(drt, "openmetrics")
    assert "vllm:ok" in got and "vllm:state" not in got
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "failed" in messages and "vllm:state" in messages


def test_the_returned_collector_unregisters():
    drt, ep = endpoint()
    engine = register(ep, engine_registry())
    assert "vllm:num_requests_running" in families(scrape(drt))
    ep.metrics().registry.unregister(engine)
    assert set(families(scrape(drt))) == {"dynamo_component_uptime_seconds"}


def test_engine_values_are_read_at_every_scrape():
    drt, ep = endpoint()
    reg = CollectorRegistry()
    running = Gauge("vllm:num_requests_running", "Running", registry=reg)
    register(ep, reg)
    for value in (1, 7, 0):
        running.set(value)
        assert families(scrape(drt))["vllm:num_requests_running"].samples[0].value == value
