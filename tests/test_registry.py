"""Registry: registration rules, gather order, child registries, merging
across registries, scrape-time callbacks and their join rule, ``name[]``
selection; Dynamo's behaviour and upstream test vectors throughout."""

import logging
import math
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import dyn_metrics as dm
from dyn_metrics import registry
from dyn_metrics.errors import (
    AlreadyRegisteredError,
    DescriptorConflictError,
    InvalidValueError,
    RegistrationError,
)
from dyn_metrics.exposition import text as expfmt
from tests.goldens import REGISTRY_SCENARIOS, VLLM_TEXT, read_golden, scenario_native_and_callback


@pytest.mark.parametrize("name", sorted(REGISTRY_SCENARIOS))
def test_registry_golden(name):
    assert REGISTRY_SCENARIOS[name]().encode("utf-8") == read_golden(name).encode("utf-8")


def test_native_and_callback_matches_dynamos_upstream_text():
    assert scenario_native_and_callback() == (
        "# HELP dynamo_native_total Native counter\n"
        "# TYPE dynamo_native_total counter\n"
        "dynamo_native_total 7\n" + VLLM_TEXT
    )


# -- registration (Dynamo's duplicate-registration rules) ------------------------------


def _raises_and_unchanged(reg, collector, exc, prefix):
    before = reg.prometheus_expfmt()
    with pytest.raises(exc) as info:
        reg.register(collector)
    assert type(info.value) is exc
    assert str(info.value).startswith(prefix), str(info.value)
    assert reg.prometheus_expfmt() == before
    return info.value


def test_register_same_object_twice():
    reg = dm.Registry()
    c = reg.register(dm.Counter("c_total", "h"))
    err = _raises_and_unchanged(
        reg, c, AlreadyRegisteredError, "Duplicate metrics collector registration attempted"
    )
    assert err.existing is c and err.new is c
    assert isinstance(err, RegistrationError)


def test_register_same_name_and_const_labels():
    reg = dm.Registry()
    first = reg.register(dm.Counter("c_total", "h", {"a": "1"}))
    second = dm.Counter("c_total", "h", {"a": "1"})
    err = _raises_and_unchanged(
        reg, second, AlreadyRegisteredError, "Duplicate metrics collector registration attempted"
    )
    assert err.existing is first and err.new is second


CONFLICT_ROWS = [
    # (id, first, second): same name, different help, type or label-name set.
    # Same constant label values too (what two create_* calls on one node give):
    ("help", lambda: dm.Counter("m", "one help"), lambda: dm.Counter("m", "other help")),
    ("type", lambda: dm.Counter("m", "h"), lambda: dm.Gauge("m", "h")),
    (
        "variable_label_names",
        lambda: dm.GaugeVec("m", "h", ["a"]),
        lambda: dm.GaugeVec("m", "h", ["b"]),
    ),
    ("scalar_vs_vec", lambda: dm.Gauge("m", "h", {"a": "1"}), lambda: dm.GaugeVec("m", "h", ["a"])),
    # Different constant label values:
    (
        "help_other_const_values",
        lambda: dm.Counter("m", "one help", {"a": "1"}),
        lambda: dm.Counter("m", "other help", {"a": "2"}),
    ),
    (
        "type_other_const_values",
        lambda: dm.Counter("m", "h", {"a": "1"}),
        lambda: dm.Gauge("m", "h", {"a": "2"}),
    ),
    (
        "const_label_names",
        lambda: dm.Gauge("m", "h", {"a": "1"}),
        lambda: dm.Gauge("m", "h", {"b": "1"}),
    ),
]


@pytest.mark.parametrize(
    "first, second", [r[1:] for r in CONFLICT_ROWS], ids=[r[0] for r in CONFLICT_ROWS]
)
def test_register_conflicting_descriptor(first, second):
    reg = dm.Registry()
    reg.register(first())
    _raises_and_unchanged(
        reg,
        second(),
        DescriptorConflictError,
        "a previously registered descriptor with the same fully-qualified name",
    )


