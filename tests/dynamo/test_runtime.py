"""DistributedRuntime: the uptime gauge, the worker id, the server switch, render_exposition."""

import re
import time

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidValueError
from tests.goldens import build_345, mask_uptime, read_golden, runtime, uptime_value


def test_runtime_scrape_uptime_is_positive_and_grows():
    drt = build_345()[0]
    time.sleep(0.011)
    first = drt.metrics().prometheus_expfmt()
    assert uptime_value(first) > 0.01
    time.sleep(0.002)
    second = drt.metrics().prometheus_expfmt()
    assert uptime_value(second) > uptime_value(first)
    assert mask_uptime(first) == mask_uptime(second) == read_golden("scrape_runtime")


def test_runtime_uptime_has_worker_id():
    text = runtime(255).metrics().prometheus_expfmt()
    assert re.search(r'^dynamo_component_uptime_seconds\{worker_id="ff"\} \S+$', text, re.M)
    assert text.startswith(
        "# HELP dynamo_component_uptime_seconds Total uptime of the DistributedRuntime in seconds\n"
    )


@pytest.mark.parametrize("bad", [-1, 1.5, "ff", True])
def test_runtime_rejects_bad_worker_id(bad):
    with pytest.raises(InvalidValueError) as info:
        runtime(bad)
    assert str(info.value).startswith("worker_id must be a non-negative int")


def test_runtime_without_port_starts_no_server(monkeypatch):
    monkeypatch.delenv("DYN_SYSTEM_PORT", raising=False)
    drt = dm.DistributedRuntime()
    try:
        assert drt.system_server is None
    finally:
        drt.shutdown()


# -- render_exposition: what the system server serves --------------------------------------


def test_render_exposition_text_is_the_runtime_scrape():
    drt = build_345()[0]
    expected = read_golden("scrape_runtime")
    assert mask_uptime(drt.render_exposition()) == expected
    assert mask_uptime(drt.render_exposition("text", None)) == expected


def test_render_exposition_openmetrics_ends_with_eof():
    drt = build_345()[0]
    text = drt.render_exposition("openmetrics")
    assert "# TYPE dynamo_component_testcounter counter\n" in text
    assert text.endswith("# EOF\n")


@pytest.mark.parametrize("fmt", ["", "TEXT", "proto", None])
def test_render_exposition_rejects_other_formats(fmt):
    with pytest.raises(InvalidValueError) as info:
        runtime().render_exposition(fmt)
    assert str(info.value) == (f"format must be 'text', 'openmetrics' or 'protobuf', got {fmt!r}")


def test_render_exposition_protobuf_is_bytes_of_the_same_families():
    drt = runtime()
    drt.namespace("ns").metrics.create_histogram("ttft_seconds", "TTFT", native=True).observe(2)
    body = drt.render_exposition("protobuf")
    assert isinstance(body, bytes)
    assert b"dynamo_component_ttft_seconds" in body and b"dynamo_component_uptime_seconds" in body


@pytest.mark.parametrize("fmt", ["text", "openmetrics"])
def test_render_exposition_keeps_only_the_selected_families(fmt):
    drt = build_345()[0]
    text = drt.render_exposition(fmt, frozenset({"dynamo_component_testgauge"}))
    families = re.findall(r"^# TYPE (\S+) ", text, re.M)
    assert families == ["dynamo_component_testgauge"]
    assert drt.render_exposition(fmt, frozenset()) in ("", "# EOF\n")
