"""The README's Python examples run, and its first two commands are the project's."""

import pathlib
import re

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_first_commands_are_the_demo_and_the_tests():
    commands = re.search(r"```sh\n(.*?)```", README, re.S).group(1).splitlines()
    assert commands[0].startswith("python -m dyn_metrics demo")
    ci = (pathlib.Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    test_command = commands[1].split("#")[0].strip()
    assert test_command in ci.splitlines()


def test_readme_hierarchy_example_prints_what_it_says(monkeypatch, capsys):
    monkeypatch.delenv("DYN_SYSTEM_PORT", raising=False)
    exec(BLOCKS[0], {})
    out = capsys.readouterr().out
    assert (
        'dynamo_component_requests_total{dynamo_component="backend",dynamo_endpoint='
        '"generate",dynamo_namespace="dynamo",model="llama",worker_id="ff"} 1\n'
    ) in out
    assert dm.check(out, "text").ok


def test_readme_registry_example_runs(capsys):
    exec(BLOCKS[1], {})  # it imports what it needs
    out = capsys.readouterr().out
    assert 'jobs_total{queue="a"} 1\n' in out
    assert 'lat_seconds_count{route="/v1/chat"} 1\n' in out


def test_readme_more_types_example_runs(monkeypatch, capsys, tmp_path):
    written = []
    monkeypatch.setattr(dm, "write_to_textfile", lambda path, source=None: written.append(path))
    before = (list(dm.REGISTRY._collectors), list(dm.REGISTRY._custom))
    try:
        exec(BLOCKS[2], {})
        out = capsys.readouterr().out
    finally:
        for collector in dm.REGISTRY._collectors + [c.target for c in dm.REGISTRY._custom]:
            if collector not in before[0] and all(c.target is not collector for c in before[1]):
                dm.REGISTRY.unregister(collector)
    assert 'rpc_seconds{quantile="0.5"} 0.2\n' in out
    assert 'build_info{commit="abc",version="1.2"} 1\n' in out
    assert 'worker_state{worker_state="ready"} 1\n' in out
    assert "tokens_total 128\n" in out and "process_cpu_seconds_total " in out
    assert dm.check(out, "text").ok
    assert written == ["/var/lib/node_exporter/textfile/app.prom"]


def test_readme_property_test_example_runs():
    namespace = {"render_my_metrics": _render}
    exec(next(b for b in BLOCKS if "assert_valid_exposition" in b), namespace)
    namespace["test_my_exporter_survives_any_model_name"]()


def _render(model):
    reg = dm.Registry()
    reg.register(dm.GaugeVec("queue", "Queue", ["model"])).with_label_values(model).set(1)
    return reg.prometheus_expfmt()


def test_readme_examples_need_no_server():
    assert SystemConfig().enabled is False


def test_readme_health_advice_holds(monkeypatch):
    monkeypatch.delenv("DYN_SYSTEM_STARTING_HEALTH_STATUS", raising=False)
    drt = dm.DistributedRuntime(config=SystemConfig())
    assert drt.health.snapshot()[0] is False  # notready until the worker says so
    drt.health.set_status(True)
    assert drt.health.snapshot()[0] is True
    ready = dm.DistributedRuntime(config=SystemConfig(starting_health_status="ready"))
    assert ready.health.snapshot()[0] is True