def test_register_same_name_different_const_values_merges_into_one_family():
    reg = dm.Registry()
    b = reg.register(dm.Counter("m_total", "h", {"shard": "b"}))
    a = reg.register(dm.Counter("m_total", "h", {"shard": "a"}))
    a.inc()
    b.inc_by(2)
    assert reg.prometheus_expfmt() == (
        '# HELP m_total h\n# TYPE m_total counter\nm_total{shard="a"} 1\nm_total{shard="b"} 2\n'
    )
    assert [f.name for f in reg.gather()] == ["m_total"]


def test_unregister_then_register_again():
    reg = dm.Registry()
    c = reg.register(dm.Counter("c_total", "h"))
    reg.unregister(c)
    assert reg.prometheus_expfmt() == ""
    with pytest.raises(KeyError):
        reg.unregister(c)
    reg.register(dm.Gauge("c_total", "other"))  # the name is free again


def test_gather_sorted_by_name_and_empty_families_pruned():
    reg = dm.Registry()
    for name in ("b", "a", "c"):
        reg.register(dm.Gauge(name, "h"))
    reg.register(dm.CounterVec("aa", "h", ["x"]))
    assert [f.name for f in reg.gather()] == ["a", "b", "c"]
    assert reg.has_metric_named("a")
    assert not reg.has_metric_named("aa")  # a vec with no child yet is absent (Dynamo's rule)


def test_has_metric_named_is_local_only():
    parent, child = dm.Registry(), dm.Registry()
    parent.add_child_registry(child)
    child.register(dm.Gauge("g", "h"))
    assert child.has_metric_named("g")
    assert not parent.has_metric_named("g")


# -- child registries ---------------------------------------------------------------------


def test_add_child_registry_is_idempotent():
    parent, child = dm.Registry(), dm.Registry()
    child.register(dm.Gauge("g", "h"))
    parent.add_child_registry(child)
    parent.add_child_registry(child)
    assert parent.prometheus_expfmt() == "# HELP g h\n# TYPE g gauge\ng 0\n"


def test_add_child_registry_rejects_non_registry():
    with pytest.raises(TypeError):
        dm.Registry().add_child_registry(object())


def test_registries_depth_first_preorder_each_once():
    a, b, c, d, e = (dm.Registry() for _ in range(5))
    a.add_child_registry(b)
    a.add_child_registry(c)
    b.add_child_registry(d)
    c.add_child_registry(d)  # diamond: d is visited once, under b
    c.add_child_registry(e)
    d.add_child_registry(a)  # a cycle must not loop
    assert a.registries() == [a, b, d, c, e]


def test_merge_across_registries_appends_in_traversal_order():
    parent, first, second = dm.Registry(), dm.Registry(), dm.Registry()
    parent.add_child_registry(first)
    parent.add_child_registry(second)
    second.register(dm.Counter("r_total", "h", {"ep": "a"})).inc_by(2)
    first.register(dm.Counter("r_total", "h", {"ep": "b"})).inc_by(1)
    # Registry order first, not label order.
    assert parent.prometheus_expfmt() == (
        '# HELP r_total h\n# TYPE r_total counter\nr_total{ep="b"} 1\nr_total{ep="a"} 2\n'
    )


def test_merge_duplicate_series_first_wins_with_warning(caplog):
    parent, first, second = dm.Registry(), dm.Registry(), dm.Registry()
    parent.add_child_registry(first)
    parent.add_child_registry(second)
    first.register(dm.Gauge("g", "h", {"k": "v"})).set(50)
    second.register(dm.Gauge("g", "h", {"k": "v"})).set(75)
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        text = parent.prometheus_expfmt()
    assert text == '# HELP g h\n# TYPE g gauge\ng{k="v"} 50\n'
    assert any(
        "Duplicate Prometheus series while merging" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )


@pytest.mark.parametrize(
    "second",
    [
        lambda: dm.Counter("m", "different help"),
        lambda: dm.Gauge("m", "h"),
    ],
    ids=["help", "type"],
)
def test_help_or_type_conflict_across_registries_fails_at_scrape(second):
    parent, child = dm.Registry(), dm.Registry()
    parent.add_child_registry(child)
    parent.register(dm.Counter("m", "h"))
    child.register(second())  # registration succeeds: different registries
    for scrape in (parent.prometheus_expfmt, parent.collect):
        with pytest.raises(DescriptorConflictError) as info:
            scrape()
        assert str(info.value).startswith(
            "Metric family 'm' has inconsistent help/type across sources"
        )
    assert child.prometheus_expfmt().startswith("# HELP m ")  # each alone is fine


