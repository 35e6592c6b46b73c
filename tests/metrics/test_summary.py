"""Summaries: refusals, quantiles over the age window, both encoders, vec children, threads."""

import math
import threading

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidLabelsError, InvalidNameError, InvalidValueError
from dyn_metrics.exposition import openmetrics
from dyn_metrics.metrics import cells
from dyn_metrics.metrics.quantiles import MERGE_AT
from dyn_metrics.metrics.summary import FOLD_AT, Summary, SummaryVec
from tests.metrics.support import NOT_REAL_ROWS, REAL_VALUE_ROWS, sample_lines, scrape

OBJECTIVES = {0.5: 0.05, 0.9: 0.01, 0.99: 0.001}


class Clock:
    """An injected clock: the test moves time, nothing sleeps."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


# -- refusals ----------------------------------------------------------------------------

REFUSAL_ROWS = [
    # (id, keyword arguments, error class, message part)
    ("quantile 0", {"objectives": {0: 0.01}}, InvalidValueError, "got 0"),
    ("quantile 1", {"objectives": {1.0: 0.01}}, InvalidValueError, "got 1.0"),
    ("quantile negative", {"objectives": {-0.5: 0.01}}, InvalidValueError, "got -0.5"),
    ("quantile nan", {"objectives": {math.nan: 0.01}}, InvalidValueError, "got nan"),
    ("quantile str", {"objectives": {"0.5": 0.01}}, InvalidValueError, "got '0.5'"),
    ("quantile bool", {"objectives": {True: 0.01}}, InvalidValueError, "got True"),
    ("epsilon 0", {"objectives": {0.5: 0}}, InvalidValueError, "got 0 for quantile 0.5"),
    ("epsilon 1", {"objectives": {0.5: 1}}, InvalidValueError, "got 1 for quantile 0.5"),
    ("epsilon nan", {"objectives": {0.5: math.nan}}, InvalidValueError, "got nan"),
    ("epsilon None", {"objectives": {0.5: None}}, InvalidValueError, "got None"),
    ("objectives list", {"objectives": [0.5, 0.9]}, InvalidValueError, "got [0.5, 0.9]"),
    ("objectives str", {"objectives": "0.5"}, InvalidValueError, "got '0.5'"),
    ("age_buckets 0", {"age_buckets": 0}, InvalidValueError, "got 0"),
    ("age_buckets float", {"age_buckets": 2.0}, InvalidValueError, "got 2.0"),
    ("age_buckets bool", {"age_buckets": True}, InvalidValueError, "got True"),
    ("age_buckets huge", {"age_buckets": 10**12}, InvalidValueError, "in 1..1024"),
    ("max_age denormal", {"max_age": 5e-324}, InvalidValueError, "at least 1e-06 s"),
    ("window below 1us", {"max_age": 1e-4, "age_buckets": 1000}, InvalidValueError, "at least"),
    ("max_age 0", {"max_age": 0}, InvalidValueError, "got 0"),
    ("max_age negative", {"max_age": -1.0}, InvalidValueError, "got -1.0"),
    ("max_age inf", {"max_age": math.inf}, InvalidValueError, "got inf"),
    ("max_age nan", {"max_age": math.nan}, InvalidValueError, "got nan"),
    ("max_age str", {"max_age": "60"}, InvalidValueError, "got '60'"),
    ("clock not callable", {"clock": 5}, InvalidValueError, "got 5"),
    ("quantile const label", {"const_labels": {"quantile": "x"}}, InvalidLabelsError, "quantile"),
    ("unit not a suffix", {"unit": "bytes"}, InvalidNameError, "'_bytes'"),
]


@pytest.mark.parametrize("kind", ["Summary", "SummaryVec"])
@pytest.mark.parametrize(
    "kwargs, exc, part", [r[1:] for r in REFUSAL_ROWS], ids=[r[0] for r in REFUSAL_ROWS]
)
def test_bad_arguments_are_refused_and_nothing_is_registered(kind, kwargs, exc, part):
    reg = dm.Registry()
    with pytest.raises(exc) as info:
        if kind == "Summary":
            reg.register(Summary("rpc_seconds", "h", **kwargs))
        else:
            reg.register(SummaryVec("rpc_seconds", "h", ["a"], **kwargs))
    assert type(info.value) is exc and isinstance(info.value, ValueError)
    assert part in str(info.value), str(info.value)
    assert str(info.value)[0].islower()
    assert not reg.has_metric_named("rpc_seconds")
    assert reg.prometheus_expfmt() == ""


def test_quantile_label_name_is_refused():
    with pytest.raises(
        InvalidLabelsError, match="label name 'quantile' is not allowed in summaries"
    ):
        SummaryVec("s", "h", ["quantile"])


@pytest.mark.parametrize("bad", [r[1] for r in NOT_REAL_ROWS], ids=[r[0] for r in NOT_REAL_ROWS])
@pytest.mark.parametrize("objectives", [None, OBJECTIVES], ids=["plain", "quantiles"])
def test_observation_that_is_not_a_real_number_is_refused(bad, objectives):
    s = Summary("s", "h", objectives=objectives)
    s.observe(0.5)
    with pytest.raises(InvalidValueError, match="summary observation must be a real number"):
        s.observe(bad)
    assert (s.get_sample_count(), s.get_sample_sum()) == (1, 0.5)


@pytest.mark.parametrize("number, as_float", [r[1:] for r in REAL_VALUE_ROWS])
def test_other_real_numbers_count_as_floats(number, as_float):
    s = Summary("s", "h", objectives={0.5: 0.01})
    s.observe(number)
    assert (s.get_sample_count(), s.get_sample_sum()) == (1, as_float)
    assert f'{{quantile="0.5"}} {dm.exposition.text.format_value(as_float)}\n' in scrape(s)


# -- values ------------------------------------------------------------------------------


def test_no_objectives_writes_only_sum_and_count():
    for objectives in (None, {}):
        s = Summary("rpc_seconds", "RPC latency", objectives=objectives)
        s.observe(0.25)
        s.observe(2)
        assert scrape(s) == (
            "# HELP rpc_seconds RPC latency\n# TYPE rpc_seconds summary\n"
            "rpc_seconds_sum 2.25\nrpc_seconds_count 2\n"
        )


def test_quantiles_text_golden():
    s = Summary("rpc_seconds", "RPC latency", {"zone": "z"}, OBJECTIVES, clock=Clock())
    for v in range(1, 101):
        s.observe(float(v))
    assert scrape(s) == (
        "# HELP rpc_seconds RPC latency\n# TYPE rpc_seconds summary\n"
        # Each within its rank error of 1..100: [45, 55], [89, 91], [98.9, 99.1].
        'rpc_seconds{zone="z",quantile="0.5"} 49\n'
        'rpc_seconds{zone="z",quantile="0.9"} 91\n'
        'rpc_seconds{zone="z",quantile="0.99"} 99\n'
        'rpc_seconds_sum{zone="z"} 5050\n'
        'rpc_seconds_count{zone="z"} 100\n'
    )
    assert dm.check(scrape(s), "text").errors == []


def test_write_text_matches_collect():
    v = SummaryVec("s", "h", ["b", "a"], objectives=OBJECTIVES, clock=Clock())
    for i in range(3000):
        v.with_label_values(str(i % 3), "x").observe(i * 0.5)
    v.with_label_values("n", "x").observe(math.nan)
    parts = []
    v.write_text(parts.append)
    assert "".join(parts) == dm.exposition.text.encode_to_string(v.collect())


def test_nan_counts_and_poisons_the_sum_but_not_the_quantiles():
    s = Summary("s", "h", objectives={0.5: 0.05}, clock=Clock())
    s.observe(1.0)
    s.observe(math.nan)
    assert s.get_sample_count() == 2 and math.isnan(s.get_sample_sum())
    assert sample_lines(scrape(s)) == ['s{quantile="0.5"} 1', "s_sum NaN", "s_count 2"]


def test_empty_window_gives_nan_quantiles_but_keeps_sum_and_count():
    clock = Clock(0.0)
    s = Summary(
        "s", "h", objectives={0.5: 0.05, 0.9: 0.01}, max_age=60.0, age_buckets=3, clock=clock
    )
    assert sample_lines(scrape(s)) == [
        's{quantile="0.5"} NaN',
        's{quantile="0.9"} NaN',
        "s_sum 0",
        "s_count 0",
    ]
    s.observe(4.0)
    clock.now = 59.0
    assert sample_lines(scrape(s))[0] == 's{quantile="0.5"} 4'
    clock.now = 60.0  # the observation at 0 is max_age old
    assert sample_lines(scrape(s)) == [
        's{quantile="0.5"} NaN',
        's{quantile="0.9"} NaN',
        "s_sum 4",
        "s_count 1",
    ]


def test_window_expiry_through_observe_without_reads():
    # Observations before a boundary go to the window they were made in, even
    # when nothing reads in between.
    clock = Clock(0.0)
    s = Summary("s", "h", objectives={0.5: 0.05}, max_age=30.0, age_buckets=3, clock=clock)
    for _ in range(10):
        s.observe(1.0)
    clock.now = 15.0
    for _ in range(30):
        s.observe(2.0)
    clock.now = 30.0  # the stream holding t = 0 is reset; t = 15 stays
    s.observe(3.0)
    assert sample_lines(scrape(s))[0] == 's{quantile="0.5"} 2'
    clock.now = 45.0
    assert sample_lines(scrape(s))[0] == 's{quantile="0.5"} 3'
    assert s.get_sample_count() == 41


def test_many_observations_fold_exactly():
    s = Summary("s", "h", objectives=OBJECTIVES, clock=Clock())
    n = 5 * FOLD_AT + 3
    for i in range(n):
        s.observe(i % 100)
    assert s.get_sample_count() == n
    assert s.get_sample_sum() == sum(i % 100 for i in range(n))
    median = float(sample_lines(scrape(s))[0].split()[-1])
    below = sum(1 for i in range(n) if i % 100 < median)
    upto = sum(1 for i in range(n) if i % 100 <= median)
    assert below <= 0.55 * n and upto >= 0.45 * n


def test_read_while_the_stripe_is_held_computes_from_a_copy():
    # A scrape nested in a signal handler while its thread folds this cell.
    s = Summary("s", "h", objectives={0.5: 0.05}, clock=Clock())
    for v in (1.0, 2.0, 3.0):
        s.observe(v)
    cell = s._children[()]
    lock = cells.stripe(cell)
    assert cells.take(lock)
    try:
        assert cell._read() == ((2.0,), 6.0, 3)
        s.observe(4.0)  # never waits
        assert cell._read()[1:] == (10.0, 4)
    finally:
        cells.drop(lock)
    assert cell._read()[1:] == (10.0, 4)


# -- timers ------------------------------------------------------------------------------


def test_time_and_start_timer():
    s = Summary("s", "h")

    @s.time()
    def f():
        return "ok"

    with s.time():
        pass
    assert f() == "ok"
    elapsed = s.start_timer().observe_duration()
    assert s.get_sample_count() == 3
    assert s.get_sample_sum() >= elapsed >= 0.0


# -- OpenMetrics, created, unit ----------------------------------------------------------


def test_openmetrics_with_created_and_unit():
    reg = dm.Registry(created=True)
    s = reg.register(Summary("rpc_seconds", "RPC", objectives={0.5: 0.05}, unit="seconds"))
    s.observe(0.5)
    text = reg.openmetrics_expfmt()
    lines = text.splitlines()
    assert lines[:3] == [
        "# TYPE rpc_seconds summary",
        "# UNIT rpc_seconds seconds",
        "# HELP rpc_seconds RPC",
    ]
    assert lines[3:6] == [
        'rpc_seconds{quantile="0.5"} 0.5',
        "rpc_seconds_sum 0.5",
        "rpc_seconds_count 1",
    ]
    assert lines[6].startswith("rpc_seconds_created ")
    assert lines[-1] == "# EOF"
    assert dm.check(text, "openmetrics").errors == []
    # Text 0.0.4 shows neither the unit nor _created.
    assert "UNIT" not in reg.prometheus_expfmt() and "_created" not in reg.prometheus_expfmt()


def test_openmetrics_encoder_of_collect():
    v = SummaryVec("s", "h", ["a"], objectives=OBJECTIVES, clock=Clock())
    v.with_label_values("x").observe(1.0)
    text = openmetrics.encode_to_string(v.collect())
    assert 's{a="x",quantile="0.99"} 1.0\n' in text or 's{a="x",quantile="0.99"} 1\n' in text
    assert dm.check(text, "openmetrics").errors == []


# -- SummaryVec --------------------------------------------------------------------------


def test_vec_children_sorted_with_quantile_last():
    v = SummaryVec("s", "h", ["route"], {"zone": "z"}, {0.5: 0.05}, clock=Clock())
    v.with_label_values("/b").observe(2.0)
    v.labels("/a").observe(1.0)
    assert sample_lines(scrape(v)) == [
        's{route="/a",zone="z",quantile="0.5"} 1',
        's_sum{route="/a",zone="z"} 1',
        's_count{route="/a",zone="z"} 1',
        's{route="/b",zone="z",quantile="0.5"} 2',
        's_sum{route="/b",zone="z"} 2',
        's_count{route="/b",zone="z"} 1',
    ]
    assert dm.check(scrape(v), "text").errors == []


def test_vec_remove_and_clear():
    v = SummaryVec("s", "h", ["a"])
    v.with_label_values("x").observe(1)
    v.with_label_values("y").observe(1)
    v.remove_label_values("x")
    assert sample_lines(scrape(v)) == ['s_sum{a="y"} 1', 's_count{a="y"} 1']
    with pytest.raises(InvalidLabelsError):
        v.remove_label_values("x")
    v.clear()
    assert scrape(v) == ""


def test_vec_max_children_overflow():
    v = SummaryVec("s", "h", ["a"], max_children=1)
    v.with_label_values("x").observe(1)
    v.with_label_values("y").observe(2)
    v.with_label_values("z").observe(3)
    assert sample_lines(scrape(v)) == [
        's_sum{a="__overflow__"} 5',
        's_count{a="__overflow__"} 2',
        's_sum{a="x"} 1',
        's_count{a="x"} 1',
    ]


def test_vec_child_methods():
    child = SummaryVec("s", "h", ["a"], objectives={0.9: 0.01}).with_label_values("x")
    child.observe(1)
    with child.time():
        pass
    child.start_timer().observe_duration()
    assert child.get_sample_count() == 3


# -- threads -----------------------------------------------------------------------------


@pytest.mark.parametrize("objectives", [None, OBJECTIVES], ids=["plain", "quantiles"])
def test_threads_give_an_exact_count(objectives):
    s = Summary("s", "h", objectives=objectives)
    threads, ops = 8, 10_000
    barrier = threading.Barrier(threads)
    errors = []

    def work():
        try:
            barrier.wait(10)
            for i in range(ops):
                s.observe(float(i % 10))
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert errors == [] and not any(t.is_alive() for t in pool)
    assert s.get_sample_count() == threads * ops
    assert s.get_sample_sum() == threads * ops * 4.5


def test_memory_per_child_stays_bounded():
    # quantiles.py: at most MERGE_AT buffered values and a few hundred tuples
    # per stream; the pending list never exceeds FOLD_AT + 1 items.
    s = Summary("s", "h", objectives=OBJECTIVES, clock=Clock())
    cell = s._children[()]
    for i in range(200_000):
        s.observe((i * 7919) % 10007 / 10007)
        assert len(cell._items) <= FOLD_AT + 1
    window = cell._items[0][0]
    assert window.buffered < MERGE_AT
    assert all(len(stream) <= 400 for stream in window.streams)
    assert s.get_sample_count() == 200_000


def test_vec_through_both_encoders_of_a_registry():
    reg = dm.Registry(created=True)
    v = reg.register(SummaryVec("rpc_seconds", "RPC", ["m"], objectives=OBJECTIVES, clock=Clock()))
    plain = reg.register(SummaryVec("plain_seconds", "P", ["m"]))
    for i in range(2000):
        v.labels("get" if i % 3 else "put").observe(i / 1000)
        plain.labels("x").observe(1)
    text, om = reg.prometheus_expfmt(), reg.openmetrics_expfmt()
    assert dm.check(text, "text").errors == []
    assert dm.check(om, "openmetrics").errors == []
    assert 'rpc_seconds{m="put",quantile="0.99"} ' in text
    assert 'rpc_seconds_created{m="get"} ' in om and 'plain_seconds_created{m="x"} ' in om
    assert 'plain_seconds_count{m="x"} 2000' in text


def test_objectives_are_kept_as_floats():
    assert Summary("s", "h", objectives={0.9: 0.01, 0.5: 0.05}).objectives == {0.5: 0.05, 0.9: 0.01}
    assert SummaryVec("s", "h", ["a"]).objectives == {}
