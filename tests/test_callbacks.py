"""Exposition-text callbacks in a scrape: valid text byte for byte, invalid or repeated
family blocks dropped (one ERROR line per callback and reason per process, counted), the
served exposition always valid in both formats; prometheus_client's ``_created`` gauges in
OpenMetrics; the registry's process-wide counts (``registry.stats()``)."""

import json
import logging
import subprocess
import sys
import threading

import prometheus_client
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import dyn_metrics as dm
from dyn_metrics import registry
from dyn_metrics.registry import callbacks
from tests.goldens import VLLM_TEXT

NATIVE = (
    "# HELP lat_seconds Latency\n# TYPE lat_seconds histogram\n"
    'lat_seconds_bucket{le="1"} 1\nlat_seconds_bucket{le="+Inf"} 1\n'
    "lat_seconds_sum 0.5\nlat_seconds_count 1\n"
    "# HELP native_total Native counter\n# TYPE native_total counter\nnative_total 7\n"
    "# HELP temp Temperature\n# TYPE temp gauge\ntemp 21.5\n"
)


def _native_registry():
    reg = dm.Registry()
    reg.register(dm.Counter("native_total", "Native counter")).inc_by(7)
    reg.register(dm.Histogram("lat_seconds", "Latency", buckets=[1])).observe(0.5)
    reg.register(dm.Gauge("temp", "Temperature")).set(21.5)
    return reg


def _prometheus_client_text():
    r = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("vllm:prompt_tokens", "Prompt tokens", registry=r).inc(5)
    h = prometheus_client.Histogram("vllm:e2e_seconds", "E2E", ["model"], buckets=[1], registry=r)
    h.labels("llama").observe(0.5)
    h.labels("qwen").observe(2)
    prometheus_client.Gauge("vllm:running", "Running", registry=r).set(3)
    return prometheus_client.generate_latest(r).decode()


PC_TEXT = _prometheus_client_text()

SPLIT = '# TYPE x gauge\nx 1\ny 2\nx{a="1"} 3\n'