# -- update callbacks (Dynamo's upstream vectors: 1, 10, 100 -> 111) ------------------


def test_update_callbacks_run_in_registration_order():
    reg = dm.Registry()
    counter = reg.register(dm.IntCounter("n_total", "h"))
    calls = []
    for step in (1, 10, 100):
        reg.add_update_callback(lambda step=step: (calls.append(step), counter.inc_by(step)))
    assert reg.execute_update_callbacks() == [None, None, None]
    assert counter.get() == 111
    assert calls == [1, 10, 100]
    reg.execute_update_callbacks()
    assert counter.get() == 222
    assert reg.prometheus_expfmt().endswith("\nn_total 333\n")


def test_update_callback_errors_do_not_stop_later_callbacks(caplog):
    reg = dm.Registry()
    counter = reg.register(dm.IntCounter("n_total", "h"))
    boom = RuntimeError("Simulated error")

    def fail():
        raise boom

    reg.add_update_callback(lambda: counter.inc_by(1))
    reg.add_update_callback(fail)
    reg.add_update_callback(lambda: counter.inc_by(10))
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        assert reg.execute_update_callbacks() == [None, boom, None]
    assert counter.get() == 11
    assert any("metrics update callback failed" in r.getMessage() for r in caplog.records)
    reg.execute_update_callbacks()
    assert counter.get() == 22


def test_empty_registry_runs_no_callbacks():
    reg = dm.Registry()
    assert reg.execute_update_callbacks() == []
    assert reg.execute_expfmt_callbacks() == ""
    assert reg.prometheus_expfmt() == ""


def test_raising_update_callback_is_logged_and_scrape_works(caplog):
    reg = dm.Registry()
    gauge = reg.register(dm.Gauge("g", "h"))

    def fail():
        raise ValueError("broken source")

    reg.add_update_callback(fail)
    reg.add_update_callback(lambda: gauge.set(3))
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        assert reg.prometheus_expfmt() == "# HELP g h\n# TYPE g gauge\ng 3\n"
    records = [r for r in caplog.records if r.name.startswith("dyn_metrics")]
    assert records and "metrics update callback failed" in records[0].getMessage()
    assert records[0].exc_info is not None


def test_update_callbacks_run_across_registries_in_traversal_order():
    parent, a, b = dm.Registry(), dm.Registry(), dm.Registry()
    parent.add_child_registry(a)
    parent.add_child_registry(b)
    calls = []
    b.add_update_callback(lambda: calls.append("b"))
    a.add_update_callback(lambda: calls.append("a"))
    parent.add_update_callback(lambda: calls.append("parent"))
    parent.prometheus_expfmt()
    assert calls == ["parent", "a", "b"]
    b.prometheus_expfmt()
    assert calls == ["parent", "a", "b", "b"]


def test_update_callbacks_run_before_values_are_read():
    reg = dm.Registry()
    g = reg.register(dm.Gauge("g", "h"))
    ticks = iter(range(1, 100))
    reg.add_update_callback(lambda: g.set(next(ticks)))
    assert reg.prometheus_expfmt().endswith("g 1\n")
    assert reg.prometheus_expfmt().endswith("g 2\n")


@pytest.mark.parametrize("bad", [None, 5, "text"])
def test_callbacks_must_be_callable(bad):
    reg = dm.Registry()
    for add in (reg.add_update_callback, reg.add_expfmt_callback):
        with pytest.raises(InvalidValueError) as info:
            add(bad)
        assert str(info.value).startswith("callback must be callable")


# -- expfmt callbacks and Dynamo's join rule for their texts ---------------------------

NATIVE = "# HELP native_total Native counter\n# TYPE native_total counter\nnative_total 7\n"


class Raise:
    """A callback result meaning: raise instead of returning."""


