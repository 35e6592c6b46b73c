"""plans.add equals Scrape.add exactly, and cached plans never outlive their series table."""

import logging
import os

from hypothesis import given, settings
from hypothesis import strategies as st

import dyn_metrics as dm
from dyn_metrics.multiprocess import aggregate, layout, plans
from dyn_metrics.multiprocess.aggregate import Scrape, SeriesTable
from dyn_metrics.multiprocess.collector import MultiProcessCollector
from tests.multiprocess import write_client_dir

TYPES = ["counter", "gauge", "histogram", "summary", "info", "stateset"]
MODES = ["", "all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum"]
MODES += ["mostrecent", "livemostrecent", "odd"]
SUFFIXES = ["", "_bucket", "_sum", "_count", "_created"]
LABELS = [("x", "1"), ("x", "2"), ("pid", "7"), ("quantile", "0.5")]

key_spec = st.tuples(
    st.sampled_from(["a", "b"]),
    st.sampled_from(TYPES),
    st.sampled_from(["h1", "h2"]),
    st.sampled_from(MODES),
    st.sampled_from(SUFFIXES),
    st.sets(st.sampled_from(LABELS), max_size=2),
    st.sampled_from(["0.5", "1", "+Inf"]),
)
value = st.one_of(
    st.sampled_from([0.0, 1.0, -2.5, float("nan"), 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
file_spec = st.tuples(
    st.lists(st.tuples(key_spec, value, st.sampled_from([0.0, 1.0, 2.0])), max_size=12),
    st.sampled_from([None, "11", "12"]),
    st.sampled_from(["dyn_metrics", "prometheus_client"]),
    st.booleans(),
)


def entries_of(series, keys):
    out = []
    for (family, type_word, help_text, mode, suffix, labels, le), v, stamp in keys:
        labels = tuple(sorted(labels))
        if suffix == "_bucket":
            labels += (("le", le),)
        try:
            entry = series.entry(family, type_word, help_text, "", mode, family + suffix, labels)
        except ValueError:
            continue
        out.append((entry, v, stamp))
    return out


def state(scrape):
    """Every dict a scrape fills, in insertion order, floats by their repr (NaN == NaN)."""
    metas = {k: (m.type, m.help, m.unit, m.mode, m.source) for k, m in scrape.metas.items()}
    dicts = (scrape.sums, scrape.created, scrape.alls, scrape.mins, scrape.maxes, scrape.totals)
    return (
        metas,
        [[(k, repr(v)) for k, v in d.items()] for d in dicts],
        [(k, repr(v)) for k, v in scrape.recents.items()],
        repr(scrape.families()),
        repr(scrape.entries()),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(file_spec, min_size=1, max_size=4))
def test_plans_add_equals_scrape_add(files):
    series = SeriesTable()
    logged_each, logged_bulk = {}, {}
    each, bulk = Scrape(series, logged_each), Scrape(series, logged_bulk)
    logging.disable(logging.ERROR)  # conflicts are logged by both: compared below instead
    try:
        for keys, pid, source, dead in files:
            made = entries_of(series, keys)
            entries = [e for e, _, _ in made]
            values = tuple(v for _, v, _ in made)
            stamps = tuple(s for _, _, s in made)
            each.add(entries, values, stamps, pid, source, dead)
            plans.add(bulk, plans.Plan(entries), values, stamps, pid, source, dead)
    finally:
        logging.disable(logging.NOTSET)
    assert state(bulk) == state(each)
    assert logged_bulk.keys() == logged_each.keys()


def test_a_plan_adds_a_steady_file_and_a_conflicting_family_falls_back(tmp_path, caplog):
    K = layout.Key
    counter = K("jobs_total", "counter", "Jobs", "", "jobs_total", (("q", "a"),))
    gauge = K("jobs_total", "gauge", "Jobs", "", "jobs_total", (("q", "b"),), "livesum")
    layout.write_file(os.path.join(tmp_path, layout.process_file_name(301)), [(counter, 2.0, 0)])
    layout.write_file(
        os.path.join(tmp_path, layout.process_file_name(302)), [(counter, 3.0, 0), (gauge, 7.0, 0)]
    )
    collector = MultiProcessCollector(tmp_path)
    for _ in range(3):  # the first scrape parses, the next ones reuse the plans
        (family,) = collector.collect()
        assert family.type == "counter"
        assert [(s.labels, s.value) for s in family.samples] == [((("q", "a"),), 5.0)]
    assert sum("differs from the one" in r.getMessage() for r in caplog.records) == 1


def test_scrapes_keep_working_once_the_series_table_starts_afresh(tmp_path, monkeypatch):
    """Past SERIES_LIMIT the table is renumbered: cached file shapes must not keep old slots."""
    K = layout.Key
    entries = [
        (K("req_total", "counter", "r", "", "req_total", (("route", f"/r{i}"),)), 1.0 + i, 0)
        for i in range(50)
    ]
    layout.write_file(os.path.join(tmp_path, layout.process_file_name(4242)), entries)
    write_client_dir(tmp_path, children=1)  # prometheus_client's files beside them
    collector = MultiProcessCollector(tmp_path)
    reader = dm.multiprocess.PrometheusFilesReader(tmp_path)
    before, client_before = collector.collect(), reader.families()
    assert {"req_total", "tokens_total", "gauge_all"} <= {f.name for f in before}
    monkeypatch.setattr(aggregate, "SERIES_LIMIT", 10)
    for _ in range(3):  # every scrape now starts its table afresh
        assert collector.collect() == before
        assert reader.families() == client_before