ROWS = [
    # (id, callback texts, served after the native families, reasons logged, dropped blocks)
    # -- valid text: byte for byte, Dynamo's join rule
    ("engine_text", [VLLM_TEXT], VLLM_TEXT, set(), 0),
    ("prometheus_client_text", [PC_TEXT], PC_TEXT, set(), 0),
    ("comments_only", ["# an engine comment\n"], "# an engine comment\n", set(), 0),
    ("joined_without_newline", ["a 1", "b 2\n"], "a 1\nb 2\n", set(), 0),
    ("missing_final_newline", ["a 1\nb 2"], "a 1\nb 2\n", set(), 0),
    ("same_stem_other_type_is_fine", ["# TYPE native gauge\nnative 1\n"], None, set(), 0),
    ("gauge_beside_histogram_suffix", ["lat_seconds_max 3\n"], None, set(), 0),
    # -- does not parse: that block goes, the rest stays
    ("garbage", ["this is { not metrics\n"], "", {"invalid"}, 1),
    ("garbage_between_valid", ["a 1\n}{ x\nb 2\n"], "a 1\nb 2\n", {"invalid"}, 1),
    ("garbage_callback_then_valid", ["\x00\x01", "b 2\n"], "b 2\n", {"invalid"}, 1),
    ("duplicate_series", ["d 1\nd 2\nok 1\n"], "ok 1\n", {"invalid"}, 1),
    ("crlf", ["a 1\r\nok 1\n"], "ok 1\n", {"invalid"}, 1),
    ("help_after_samples", ["x 1\n# HELP x late\nok 1\n"], "ok 1\n", {"invalid"}, 1),
    ("bad_histogram", ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n'], "", {"invalid"}, 1),
    ("invalid_last_line_without_newline", ["a 1\nb", "c 3"], "a 1\nc 3\n", {"invalid"}, 1),
    # -- repeats a name already in the exposition
    ("family_split_in_two", [SPLIT], "# TYPE x gauge\nx 1\ny 2\n", {"duplicate"}, 1),
    ("type_conflicts_native", ["# TYPE temp counter\ntemp 1\nok 1\n"], "ok 1\n", {"duplicate"}, 1),
    ("same_as_native", ['# TYPE temp gauge\ntemp{a="1"} 2\n'], "", {"duplicate"}, 1),
    ("native_histogram_sample", ["lat_seconds_bucket 1\nok 1\n"], "ok 1\n", {"duplicate"}, 1),
    ("help_only_repeat", ["# HELP temp other\n"], "", {"duplicate"}, 1),
    ("two_callbacks_same_family", ["e 1\n", 'e{b="2"} 2\n'], "e 1\n", {"duplicate"}, 1),
    ("same_text_twice", [VLLM_TEXT, VLLM_TEXT], VLLM_TEXT, {"duplicate"}, 1),
    ("both_reasons", ["a 1\n{\na 2\n"], "a 1\n", {"invalid", "duplicate"}, 2),
]


def _errors(caplog):
    return [
        r for r in caplog.records if r.name.startswith("dyn_metrics") and r.levelno >= logging.ERROR
    ]


def _scrape_rows(rows):
    return pytest.mark.parametrize(
        "texts, served, reasons, dropped", [r[1:] for r in rows], ids=[r[0] for r in rows]
    )


@_scrape_rows(ROWS)
def test_text_scrape_serves_valid_blocks_and_drops_the_rest(
    caplog, texts, served, reasons, dropped
):
    reg = _native_registry()
    for text in texts:
        reg.add_expfmt_callback(lambda text=text: text)
    before = registry.stats()["dropped_families"]
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        scrape = reg.prometheus_expfmt()
    assert scrape.startswith(NATIVE)
    expected = "".join(t if t.endswith("\n") else t + "\n" for t in texts if t)
    assert scrape[len(NATIVE) :] == (expected if served is None else served)
    assert dm.check(scrape, "text").errors == []
    assert registry.stats()["dropped_families"] - before == dropped
    logged = _errors(caplog)
    assert len(logged) == len(reasons)
    for reason in reasons:
        word = {"invalid": "not valid text format", "duplicate": "repeating a name"}[reason]
        assert sum(word in r.getMessage() for r in logged) == 1


# Rows where OpenMetrics must drop more: a gauge "native" and counter "native_total" are
# both family "native" there (the native family wins).
OPENMETRICS_ONLY = {"same_stem_other_type_is_fine": ({"duplicate"}, 1, {"native"})}


@_scrape_rows(ROWS)
def test_openmetrics_scrape_keeps_the_same_families_and_is_valid(
    request, caplog, texts, served, reasons, dropped
):
    row = request.node.callspec.id
    reasons, dropped, gone = OPENMETRICS_ONLY.get(row, (reasons, dropped, set()))
    reg = _native_registry()
    for text in texts:
        reg.add_expfmt_callback(lambda text=text: text)
    before = registry.stats()["dropped_families"]
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        scrape = reg.openmetrics_expfmt()
    assert dm.check(scrape, "openmetrics").errors == []
    assert registry.stats()["dropped_families"] - before == dropped
    assert len(_errors(caplog)) == len(reasons)
    # The families served in text are the ones served in OpenMetrics.
    text_families = dm.parse(reg.prometheus_expfmt(), "text")
    om_families = dm.parse(scrape, "openmetrics")
    assert {f.name for f in om_families} == {f.name for f in text_families} - gone - {
        f.name for f in text_families if f.name.endswith("_created") and f.type == "gauge"
    }
    assert {"native_total", "lat_seconds", "temp"} <= {f.name for f in om_families}


def test_drops_are_logged_once_per_callback_and_reason_but_counted_every_scrape(caplog):
    reg = _native_registry()
    reg.add_expfmt_callback(lambda: "# TYPE temp counter\ntemp 1\n{\nok 1\n")
    other = lambda: "{\n"  # noqa: E731
    reg.add_expfmt_callback(other)
    before = registry.stats()["dropped_families"]
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        scrapes = [reg.prometheus_expfmt() for _ in range(3)] + [reg.openmetrics_expfmt()]
    assert len(set(scrapes[:3])) == 1 and scrapes[0] == NATIVE + "ok 1\n"
    assert registry.stats()["dropped_families"] - before == 3 * 4
    messages = [r.getMessage() for r in _errors(caplog)]
    assert len(messages) == 3  # (first, duplicate), (first, invalid), (other, invalid)
    assert sum(repr(other) in m for m in messages) == 1


def test_steady_scrape_parses_callback_text_once(monkeypatch):
    calls = []
    real = callbacks._parse

    def counting(text):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(callbacks, "_parse", counting)
    reg = _native_registry()
    state = {"n": 1}
    # A new but equal string on every call, as an engine renders it.
    reg.add_expfmt_callback(lambda: "".join(["# TYPE q gauge\nq ", str(state["n"]), "\n"]))
    reg.add_expfmt_callback(lambda: VLLM_TEXT)
    for _ in range(3):
        assert reg.prometheus_expfmt() == NATIVE + "# TYPE q gauge\nq 1\n" + VLLM_TEXT
        reg.openmetrics_expfmt()
    assert len(calls) == 2
    state["n"] = 2
    assert reg.prometheus_expfmt().endswith("q 2\n" + VLLM_TEXT)
    assert len(calls) == 3


def test_names_selection_still_cuts_screened_callback_text():
    reg = _native_registry()
    reg.add_expfmt_callback(lambda: SPLIT + VLLM_TEXT)
    assert reg.prometheus_expfmt(names=["x"]) == "\n# TYPE x gauge\nx 1\n"
    assert reg.prometheus_expfmt(names=["temp", "vllm_num_requests_running"]) == (
        "# HELP temp Temperature\n# TYPE temp gauge\ntemp 21.5\n" + VLLM_TEXT
    )
    om = reg.openmetrics_expfmt(names=["x", "native_total"])
    assert [f.name for f in dm.parse(om, "openmetrics")] == ["native_total", "x"]


# -- split_blocks: the cut the screening uses ------------------------------------------

BLOCK_ROWS = [
    # (text, blocks)
    ("", []),
    ("a 1", ["a 1"]),
    ("\n\na 1\n", ["\n\n", "a 1\n"]),
    ("a 1\nb 2\n", ["a 1\n", "b 2\n"]),
    (
        "# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\nb 2",
        ["# HELP a h\n# TYPE a gauge\na 1\n", "# HELP b h\nb 2"],
    ),
    (
        "# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\nx 1\n",
        ["# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n", "x 1\n"],
    ),
    ('a{v="x\u2028y"} 1\nb 2\n', ['a{v="x\u2028y"} 1\n', "b 2\n"]),  # \n only ends a line
    ("a 1\n# a comment\nb 2\n", ["a 1\n# a comment\n", "b 2\n"]),
]


@pytest.mark.parametrize("text, blocks", BLOCK_ROWS)
def test_split_blocks(text, blocks):
    assert callbacks.split_blocks(text) == blocks
    assert "".join(blocks) == text


# -- prometheus_client's _created gauges in OpenMetrics ---------------------------------


def test_openmetrics_keeps_a_prometheus_client_counter_and_its_created_time():
    r = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("vllm:prompt_tokens", "Prompt tokens", registry=r).inc(5)
    text = prometheus_client.generate_latest(r).decode()
    assert "# TYPE vllm:prompt_tokens_created gauge\n" in text  # what the bug needs
    reg = dm.Registry()
    reg.add_expfmt_callback(lambda: text)
    scrape = reg.openmetrics_expfmt()
    assert dm.check(scrape, "openmetrics").errors == []
    (family,) = dm.parse(scrape, "openmetrics")
    assert (family.name, family.type) == ("vllm:prompt_tokens_total", "counter")
    assert [s.name for s in family.samples] == [
        "vllm:prompt_tokens_total",
        "vllm:prompt_tokens_created",
    ]
    assert family.samples[0].value == 5
    assert reg.prometheus_expfmt() == "\n" + text  # text: byte for byte


def test_openmetrics_folds_created_gauges_of_every_prometheus_client_type():
    reg = dm.Registry()
    reg.add_expfmt_callback(lambda: PC_TEXT)
    scrape = reg.openmetrics_expfmt()
    assert dm.check(scrape, "openmetrics").errors == []
    families = {f.name: f for f in dm.parse(scrape, "openmetrics")}
    assert sorted(families) == ["vllm:e2e_seconds", "vllm:prompt_tokens_total", "vllm:running"]
    created = [s for s in families["vllm:e2e_seconds"].samples if s.name.endswith("_created")]
    assert [dict(s.labels) for s in created] == [{"model": "llama"}, {"model": "qwen"}]


CREATED_ROWS = [
    # (id, callback text, families served in OpenMetrics): the counter always wins
    (
        "labels_do_not_fit",
        '# TYPE c_total counter\nc_total{a="1"} 1\n# TYPE c_created gauge\nc_created{a="2"} 9\n',
        ["c_total"],
    ),
    (
        "counter_already_has_created",
        "# TYPE c_total counter\nc_total 1\nc_created 3\n# TYPE c_created gauge\nc_created 9\n",
        None,  # c_created (untyped) repeats the gauge's name in text: the gauge is dropped there
    ),
    ("created_without_counter", "# TYPE c_created gauge\nc_created 9\n", ["c_created"]),
]


@pytest.mark.parametrize(
    "text, names", [r[1:] for r in CREATED_ROWS], ids=[r[0] for r in CREATED_ROWS]
)
def test_openmetrics_created_gauge_that_does_not_fit_leaves_the_counter(text, names):
    reg = dm.Registry()
    reg.add_expfmt_callback(lambda: text)
    scrape = reg.openmetrics_expfmt()
    assert dm.check(scrape, "openmetrics").errors == []
    assert dm.check(reg.prometheus_expfmt(), "text").errors == []
    served = [f.name for f in dm.parse(scrape, "openmetrics")]
    if names is not None:
        assert served == names
    else:
        assert "c_total" in served


def test_native_counter_wins_over_callback_created_gauge():
    reg = dm.Registry(created=True)
    reg.register(dm.Counter("req_total", "Requests")).inc()
    reg.add_expfmt_callback(lambda: "# TYPE req_created gauge\nreq_created 9\n")
    scrape = reg.openmetrics_expfmt()
    assert dm.check(scrape, "openmetrics").errors == []
    (family,) = dm.parse(scrape, "openmetrics")
    assert family.name == "req_total"
    assert [s.value for s in family.samples if s.name == "req_created"] != [9]


# -- registry.stats(): counts for the self metrics --------------------------------------


def test_stats_shape():
    counts = registry.stats()
    assert set(counts) == {"dropped_families", "callback_errors"}
    assert set(counts["callback_errors"]) == {"update", "expfmt", "typed", "function"}


def _raise():
    raise RuntimeError("engine down")


def test_stats_count_callback_errors_by_kind(caplog):
    reg = dm.Registry()
    reg.add_update_callback(_raise)
    reg.add_update_callback(lambda: None)
    reg.add_expfmt_callback(_raise)
    reg.add_expfmt_callback(lambda: 5)
    reg.add_expfmt_callback(lambda: "a 1\n\udcff")
    reg.add_expfmt_callback(lambda: "ok 1\n")
    before = registry.stats()["callback_errors"]
    reg.prometheus_expfmt()
    reg.openmetrics_expfmt()
    after = registry.stats()["callback_errors"]
    assert {k: after[k] - before[k] for k in after} == {
        "update": 2,
        "expfmt": 6,
        "typed": 0,
        "function": 0,
    }


def test_stats_lose_no_count_across_threads():
    reg = dm.Registry()
    reg.add_update_callback(_raise)
    before = registry.stats()["callback_errors"]["update"]
    start = threading.Barrier(8)
    logging.getLogger("dyn_metrics").disabled = True
    try:

        def scrape():
            start.wait()
            for _ in range(200):
                reg.execute_update_callbacks()

        threads = [threading.Thread(target=scrape) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        logging.getLogger("dyn_metrics").disabled = False
    assert registry.stats()["callback_errors"]["update"] - before == 8 * 200


# -- whatever the engines return, the served exposition is valid -------------------------

_LINES = [
    "# HELP temp Other help\n",
    "# TYPE temp counter\n",
    "temp 1\n",
    "# TYPE x gauge\n",
    "# TYPE x histogram\n",
    "# HELP x help\n",
    'x{a="1"} 1\n',
    "x 2\n",
    'x_bucket{le="1"} 1\n',
    'x_bucket{le="+Inf"} 2\n',
    "x_sum 3\n",
    "x_count 2\n",
    "x_total 4\n",
    "# TYPE x_total counter\n",
    "# TYPE x_created gauge\n",
    "x_created 1.7e9\n",
    "lat_seconds_count 1\n",
    "native 1\n",
    "y NaN\n",
    'y{b="\\\\"} -Inf\n',
    "# just a comment\n",
    "\n",
    "garbage {{{\n",
    "z 1 1700000000000\n",
    "z 1\r\n",
    "z",
]


@given(st.lists(st.lists(st.sampled_from(_LINES), max_size=8).map("".join), max_size=3))
@example([SPLIT, "x 1"])
@example(["# TYPE x histogram\n", 'x_bucket{le="+Inf"} 2\nx_count 2\nx_sum 3\n'])
@example(['# TYPE x histogram\nx_bucket{le="+Inf"} 2\nx_count 2\n'])  # no _sum: fine in text
def test_served_exposition_is_always_valid(texts):
    reg = _native_registry()
    for text in texts:
        reg.add_expfmt_callback(lambda text=text: text)
    logging.getLogger("dyn_metrics").disabled = True
    try:
        text, om = reg.prometheus_expfmt(), reg.openmetrics_expfmt()
    finally:
        logging.getLogger("dyn_metrics").disabled = False
    assert text.startswith(NATIVE)
    assert dm.check(text, "text").errors == []
    assert dm.check(om, "openmetrics").errors == []
    valid = [t for t in texts if dm.check(t if t.endswith("\n") else t + "\n", "text").ok]
    if (
        len(texts) == 1
        and valid
        and not {f.name for f in dm.parse(valid[0] + "\n", "text")}
        & {"temp", "native_total", "lat_seconds", "lat_seconds_count", "lat_seconds_bucket"}
    ):
        assert text[len(NATIVE) :].rstrip("\n") == texts[0].rstrip("\n")  # byte for byte


SIGNAL_SCRAPES = """
import json, signal, sys
import dyn_metrics as dm
from dyn_metrics import registry

# Callbacks only: what the metrics take in a handler is tests/metrics/test_reentrancy.py.
reg = dm.Registry()
def fail():
    raise RuntimeError("engine down")
reg.add_update_callback(fail)
reg.add_expfmt_callback(lambda: "a 1\\n{\\na 2\\nok 1\\n")  # one invalid, one repeated
import logging
logging.disable(logging.CRITICAL)
reg.openmetrics_expfmt()  # the OpenMetrics encoder is imported on first use: not in a handler
before = registry.stats()
calls = 0
def handler(*_):
    global calls
    calls += 1
    assert reg.prometheus_expfmt().endswith("ok 1\\n")
    reg.openmetrics_expfmt()
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
main = 0
while calls < 200:
    assert reg.prometheus_expfmt().endswith("ok 1\\n")
    reg.openmetrics_expfmt()
    main += 1
signal.setitimer(signal.ITIMER_REAL, 0, 0)
after = registry.stats()
print(json.dumps({
    "scrapes": 2 * (main + calls),
    "update": after["callback_errors"]["update"] - before["callback_errors"]["update"],
    "dropped": after["dropped_families"] - before["dropped_families"],
}))
"""


def test_scrapes_from_a_signal_handler_mid_scrape_neither_deadlock_nor_lose_counts():
    out = subprocess.run(
        [sys.executable, "-c", SIGNAL_SCRAPES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    result = json.loads(out)
    assert result["update"] == result["scrapes"]
    assert result["dropped"] == 2 * result["scrapes"]


UTF8_TEXT = (
    '# TYPE "my.metric" gauge\n{"my.metric",l="v"} 1\n'
    '# TYPE quoted_label gauge\nquoted_label{"a.b"="x"} 2\n'
    "# TYPE plain gauge\nplain 3\n"
)


def test_quoted_utf8_names_pass_in_text_and_are_left_out_of_openmetrics(caplog):
    reg = dm.Registry()
    reg.add_expfmt_callback(lambda: UTF8_TEXT)
    # Text: byte for byte, after the newline Dynamo puts after an empty native part.
    assert reg.prometheus_expfmt() == "\n" + UTF8_TEXT
    before = registry.stats()["dropped_families"]
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        served = reg.openmetrics_expfmt()
    assert served == "# TYPE plain gauge\nplain 3\n# EOF\n"  # parsed ints stay ints
    assert dm.check(served, "openmetrics").ok
    assert registry.stats()["dropped_families"] - before == 2
    messages = [r.getMessage() for r in _errors(caplog)]
    assert len(messages) == 1  # once per (callback, reason)
    assert "OpenMetrics cannot express" in messages[0] and "quoted (UTF-8)" in messages[0]


NEGATIVE_COUNTER_ROWS = [
    # (callback text): valid text 0.0.4, a counter OpenMetrics cannot express
    "# TYPE r counter\nr -1\n",
    "# TYPE r_total counter\nr_total NaN\n",
]


@pytest.mark.parametrize("text", NEGATIVE_COUNTER_ROWS)
def test_negative_or_nan_callback_counter_is_left_out_of_openmetrics(text):
    reg = dm.Registry()
    reg.register(dm.Gauge("g", "G")).set(1)
    reg.add_expfmt_callback(lambda: text)
    assert reg.prometheus_expfmt().endswith(text)  # text keeps it, byte for byte
    served = reg.openmetrics_expfmt()
    assert dm.check(served, "openmetrics").ok
    assert "# TYPE r counter" not in served and "# TYPE g gauge" in served