JOIN_ROWS = [
    # (id, native metrics?, callback results, expected scrape). Dynamo's join rule: a newline
    # between two texts only where the first lacks one; a last line without its newline gets
    # one at the end of the scrape (Dynamo serves it without: that is not valid text format).
    ("none", False, [], ""),
    ("only_empty", False, ["", ""], ""),
    ("lone_leading_newline", False, ["a 1\n"], "\na 1\n"),
    ("no_trailing_newline_forced", False, ["a 1"], "\na 1\n"),
    ("newline_inserted_between", False, ["a 1", "b 2"], "\na 1\nb 2\n"),
    ("no_double_newline", False, ["a 1\n", "b 2\n"], "\na 1\nb 2\n"),
    ("empty_texts_skipped", False, ["", "a 1", "", "b 2", ""], "\na 1\nb 2\n"),
    ("newline_only_text", False, ["\n"], "\n\n"),
    ("native_only", True, [], NATIVE),
    ("native_plus_text", True, ["x 1"], NATIVE + "x 1\n"),
    ("native_plus_texts", True, ["x 1", "y 2\n"], NATIVE + "x 1\ny 2\n"),
    (
        "native_failures_skipped",
        True,
        ["a 1", Raise, 5, None, b"b 2", "c 3"],
        NATIVE + "a 1\nc 3\n",
    ),
    ("failures_only", False, [Raise, None], ""),
]


def _callback(result):
    if result is Raise:

        def fail():
            raise RuntimeError("engine down")

        return fail
    return lambda: result


@pytest.mark.parametrize(
    "native, results, expected", [r[1:] for r in JOIN_ROWS], ids=[r[0] for r in JOIN_ROWS]
)
def test_expfmt_callback_join(native, results, expected):
    reg = dm.Registry()
    if native:
        reg.register(dm.Counter("native_total", "Native counter")).inc_by(7)
    for result in results:
        reg.add_expfmt_callback(_callback(result))
    assert reg.prometheus_expfmt() == expected
    assert dm.check(expected, "text").errors == []


TREE_JOIN_ROWS = [
    # (parent texts, child texts, grandchild texts, expected)
    (["a 1"], ["b 2"], [], "\na 1\nb 2\n"),
    ([], ["b 2"], ["c 3\n"], "\nb 2\nc 3\n"),
    (["a 1\n"], [""], ["c 3"], "\na 1\nc 3\n"),
    (["a 1", "b 2"], ["c 3"], ["d 4"], "\na 1\nb 2\nc 3\nd 4\n"),
]


@pytest.mark.parametrize("parent_texts, child_texts, grandchild_texts, expected", TREE_JOIN_ROWS)
def test_expfmt_callback_join_across_registries(
    parent_texts, child_texts, grandchild_texts, expected
):
    parent, child, grandchild = dm.Registry(), dm.Registry(), dm.Registry()
    parent.add_child_registry(child)
    child.add_child_registry(grandchild)
    for reg, texts in (
        (parent, parent_texts),
        (child, child_texts),
        (grandchild, grandchild_texts),
    ):
        for text in texts:
            reg.add_expfmt_callback(_callback(text))
    assert parent.prometheus_expfmt() == expected


def test_raising_expfmt_callback_is_logged_and_contributes_nothing(caplog):
    reg = dm.Registry()
    reg.register(dm.Counter("native_total", "Native counter")).inc_by(7)
    reg.add_expfmt_callback(_callback(Raise))
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        assert reg.prometheus_expfmt() == NATIVE
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("dyn_metrics")]
    assert any(m.startswith("Error executing exposition text callback") for m in messages)


@pytest.mark.parametrize("result", [None, 5, b"x 1\n", ["x 1\n"]], ids=repr)
def test_non_str_expfmt_callback_is_logged_and_contributes_nothing(caplog, result):
    reg = dm.Registry()
    reg.add_expfmt_callback(lambda: result)
    reg.add_expfmt_callback(lambda: "ok 1\n")
    with caplog.at_level(logging.ERROR, logger="dyn_metrics"):
        assert reg.prometheus_expfmt() == "\nok 1\n"
    assert [
        r for r in caplog.records if r.name.startswith("dyn_metrics") and r.levelno >= logging.ERROR
    ]


def test_expfmt_callback_family_repeating_a_native_one_is_dropped():
    # Dynamo serves it twice, which makes the whole exposition invalid; see
    # tests/test_callbacks.py for every case.
    reg = dm.Registry()
    reg.register(dm.Counter("native_total", "Native counter")).inc_by(7)
    reg.add_expfmt_callback(lambda: NATIVE)
    assert reg.prometheus_expfmt() == NATIVE


