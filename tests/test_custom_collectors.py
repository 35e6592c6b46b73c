"""Custom collectors (registry/custom.py): objects whose ``collect()`` returns Family records."""

import logging
import math

import pytest

import dyn_metrics as dm
from dyn_metrics.model import Exemplar, Family, NativeHistogram, Sample
from dyn_metrics.registry import stats


class Fixed:
    """A collector returning whatever families it was given."""

    def __init__(self, *families, describe=None):
        self.families = list(families)
        if describe is not None:
            self.describe = lambda: describe

    def collect(self):
        return list(self.families)


def counter(name="jobs_total", value=3, labels=(("q", "a"),), help="Jobs", **extra):
    return Family(name, "counter", help, (Sample(name, labels, value, **extra),))


def _errors(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_custom_family_is_served_in_both_formats_sorted_with_natives():
    reg = dm.Registry()
    reg.register(dm.Gauge("zz", "Last")).set(1)
    reg.register(Fixed(counter()))
    assert reg.prometheus_expfmt() == (
        '# HELP jobs_total Jobs\n# TYPE jobs_total counter\njobs_total{q="a"} 3\n'
        "# HELP zz Last\n# TYPE zz gauge\nzz 1\n"
    )
    om = reg.openmetrics_expfmt()
    assert '# TYPE jobs counter\n# HELP jobs Jobs\njobs_total{q="a"} 3\n' in om
    assert dm.check(om, "openmetrics").errors == []


def test_custom_family_merges_with_a_native_family_of_the_same_name_and_type():
    reg = dm.Registry()
    vec = reg.register(dm.CounterVec("jobs_total", "Jobs", ["q"]))
    vec.with_label_values("b").inc()
    reg.register(Fixed(counter()))
    text = reg.prometheus_expfmt()
    assert 'jobs_total{q="a"} 3\njobs_total{q="b"} 1\n' in text
    assert dm.check(text, "text").errors == []


def test_exemplars_and_created_samples_reach_openmetrics_only():
    created = Sample("jobs_created", (("q", "a"),), 1700000000.0)
    ex = Exemplar((("trace_id", "abc"),), 1.0, 1700000001.0)
    family = Family(
        "jobs_total", "counter", "Jobs", (Sample("jobs_total", (("q", "a"),), 3, None, ex), created)
    )
    reg = dm.Registry()
    reg.register(Fixed(family))
    text = reg.prometheus_expfmt()
    assert "created" not in text and "trace_id" not in text
    om = reg.openmetrics_expfmt()
    assert 'jobs_total{q="a"} 3 # {trace_id="abc"} 1.0 1700000001.0\n' in om
    assert 'jobs_created{q="a"} 1700000000.0\n' in om
    assert dm.check(om, "openmetrics").errors == []


BAD_FAMILIES = [
    # (what, family) -> dropped, counted, logged once; the rest is served
    ("not a Family", "garbage"),
    ("a plain tuple", ("x", "gauge", "h", ())),
    ("unknown type", Family("x", "weird", "h", (Sample("x", (), 1),))),
    ("bad metric name", Family("1x", "gauge", "h", (Sample("1x", (), 1),))),
    ("bad label name", Family("x", "gauge", "h", (Sample("x", (("a-b", "1"),), 1),))),
    ("label value not str", Family("x", "gauge", "h", (Sample("x", (("a", 1),), 1),))),
    ("labels not pairs", Family("x", "gauge", "h", (Sample("x", ("ab",), 1),))),
    ("value a string", Family("x", "gauge", "h", (Sample("x", (), "1"),))),
    ("value complex", Family("x", "gauge", "h", (Sample("x", (), 1j),))),
    ("value None", Family("x", "gauge", "h", (Sample("x", (), None),))),
    ("sample not a Sample", Family("x", "gauge", "h", (("x", (), 1),))),
    ("sample name of another family", Family("x", "gauge", "h", (Sample("y", (), 1),))),
    ("duplicate series", Family("x", "gauge", "h", (Sample("x", (), 1), Sample("x", (), 2)))),
    (
        "histogram without +Inf",
        Family("h", "histogram", "h", (Sample("h_bucket", (("le", "1"),), 1),)),
    ),
    ("help with a carriage return", Family("x", "gauge", "a\rb", (Sample("x", (), 1),))),
    ("timestamp a string", Family("x", "gauge", "h", (Sample("x", (), 1, "now"),))),
    ("bad exemplar", Family("x", "counter", "h", (Sample("x", (), 1, None, "ex"),))),
    (
        "exemplar too long",
        Family("x", "counter", "h", (Sample("x", (), 1, None, Exemplar((("a", "b" * 200),), 1)),)),
    ),
    ("reserved label name", Family("d", "gauge", "h", (Sample("d", (("__name__", "x"),), 1),))),
    (
        "exemplar on a gauge",
        Family("g", "gauge", "h", (Sample("g", (), 1, None, Exemplar((("a", "b"),), 1.0)),)),
    ),
    (
        "exemplar on a histogram count",
        Family(
            "hh",
            "histogram",
            "h",
            (
                Sample("hh_bucket", (("le", "+Inf"),), 1),
                Sample("hh_count", (), 1, None, Exemplar((("a", "b"),), 1.0)),
                Sample("hh_sum", (), 1.0),
            ),
        ),
    ),
    ("info value 2", Family("b_info", "info", "h", (Sample("b_info", (("v", "1"),), 2),))),
    ("stateset value 5", Family("st", "stateset", "h", (Sample("st", (("st", "a"),), 5),))),
    ("stateset without its label", Family("st", "stateset", "h", (Sample("st", (), 1),))),
    (
        "exemplar timestamp NaN",
        Family(
            "c", "counter", "h", (Sample("c", (), 1, None, Exemplar((("a", "b"),), 1.0, math.nan)),)
        ),
    ),
    ("unit not a suffix", Family("x", "gauge", "h", (Sample("x", (), 1),), "bytes")),
    ("lone surrogate", Family("x", "gauge", "h", (Sample("x", (("a", "\ud800"),), 1),))),
]


@pytest.mark.parametrize("what, family", BAD_FAMILIES, ids=[w for w, _ in BAD_FAMILIES])
def test_a_bad_family_is_dropped_counted_and_logged_once(caplog, what, family):
    reg = dm.Registry()
    reg.register(Fixed(family, counter()))
    before = stats()["dropped_families"]
    with caplog.at_level(logging.ERROR):
        first = reg.prometheus_expfmt()
        second = reg.prometheus_expfmt()
    assert (
        first
        == second
        == '# HELP jobs_total Jobs\n# TYPE jobs_total counter\njobs_total{q="a"} 3\n'
    )
    assert stats()["dropped_families"] - before == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "custom collector" in errors[0] and "dropped" in errors[0]
    om = reg.openmetrics_expfmt()
    assert dm.check(om, "openmetrics").errors == []


def test_a_collect_that_raises_adds_nothing_and_is_counted(caplog):
    class Broken:
        def collect(self):
            raise RuntimeError("boom")

    reg = dm.Registry()
    reg.register(Broken())
    reg.register(dm.Gauge("g", "G")).set(2)
    before = stats()["callback_errors"]["typed"]
    with caplog.at_level(logging.ERROR):
        assert reg.prometheus_expfmt() == "# HELP g G\n# TYPE g gauge\ng 2\n"
    assert stats()["callback_errors"]["typed"] - before == 1
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_describe_reserves_names_at_registration():
    reg = dm.Registry()
    first = Fixed(counter(), describe=[counter(value=0)])
    reg.register(first)
    with pytest.raises(dm.AlreadyRegisteredError, match="jobs_total"):
        reg.register(dm.Counter("jobs_total", "Jobs"))
    with pytest.raises(dm.AlreadyRegisteredError, match="jobs_total"):
        reg.register(Fixed(counter(), describe=[counter()]))
    with pytest.raises(dm.AlreadyRegisteredError):
        reg.register(first)
    # Nothing half-registered: one family, served once.
    assert reg.prometheus_expfmt().count("# TYPE jobs_total counter") == 1
    reg.unregister(first)
    reg.register(dm.Counter("jobs_total", "Jobs"))  # the name is free again


def test_a_native_name_blocks_a_described_custom_collector():
    reg = dm.Registry()
    reg.register(dm.Gauge("jobs_total", "Jobs"))
    with pytest.raises(dm.AlreadyRegisteredError):
        reg.register(Fixed(counter(), describe=[counter()]))
    assert "counter" not in reg.prometheus_expfmt()


def test_a_bad_describe_registers_nothing():
    reg = dm.Registry()
    with pytest.raises(dm.InvalidValueError, match="describe"):
        reg.register(Fixed(counter(), describe=["nope"]))
    assert reg.prometheus_expfmt() == ""


def test_a_clash_found_at_scrape_is_a_descriptor_conflict():
    reg = dm.Registry()
    reg.register(dm.Gauge("jobs_total", "Jobs")).set(1)
    reg.register(Fixed(counter()))  # no describe(): seen only at scrape
    with pytest.raises(dm.DescriptorConflictError, match="jobs_total"):
        reg.prometheus_expfmt()


def test_custom_collector_in_a_child_registry_and_unregister():
    parent, child = dm.Registry(), dm.Registry()
    parent.add_child_registry(child)
    collector = Fixed(counter())
    child.register(collector)
    assert "jobs_total" in parent.prometheus_expfmt()
    assert [f.name for f in child.gather()] == ["jobs_total"]
    child.unregister(collector)
    assert parent.prometheus_expfmt() == ""
    with pytest.raises(KeyError):
        child.unregister(collector)


def test_collect_runs_at_every_scrape_and_sees_fresh_values():
    class Live:
        n = 0

        def collect(self):
            self.n += 1
            return [Family("calls", "gauge", "Calls", (Sample("calls", (), self.n),))]

    reg = dm.Registry()
    reg.register(Live())
    assert reg.prometheus_expfmt().endswith("calls 1\n")
    assert reg.prometheus_expfmt().endswith("calls 2\n")
    assert "calls 3\n" in reg.openmetrics_expfmt()


def test_name_selection_applies_to_custom_families():
    reg = dm.Registry()
    reg.register(Fixed(counter(), Family("other", "gauge", "O", (Sample("other", (), 1),))))
    assert reg.prometheus_expfmt(names={"jobs_total"}).count("# TYPE") == 1
    assert "other 1" in reg.prometheus_expfmt(names={"other"})


def test_a_custom_family_writing_a_native_sample_name_is_a_descriptor_conflict():
    reg = dm.Registry()
    reg.register(dm.Counter("x_total", "X")).inc()
    reg.register(Fixed(Family("x", "counter", "X", (Sample("x_total", (), 1),))))
    with pytest.raises(dm.DescriptorConflictError, match="'x_total'"):
        reg.prometheus_expfmt()
    with pytest.raises(dm.DescriptorConflictError):
        reg.openmetrics_expfmt()


def test_a_failing_collector_logs_once_per_error_type_and_counts_every_failure(caplog):
    class Flaky:
        def __init__(self):
            self.errors = [KeyError("a"), KeyError("b"), ValueError("c")]

        def collect(self):
            raise self.errors.pop(0)

    reg = dm.Registry()
    reg.register(Flaky())
    before = stats()["callback_errors"]["typed"]
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            assert reg.prometheus_expfmt() == ""
    assert stats()["callback_errors"]["typed"] - before == 3
    assert len(_errors(caplog)) == 2  # KeyError once, ValueError once


def test_a_collector_scraping_its_own_registry_gets_nothing_from_itself():
    reg = dm.Registry()

    class SelfScraping:
        def collect(self):
            inner = reg.prometheus_expfmt()  # nested: this collector adds nothing to it
            value = 1 if "selfish" not in inner else 2
            return [Family("selfish", "gauge", "h", (Sample("selfish", (), value),))]

    reg.register(SelfScraping())
    assert reg.prometheus_expfmt().endswith("selfish 1\n")


def _hist(b1, b2, count):
    labels = (("k", "a"),)
    return Family(
        "lat",
        "histogram",
        "Latency",
        (
            Sample("lat_bucket", labels + (("le", "1"),), b1),
            Sample("lat_bucket", labels + (("le", "+Inf"),), b2),
            Sample("lat_sum", labels, 1.5),
            Sample("lat_count", labels, count),
        ),
    )


VALUE_ROWS = [
    # (values that break a structure judged good before) -> dropped, the next good one served
    ("non-cumulative buckets", _hist(3, 2, 2)),
    ("count differs from +Inf", _hist(1, 2, 3)),
    ("negative bucket", _hist(-1, 2, 2)),
    ("fractional bucket", _hist(0.5, 2, 2)),
    ("value a string", _hist("1", 2, 2)),
    ("info value 2", Family("b_info", "info", "h", (Sample("b_info", (("v", "1"),), 2),))),
]


@pytest.mark.parametrize("what, bad", VALUE_ROWS, ids=[w for w, _ in VALUE_ROWS])
def test_values_are_checked_at_every_scrape_of_a_known_structure(what, bad):
    good = (
        _hist(1, 2, 2)
        if bad.type == "histogram"
        else Family("b_info", "info", "h", (Sample("b_info", (("v", "1"),), 1),))
    )
    collector = Fixed(good)
    reg = dm.Registry()
    reg.register(collector)
    first = reg.prometheus_expfmt()
    assert first.count("# TYPE") == 1
    collector.families = [bad]
    before = stats()["dropped_families"]
    assert reg.prometheus_expfmt() == ""
    assert stats()["dropped_families"] == before + 1
    collector.families = [good]
    assert reg.prometheus_expfmt() == first
    assert dm.check(reg.openmetrics_expfmt(), "openmetrics").errors == []


def native_family(native, count=3, more=()):
    """A native-only histogram family as a custom collector would return it."""
    return Family(
        "lat_seconds",
        "histogram",
        "Latency",
        (
            Sample("lat_seconds_bucket", (("le", "+Inf"),), count),
            Sample("lat_seconds_sum", (), 1.5),
            Sample("lat_seconds_count", (), count, native=native),
        )
        + more,
    )


GOOD_NATIVE = NativeHistogram(3, 2.0**-128, 1, ((0, 1), (8, 1)))


def test_a_custom_native_histogram_reaches_the_protobuf_scrape():
    reg = dm.Registry()
    reg.register(Fixed(native_family(GOOD_NATIVE)))
    assert 'lat_seconds_bucket{le="+Inf"} 3' in reg.prometheus_expfmt()
    body = reg.protobuf_expfmt()
    assert b"lat_seconds" in body and body == dm.generate_latest(reg, format="protobuf")


@pytest.mark.parametrize(
    "family, reason",
    [
        (native_family(GOOD_NATIVE._replace(schema=9)), "schema"),
        (native_family(GOOD_NATIVE._replace(zero_threshold=-1.0)), "zero bucket"),
        (native_family(GOOD_NATIVE._replace(positive=((8, 1), (0, 1)))), "not valid"),
        (native_family(GOOD_NATIVE._replace(positive=((0, 0),))), "not valid"),
        (native_family(GOOD_NATIVE._replace(positive=((0, 1.5),))), "not valid"),
        (native_family(GOOD_NATIVE._replace(positive=(1, 2))), "pairs"),
        (native_family(GOOD_NATIVE, count=1), "hold 3 observations"),
        (native_family(GOOD_NATIVE._replace(zero_threshold=10**400)), "zero bucket"),
        (native_family(GOOD_NATIVE._replace(positive=((2**40, 1),))), "not valid"),
        (native_family(GOOD_NATIVE._replace(negative=((-(2**40), 1),))), "not valid"),
        (native_family("buckets"), "must be a NativeHistogram"),
        (
            native_family(
                GOOD_NATIVE,
                more=(
                    Sample("lat_seconds_bucket", (("a", "x"), ("le", "+Inf")), 0),
                    Sample("lat_seconds_sum", (("a", "x"),), 0.0),
                    Sample("lat_seconds_count", (("a", "x"),), 0),
                ),
            ),
            "every _count sample",
        ),
    ],
)
def test_bad_native_buckets_are_dropped_before_any_scrape(caplog, family, reason):
    reg = dm.Registry()
    reg.register(Fixed(family))
    assert b"lat_seconds" not in reg.protobuf_expfmt()
    assert "lat_seconds" not in reg.prometheus_expfmt()
    assert any(reason in message for message in _errors(caplog))
