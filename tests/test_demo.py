"""``python -m dyn_metrics demo --once``: a simulated worker's exposition, end to end."""

import os
import pathlib
import re
import subprocess
import sys

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
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return proc


def test_demo_once_exits_zero(demo_output):
    assert demo_output.returncode == 0, demo_output.stderr
    assert demo_output.stdout.endswith("\n")


def test_demo_once_prints_dynamo_metrics(demo_output):
    samples = parse_lines(demo_output.stdout)
    names = {name for name, _, _ in samples}
    requests = [labels for name, labels, _ in samples
                if name == "dynamo_component_requests_total"]
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