def test_expfmt_callbacks_run_on_every_scrape():
    reg = dm.Registry()
    n = iter(range(100))
    reg.add_expfmt_callback(lambda: f"x {next(n)}\n")
    assert reg.prometheus_expfmt() == "\nx 0\n"
    assert reg.prometheus_expfmt() == "\nx 1\n"


# -- escaping round trips through a scrape (Hypothesis) ----------------------------------


def _unescape(text, escapes):
    return re.sub(r"\\(.)", lambda m: escapes[m.group(1)], text, flags=re.S)


LABEL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
HELP_ESCAPES = {"\\": "\\", "n": "\n"}


# Any text a metric accepts: no lone surrogates, and no carriage return in help.
_TEXT = st.characters(blacklist_categories=("Cs",))


@given(value=st.text(_TEXT), help_text=st.text(_TEXT.filter(lambda c: c != "\r"), min_size=1))
@example(value='say "hi"\\\n', help_text='back\\slash\nnew line "quoted"')
@example(value="\\n", help_text="\\n")
@example(value="", help_text=" ")
def test_label_value_and_help_round_trip_through_scrape(value, help_text):
    reg = dm.Registry()
    reg.register(dm.Gauge("m", help_text, {"lbl": value}))
    lines = reg.prometheus_expfmt().split("\n")
    assert len(lines) == 4 and lines[3] == ""  # no raw newline escaped the escaping
    help_prefix = "# HELP m "
    assert lines[0].startswith(help_prefix)
    assert _unescape(lines[0][len(help_prefix) :], HELP_ESCAPES) == help_text
    assert lines[1] == "# TYPE m gauge"
    sample_prefix, sample_suffix = 'm{lbl="', '"} 0'
    assert lines[2].startswith(sample_prefix) and lines[2].endswith(sample_suffix)
    escaped = lines[2][len(sample_prefix) : -len(sample_suffix)]
    assert re.fullmatch(r'(?:[^"\\\n]|\\[\\"n])*', escaped, flags=re.S)
    assert _unescape(escaped, LABEL_ESCAPES) == value


@given(value=st.floats(allow_nan=True, allow_infinity=True))
@example(value=50000.0)
@example(value=1e21)
@example(value=1e-7)
@example(value=-0.0)
@example(value=2.0**53)
@example(value=5e-324)
@example(value=1.7976931348623157e308)
def test_gauge_value_written_as_format_value(value):
    reg = dm.Registry()
    reg.register(dm.Gauge("g", "h")).set(value)
    line = reg.prometheus_expfmt().split("\n")[2]
    assert line.startswith("g ")
    written = line[2:]
    assert written == expfmt.format_value(value)
    assert "e" not in written and "E" not in written and "+" not in written
    if math.isnan(value):
        assert written == "NaN"
    else:
        assert float(written) == value
        assert math.copysign(1.0, float(written)) == math.copysign(1.0, value)


@given(value=st.integers(min_value=-(2**100), max_value=2**100))
def test_intgauge_value_written_as_exact_integer(value):
    reg = dm.Registry()
    reg.register(dm.IntGauge("g", "h")).set(value)
    assert reg.prometheus_expfmt().split("\n")[2] == f"g {value}"


def test_expfmt_callback_returning_invalid_unicode_is_left_out(caplog):
    reg = dm.Registry()
    reg.add_expfmt_callback(lambda: "a 1\n\udcff")
    reg.add_expfmt_callback(lambda: "b 2\n")
    assert reg.prometheus_expfmt() == "\nb 2\n"
    assert "not valid Unicode" in caplog.text


def test_openmetrics_parses_each_callback_on_its_own(caplog):
    reg = dm.Registry()
    reg.add_expfmt_callback(lambda: "a 1")  # no final newline: fine on its own
    reg.add_expfmt_callback(lambda: "b{ 1\n")  # broken: only this one is left out
    reg.add_expfmt_callback(lambda: "c 2\n")
    text = reg.openmetrics_expfmt()
    assert "a 1\n" in text and "c 2\n" in text and "b" not in text.replace("# EOF", "")
    assert dm.check(text, "openmetrics").ok


