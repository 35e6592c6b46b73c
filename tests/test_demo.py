"""``python -m dyn_metrics demo``: the simulated worker, printed (--once) and served."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_lines(text):
    """``[(name, {label: value}, value text)]`` for every sample line; comments checked."""
    samples = []
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = _LINE.match(line)
        assert m, f"line {number} is not a sample line: {line!r}"
        labels = dict(_LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, m.group(3)))
    return samples


@pytest.fixture(scope="module")
def demo_output():
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("DYN_SYSTEM_")]:
        del env[key]
    proc = subprocess.run(
        [sys.executable, "-m", "dyn_metrics", "demo", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc


def test_demo_once_exits_zero(demo_output):
    assert demo_output.returncode == 0, demo_output.stderr
    assert demo_output.stdout.endswith("\n")


def test_demo_once_prints_dynamo_metrics(demo_output):
    samples = parse_lines(demo_output.stdout)
    names = {name for name, _, _ in samples}
    requests = [labels for name, labels, _ in samples if name == "dynamo_component_requests_total"]
    assert requests and all(labels.get("worker_id") == "1d" for labels in requests)
    assert "dynamo_frontend_requests_total" in names
    assert "dynamo_component_uptime_seconds" in names
    assert float(dict((n, v) for n, _, v in samples)["dynamo_component_uptime_seconds"]) > 0


def test_demo_once_histograms_are_consistent(demo_output):
    text = demo_output.stdout
    histograms = re.findall(r"^# TYPE (\S+) histogram$", text, re.M)
    assert histograms
    samples = parse_lines(text)
    for family in histograms:
        series = {}
        for name, labels, value in samples:
            if name not in (family + "_bucket", family + "_count"):
                continue
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            entry = series.setdefault(key, {"buckets": []})
            if name.endswith("_bucket"):
                entry["buckets"].append((labels["le"], int(value)))
            else:
                entry["count"] = int(value)
        assert series, family
        for key, entry in series.items():
            counts = [c for _, c in entry["buckets"]]
            assert entry["buckets"][-1][0] == "+Inf", (family, key)
            assert counts == sorted(counts), (family, key)
            assert entry["count"] == counts[-1], (family, key)


def test_demo_disconnected_clients_is_a_gauge_as_in_dynamo(demo_output):
    # An IntGauge in Dynamo's lib/llm/src/http/service/metrics.rs.
    assert "# TYPE dynamo_frontend_disconnected_clients gauge\n" in demo_output.stdout


def _start_demo(*args, env=None):
    """The served demo as a subprocess, and the URL it printed on its first line."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("DYN_")}
    child_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "dyn_metrics", "demo", *args],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()  # the demo prints the URL once the port is bound
    proc.first_line = line
    match = re.search(r"http://\S+/metrics", line)
    if not match:
        proc.kill()
        raise AssertionError(f"no URL in {line!r}; stderr: {proc.communicate(timeout=10)[1]}")
    return proc, match.group(0)


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers, response.read().decode()


def test_demo_serves_until_its_duration_ends():
    proc, url = _start_demo("--port", "0", "--host", "127.0.0.1", "--duration", "1")
    try:
        status, headers, body = _get(url)
        assert status == 200
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "dynamo_component_requests_total{" in body
        status, _, health = _get(url.replace("/metrics", "/health"))
        assert status == 200 and '"status":"ready"' in health
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.communicate()


def test_demo_prefers_dyn_system_port_and_exits_cleanly_on_ctrl_c():
    proc, url = _start_demo(
        "--port", "1", env={"DYN_SYSTEM_PORT": "0", "DYN_SYSTEM_HOST": "127.0.0.1"}
    )
    try:
        assert not url.endswith(":1/metrics")
        assert _get(url)[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.communicate()


def _stop(proc):
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    proc.communicate()


def test_demo_prints_the_address_it_binds():
    proc, url = _start_demo("--port", "0")  # the default bind address, 0.0.0.0
    try:
        port = url.rsplit(":", 1)[1].split("/")[0]
        assert f"listening on 0.0.0.0:{port}, metrics at http://127.0.0.1:{port}/metrics" in (
            proc.first_line
        )
        _stop(proc)
    finally:
        proc.kill()


def test_demo_openmetrics_flag_reaches_the_environments_server():
    proc, url = _start_demo(
        "--openmetrics", env={"DYN_SYSTEM_PORT": "0", "DYN_SYSTEM_HOST": "127.0.0.1"}
    )
    try:
        request = urllib.request.Request(
            url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert response.read().decode().endswith("# EOF\n")
        _stop(proc)
    finally:
        proc.kill()


@pytest.mark.parametrize("value", ["-1", "-5"])
def test_demo_negative_dyn_system_port_means_off_and_falls_back_to_port(value):
    proc, url = _start_demo("--port", "0", "--host", "127.0.0.1", env={"DYN_SYSTEM_PORT": value})
    try:
        assert _get(url)[0] == 200
        _stop(proc)
    finally:
        proc.kill()


@pytest.mark.parametrize("value", ["abc", "70000"])
def test_demo_unusable_dyn_system_port_exits_1_and_says_why(value):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYN_")}
    env["DYN_SYSTEM_PORT"] = value
    proc = subprocess.run(
        [sys.executable, "-m", "dyn_metrics", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "DYN_SYSTEM_PORT" in proc.stderr
    assert f"no server on DYN_SYSTEM_PORT={value!r}" in proc.stderr
