"""dm.REGISTRY, generate_latest and write_to_textfile (registry/sources.py), and the runtime's
``created`` / ``process_metrics`` switches."""

import os

import pytest

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig


@pytest.fixture
def default_gauge():
    gauge = dm.REGISTRY.register(dm.Gauge("sources_probe", "Probe"))
    gauge.set(3)
    yield gauge
    dm.REGISTRY.unregister(gauge)


def test_registry_is_a_registry_and_nothing_registers_itself():
    assert isinstance(dm.REGISTRY, dm.Registry)
    before = dm.generate_latest()
    dm.Counter("never_registered_total", "Not registered")
    dm.DistributedRuntime(config=SystemConfig()).metrics().create_counter("x_total", "x")
    assert dm.generate_latest() == before


def test_generate_latest_defaults_to_the_default_registry(default_gauge):
    assert (
        dm.generate_latest()
        == b"# HELP sources_probe Probe\n# TYPE sources_probe gauge\nsources_probe 3\n"
    )
    om = dm.generate_latest(format="openmetrics")
    assert om.endswith(b"sources_probe 3.0\n# EOF\n")


@pytest.mark.parametrize("kind", ["runtime", "endpoint", "facade", "registry"])
def test_generate_latest_takes_every_kind_of_source(kind):
    drt = dm.DistributedRuntime(config=SystemConfig())
    endpoint = drt.namespace("ns").component("c").endpoint("e")
    endpoint.metrics().create_intcounter("hits_total", "Hits").inc()
    source = {
        "runtime": drt,
        "endpoint": endpoint,
        "facade": endpoint.metrics(),
        "registry": endpoint.metrics().registry,
    }[kind]
    text = dm.generate_latest(source)
    assert isinstance(text, bytes)
    assert b'dynamo_component_hits_total{dynamo_component="c",dynamo_endpoint="e",' in text
    assert dm.check(text.decode(), "text").errors == []


@pytest.mark.parametrize("bad", ["json", "TEXT", "", None])
def test_generate_latest_refuses_an_unknown_format(bad):
    with pytest.raises(dm.InvalidValueError, match="format must be one of"):
        dm.generate_latest(dm.Registry(), format=bad)


def test_generate_latest_refuses_an_unknown_source():
    with pytest.raises(dm.InvalidValueError, match="^source: expected"):
        dm.generate_latest(object())


def test_write_to_textfile_writes_the_text_and_leaves_no_temporary_file(tmp_path, default_gauge):
    path = tmp_path / "app.prom"
    dm.write_to_textfile(str(path))
    assert path.read_bytes() == dm.generate_latest()
    default_gauge.set(4)
    dm.write_to_textfile(path)  # os.PathLike too; replaces the old file
    assert path.read_bytes().endswith(b"sources_probe 4\n")
    assert os.listdir(tmp_path) == ["app.prom"]


def test_write_to_textfile_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "app.prom"
    path.write_text("old\n")
    reg = dm.Registry()

    class Broken:
        def render_exposition(self, fmt, names):
            raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        dm.write_to_textfile(path, Broken())
    assert path.read_text() == "old\n"
    missing = tmp_path / "no-such-dir" / "app.prom"
    with pytest.raises(FileNotFoundError):
        dm.write_to_textfile(missing, reg)
    assert os.listdir(tmp_path) == ["app.prom"]


def test_write_to_textfile_removes_the_temporary_when_the_rename_fails(tmp_path):
    target = tmp_path / "adir.prom"
    target.mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(OSError):
        dm.write_to_textfile(target, dm.Registry())
    assert sorted(os.listdir(tmp_path)) == ["adir.prom"]


# -- DistributedRuntime(created=..., process_metrics=...) ---------------------------------


def _counter_runtime(**kwargs):
    drt = dm.DistributedRuntime(**kwargs)
    drt.namespace("ns").component("c").endpoint("e").metrics().create_counter(
        "req_total", "R"
    ).inc()
    return drt


@pytest.mark.parametrize(
    "kwargs, env, created",
    [
        ({}, {}, False),
        ({"created": True}, {}, True),
        ({}, {"DYN_METRICS_CREATED": "1"}, True),
        ({"created": False}, {"DYN_METRICS_CREATED": "true"}, False),
    ],
)
def test_created_reaches_every_registry_of_the_hierarchy(kwargs, env, created):
    drt = _counter_runtime(config=SystemConfig.from_env(env, strict=True), **kwargs)
    om = drt.render_exposition("openmetrics")
    assert ("dynamo_component_req_created{" in om) is created
    assert dm.check(om, "openmetrics").errors == []
    assert "_created" not in drt.render_exposition("text")


PROCESS_FAMILIES = [
    "process_cpu_seconds_total",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
    "python_info",
    "python_gc_objects_collected_total",
    "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
]


@pytest.mark.parametrize(
    "kwargs, env, on",
    [
        ({}, {}, False),
        ({"process_metrics": True}, {}, True),
        ({}, {"DYN_SYSTEM_PROCESS_METRICS": "1"}, True),
        ({"process_metrics": False}, {"DYN_SYSTEM_PROCESS_METRICS": "1"}, False),
    ],
)
def test_process_metrics_register_the_default_collectors_at_the_root(kwargs, env, on):
    drt = _counter_runtime(config=SystemConfig.from_env(env, strict=True), **kwargs)
    text = drt.render_exposition("text")
    for name in PROCESS_FAMILIES:
        assert (f"# TYPE {name} " in text) is on, name
    assert dm.check(text, "text").errors == []
    assert dm.check(drt.render_exposition("openmetrics"), "openmetrics").errors == []
    # Unprefixed and without the hierarchy's labels, as prometheus_client writes them.
    assert "dynamo_component_process" not in text


@pytest.mark.parametrize("var", ["DYN_METRICS_CREATED", "DYN_SYSTEM_PROCESS_METRICS"])
def test_a_bad_boolean_is_a_config_error(var):
    with pytest.raises(dm.ConfigError, match=var):
        SystemConfig.from_env({var: "maybe"}, strict=True)