def test_openmetrics_leaves_out_families_it_cannot_express(caplog):
    reg = dm.Registry()
    reg.register(dm.Histogram("bar", "h", buckets=[1])).observe(1)
    reg.register(dm.Gauge("bar_bucket", "h")).set(1)  # clashes with bar's buckets
    reg.register(dm.Counter("foo_total", "h")).inc()  # OpenMetrics family "foo" ...
    reg.register(dm.Gauge("foo", "h")).set(1)  # ... clashes with this gauge
    reg.register(dm.Gauge("_x", "h")).set(1)  # reserved name
    reg.register(dm.Gauge("y", "h", {"_a": "1"})).set(1)  # reserved label name
    before = registry.stats()["dropped_families"]
    text = reg.openmetrics_expfmt()
    assert registry.stats()["dropped_families"] - before == 4
    assert dm.check(text, "openmetrics").errors == []
    assert "bar_bucket{le=" in text and "# TYPE foo gauge" in text
    for gone in ("bar_bucket 1", "foo_total", "_x", "_a"):
        assert gone not in text
    assert caplog.text.count("left out of the OpenMetrics scrape") == 4
    # The text format serves them all.
    assert dm.check(reg.prometheus_expfmt(), "text").errors == []


# -- name[] selection ------------------------------------------------------------------

COUNTER_TEXT = "# HELP req_total Requests\n# TYPE req_total counter\nreq_total 3\n"
HISTOGRAM_TEXT = (
    "# HELP lat_seconds Latency\n# TYPE lat_seconds histogram\n"
    'lat_seconds_bucket{le="1"} 1\nlat_seconds_bucket{le="+Inf"} 1\n'
    "lat_seconds_sum 0.5\nlat_seconds_count 1\n"
)
GAUGE_TEXT = "# HELP temp Temperature\n# TYPE temp gauge\ntemp 21.5\n"
CALLBACK_X = "# HELP vllm_x Running\n# TYPE vllm_x gauge\nvllm_x 4\n"
CALLBACK_Y = "# HELP vllm_y Done\n# TYPE vllm_y counter\nvllm_y 1\n"


def _selection_registry():
    reg = dm.Registry()
    reg.register(dm.Counter("req_total", "Requests")).inc_by(3)
    reg.register(dm.Histogram("lat_seconds", "Latency", buckets=[1])).observe(0.5)
    reg.register(dm.Gauge("temp", "Temperature")).set(21.5)
    reg.register(dm.GaugeVec("idle", "No child yet", ["a"]))  # empty: never written
    reg.add_expfmt_callback(lambda: CALLBACK_X + CALLBACK_Y)
    return reg


NAMES_ROWS = [
    # (id, names, expected text 0.0.4 scrape)
    (
        "none_is_everything",
        None,
        HISTOGRAM_TEXT + COUNTER_TEXT + GAUGE_TEXT + CALLBACK_X + CALLBACK_Y,
    ),
    ("gauge_by_name", ["temp"], GAUGE_TEXT),
    ("counter_by_text_name", ["req_total"], COUNTER_TEXT),
    ("counter_by_openmetrics_name", ["req"], COUNTER_TEXT),
    ("counter_by_created_sample", ["req_created"], COUNTER_TEXT),
    ("histogram_by_family_name", ["lat_seconds"], HISTOGRAM_TEXT),
    ("histogram_by_bucket", ["lat_seconds_bucket"], HISTOGRAM_TEXT),
    ("histogram_by_count", ["lat_seconds_count"], HISTOGRAM_TEXT),
    ("several_in_name_order", ["temp", "lat_seconds_sum"], HISTOGRAM_TEXT + GAUGE_TEXT),
    ("callback_block", ["vllm_y"], "\n" + CALLBACK_Y),
    ("native_and_callback", ["req", "vllm_x"], COUNTER_TEXT + CALLBACK_X),
    ("empty_family_stays_out", ["idle"], ""),
    ("unknown_name", ["nope"], ""),
    ("empty_list", [], ""),
    ("suffix_of_another_type", ["temp_bucket"], ""),
]


@pytest.mark.parametrize(
    "names, expected", [r[1:] for r in NAMES_ROWS], ids=[r[0] for r in NAMES_ROWS]
)
def test_prometheus_expfmt_names_selects_whole_families(names, expected):
    assert _selection_registry().prometheus_expfmt(names=names) == expected


