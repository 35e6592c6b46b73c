"""GCCollector: gc.get_stats() as prometheus_client's three counter families."""

import gc

import prometheus_client
import pytest

from dyn_metrics.collectors import GCCollector
from tests.collectors import assert_round_trips, client_view, our_view, shape

NAMES = [
    "python_gc_objects_collected_total",
    "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
]


def by_generation(families, name):
    (family,) = [f for f in families if f.name == name]
    return {dict(s.labels)["generation"]: s.value for s in family.samples}


def test_matches_prometheus_client():
    ours = our_view(GCCollector().collect())
    # Its GCCollector refuses registry=None: a throw-away registry leaves the global one alone.
    client = prometheus_client.GCCollector(registry=prometheus_client.CollectorRegistry())
    theirs = client_view(client.collect())
    assert shape(ours) == shape(theirs)
    assert [f[0] for f in ours] == NAMES
    # Counts only grow, and ours were read first.
    for (_, _, _, mine), (_, _, _, later) in zip(ours, theirs):
        assert all(a[2] <= b[2] for a, b in zip(mine, later))


def test_one_sample_per_generation_with_int_values():
    families = GCCollector().collect()
    generations = [str(g) for g in range(len(gc.get_stats()))]
    for family in families:
        assert family.type == "counter"
        assert [dict(s.labels)["generation"] for s in family.samples] == generations
        assert all(type(s.value) is int and s.name == family.name for s in family.samples)


def test_full_collection_counts_for_generation_2():
    collector = GCCollector()
    before = by_generation(collector.collect(), "python_gc_collections_total")
    gc.collect()
    after = by_generation(collector.collect(), "python_gc_collections_total")
    assert after["2"] >= before["2"] + 1


def test_collect_inside_a_gc_callback_works_and_starts_no_collection():
    collector = GCCollector()
    seen = []

    def callback(phase, info):
        try:
            seen.append((phase, info["generation"], collector.collect()))
        except BaseException as exc:  # recorded: an exception here would be swallowed
            seen.append((phase, info["generation"], exc))

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    full = [(phase, result) for phase, generation, result in seen if generation == 2]
    assert [phase for phase, _ in full] == ["start", "stop"]
    for _, result in full:
        assert isinstance(result, list) and [f.name for f in result] == NAMES


def test_inert_where_the_interpreter_is_not_cpython(monkeypatch):
    monkeypatch.setattr("platform.python_implementation", lambda: "PyPy")
    collector = GCCollector()
    assert collector.collect() == []
    assert collector.describe() == []


def test_describe_lists_the_families_without_samples():
    collector = GCCollector()
    assert collector.describe() == [f._replace(samples=()) for f in collector.collect()]


@pytest.mark.parametrize("collect_first", [False, True])
def test_round_trips_through_both_formats(collect_first):
    if collect_first:
        gc.collect()
    assert_round_trips(GCCollector().collect())