OPENMETRICS_NAMES_ROWS = [
    # (id, names, family names on the TYPE lines of the OpenMetrics scrape)
    ("none_is_everything", None, ["lat_seconds", "req", "temp", "vllm_x", "vllm_y"]),
    ("counter_by_openmetrics_name", ["req"], ["req"]),
    ("counter_by_text_name", ["req_total"], ["req"]),
    ("histogram_by_bucket", ["lat_seconds_bucket"], ["lat_seconds"]),
    ("callback_family_by_name", ["vllm_x"], ["vllm_x"]),
    ("callback_counter_by_sample_name", ["vllm_y_total"], ["vllm_y"]),
    ("unknown_name", ["nope"], []),
    ("empty_list", [], []),
]


@pytest.mark.parametrize(
    "names, families",
    [r[1:] for r in OPENMETRICS_NAMES_ROWS],
    ids=[r[0] for r in OPENMETRICS_NAMES_ROWS],
)
def test_openmetrics_expfmt_names_selects_whole_families(names, families):
    text = _selection_registry().openmetrics_expfmt(names=names)
    assert re.findall(r"^# TYPE (\S+) ", text, re.M) == families
    assert text.endswith("# EOF\n")
    assert dm.check(text, "openmetrics").errors == []


def test_names_none_is_byte_identical_to_no_argument():
    reg = _selection_registry()
    assert reg.prometheus_expfmt(names=None) == reg.prometheus_expfmt()
    assert reg.openmetrics_expfmt(names=None) == reg.openmetrics_expfmt()


def test_names_select_merged_families_across_registries():
    parent, child = dm.Registry(), dm.Registry()
    parent.add_child_registry(child)
    parent.register(dm.Counter("r_total", "h", {"ep": "a"})).inc()
    child.register(dm.Counter("r_total", "h", {"ep": "b"})).inc_by(2)
    child.register(dm.Gauge("other", "h"))
    merged = '# HELP r_total h\n# TYPE r_total counter\nr_total{ep="a"} 1\nr_total{ep="b"} 2\n'
    assert parent.prometheus_expfmt(names=["r"]) == merged
    assert parent.prometheus_expfmt(names=["other_total"]) == ""


def test_names_leave_unselected_families_unread():
    # Selection happens before reading: a family left out is never merged,
    # so its conflict across registries does not fail the selected scrape.
    parent, child = dm.Registry(), dm.Registry()
    parent.add_child_registry(child)
    parent.register(dm.Counter("m", "h"))
    child.register(dm.Gauge("m", "h"))
    parent.register(dm.Gauge("ok", "h")).set(1)
    assert parent.prometheus_expfmt(names=["ok"]) == "# HELP ok h\n# TYPE ok gauge\nok 1\n"
    with pytest.raises(DescriptorConflictError):
        parent.prometheus_expfmt(names=["m"])


def test_names_run_update_callbacks_as_every_scrape_does():
    reg = dm.Registry()
    g = reg.register(dm.Gauge("g", "h"))
    ticks = iter(range(1, 100))
    reg.add_update_callback(lambda: g.set(next(ticks)))
    assert reg.prometheus_expfmt(names=["nope"]) == ""
    assert reg.prometheus_expfmt(names=["g"]).endswith("g 2\n")


def test_a_failing_gauge_function_is_counted_as_a_function_callback_error():
    from dyn_metrics.registry import stats

    reg = dm.Registry()
    gauge = reg.register(dm.Gauge("fn_gauge", "Reads a function"))
    gauge.set_function(lambda: 1 / 0)
    before = stats()["callback_errors"]["function"]
    assert reg.prometheus_expfmt() == ""  # the only sample is left out
    assert stats()["callback_errors"]["function"] == before + 1


def test_a_failing_gauge_function_logs_once_and_counts_every_time(caplog):
    from dyn_metrics.registry import stats

    reg = dm.Registry()
    reg.register(dm.Gauge("fn_twice", "Reads a function")).set_function(lambda: [][0])
    before = stats()["callback_errors"]["function"]
    with caplog.at_level(logging.ERROR):
        reg.prometheus_expfmt()
        reg.openmetrics_expfmt()
    assert stats()["callback_errors"]["function"] == before + 2
    assert len([r for r in caplog.records if "gauge function" in r.getMessage()]) == 1
