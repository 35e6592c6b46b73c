"""The exposition order kept by replaying logged changes, and the block templates of the text.

Every scrape of a family whose children changed since its last scrape must equal
the text of a family built afresh with the same children; the properties below
drive creations, removals, re-creations and clears between scrapes and compare.
"""

import gc
import threading

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

import dyn_metrics as dm
from dyn_metrics.exposition import text as expfmt
from dyn_metrics.metrics import cells, family, order
from tests.metrics.support import scrape

# Label values that sort in awkward places or need escaping: below '"' (space, '!'),
# '%' (a template's format character), quotes, backslashes, newlines, non-ASCII.
VALUES = st.sampled_from(
    ["a", "a ", "a!", "a%", "%s", "%%", "b", 'q"', "\\", "\n", "é", "日本", "", "z", "a\x01"]
)
KEYS = st.tuples(VALUES, VALUES)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS, st.integers(1, 3)),
        st.tuples(st.just("remove"), KEYS),
        st.tuples(st.just("scrape")),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


def _fresh_text(vec_cls, names, values):
    """The text of a new vec holding ``values`` ({key: amount}), scraped once."""
    fresh = vec_cls("m_total", "h", names)
    for key, amount in values.items():
        fresh.with_label_values(*key).inc_by(amount)
    return scrape(fresh)


def _run(vec_cls, names, ops):
    vec = vec_cls("m_total", "h", names)
    reg = dm.Registry()
    reg.register(vec)
    values = {}
    for op in ops:
        if op[0] == "add":
            _, key, amount = op
            vec.with_label_values(*key).inc_by(amount)
            values[key] = values.get(key, 0) + amount
        elif op[0] == "remove":
            if op[1] in values:
                vec.remove_label_values(*op[1])
                del values[op[1]]
        elif op[0] == "clear":
            vec.clear()
            values.clear()
        else:
            assert reg.prometheus_expfmt() == _fresh_text(vec_cls, names, values)
    assert reg.prometheus_expfmt() == _fresh_text(vec_cls, names, values)
    assert reg.prometheus_expfmt() == _fresh_text(vec_cls, names, values)  # steady


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_scrapes_between_changes_equal_a_fresh_family(ops):
    _run(dm.IntCounterVec, ["a", "b"], ops)


@settings(max_examples=100, deadline=None)
@given(OPS)
def test_label_names_declared_out_of_order_sort_by_name(ops):
    # Sorted by "a" first although declared second: the order's custom sort key.
    _run(dm.IntCounterVec, ["b", "a"], ops)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["inc", "set", "remove"]), VALUES), max_size=40))
def test_gauge_vec_float_values_and_replays_agree_with_collect(ops):
    vec = dm.GaugeVec("g", "h", ["k"], {"c": "x%y"})
    for op, value in ops:
        if op == "inc":
            vec.with_label_values(value).inc(0.25)
        elif op == "set":
            vec.with_label_values(value).set(-1e21)
        elif op == "remove":
            try:
                vec.remove_label_values(value)
            except dm.InvalidLabelsError:
                pass
        parts = []
        vec.write_text(parts.append)
        assert "".join(parts) == expfmt.encode_to_string(vec.collect())


def _children_text(vec):
    parts = []
    vec.write_text(parts.append)
    return "".join(parts)


def test_a_block_splits_when_it_grows_and_goes_when_emptied():
    vec = dm.CounterVec("m_total", "h", ["k"])
    for i in range(10):
        vec.with_label_values(f"k{i:05d}").inc()
    scrape(vec)
    # Everything inserted lands in one block until it splits past 2 * BLOCK lines.
    for i in range(10, 10 + 3 * order.BLOCK):
        vec.with_label_values(f"k{i:05d}").inc()
        if i % 97 == 0:
            _children_text(vec)
    text = _children_text(vec)
    blocks = vec._order.blocks
    assert len(blocks.templates) >= 2
    assert max(blocks.counts) <= 2 * order.BLOCK
    assert sum(blocks.counts) == 10 + 3 * order.BLOCK
    assert text == expfmt.encode_to_string(vec.collect())
    # Empty the first block: it goes, and the rest still print in order.
    first = blocks.counts[0]
    for i in range(first):
        vec.remove_label_values(f"k{i:05d}")
    _children_text(vec)
    assert len(vec._order.blocks.templates) == len(blocks.templates) - 1
    assert _children_text(vec) == expfmt.encode_to_string(vec.collect())


def test_adding_one_child_replays_the_log_instead_of_sorting_again(monkeypatch):
    vec = dm.CounterVec("m_total", "h", ["k"])
    for i in range(1000):
        vec.with_label_values(str(i)).inc()
    scrape(vec)
    sorts = []
    real_build = family.build
    monkeypatch.setattr(family, "build", lambda *a: sorts.append(1) or real_build(*a))
    before = vec._order
    vec.with_label_values("500x").inc()
    assert vec._log == [("500x",)]
    text = _children_text(vec)
    assert sorts == []  # replayed, not sorted
    assert vec._order is not before and before.keys[-1] == ("999",)  # the old one untouched
    assert 'm_total{k="500x"} 1\nm_total{k="501"} 1\n' in text
    assert vec._log == []


def test_a_flood_of_changes_drops_the_log_and_the_next_read_sorts_afresh():
    vec = dm.CounterVec("m_total", "h", ["k"])
    scrape(vec)
    for i in range(family.LOG_LIMIT + 1):
        vec.with_label_values(str(i)).inc()
    assert vec._log is None  # no more memory held for a family nobody reads
    assert _children_text(vec) == expfmt.encode_to_string(vec.collect())
    assert vec._log == []


def test_an_unread_family_logs_nothing():
    vec = dm.CounterVec("m_total", "h", ["k"])
    for i in range(100):
        vec.with_label_values(str(i)).inc()
    assert vec._log is None


def test_counter_reads_share_one_count_object_so_scrapes_cost_a_child_nothing():
    vec = dm.CounterVec("m_total", "h", ["k"])
    cells = [vec.with_label_values(str(i)) for i in range(50)]
    for c in cells:
        c.inc()
    for _ in range(300):  # past the small-int cache (256)
        scrape(vec)
    assert len({id(c._value) for c in cells}) == 1
    assert cells[0]._value == 300
    assert {c.get() for c in cells} == {1.0}
    late = vec.with_label_values("late")
    late.inc()
    late.inc()
    scrape(vec)
    assert len({id(c._value) for c in cells}) == 1 and late._value == 1
    assert 'm_total{k="late"} 2\n' in scrape(vec)


def test_a_scrape_nested_in_a_replay_sorts_a_private_copy():
    vec = dm.CounterVec("m_total", "h", ["k"])
    for i in range(5):
        vec.with_label_values(str(i)).inc()
    scrape(vec)
    vec.with_label_values("new").inc()
    nested = []
    lock = vec._order_lock
    assert cells.take(lock)  # as a replay on this thread holds it
    try:
        nested.append(_children_text(vec))
        assert vec._order.version != vec._version  # nothing shared was touched
    finally:
        cells.drop(lock)
    assert 'm_total{k="new"} 1' in nested[0]
    assert nested[0] == _children_text(vec)


def test_concurrent_creations_removals_and_scrapes_end_in_the_right_text():
    vec = dm.IntCounterVec("m_total", "h", ["t", "i"])
    reg = dm.Registry()
    reg.register(vec)
    stop = threading.Event()
    errors = []

    def churn(t):
        try:
            for i in range(400):
                vec.with_label_values(str(t), str(i)).inc()
                if i % 3 == 0:
                    vec.remove_label_values(str(t), str(i))
        except Exception as exc:  # reported below
            errors.append(exc)

    def scraper():
        while not stop.is_set():
            reg.prometheus_expfmt()

    scrapers = [threading.Thread(target=scraper) for _ in range(2)]
    workers = [threading.Thread(target=churn, args=(t,)) for t in range(4)]
    for th in scrapers + workers:
        th.start()
    for th in workers:
        th.join()
    stop.set()
    for th in scrapers:
        th.join()
    assert errors == []
    expected = {(str(t), str(i)): 1 for t in range(4) for i in range(400) if i % 3}
    assert reg.prometheus_expfmt() == _fresh_text(dm.IntCounterVec, ["t", "i"], expected)


def test_a_gc_callback_creating_children_mid_scrape_is_seen_by_the_next_scrape():
    vec = dm.CounterVec("m_total", "h", ["k"])
    for i in range(300):
        vec.with_label_values(str(i)).inc()
    scrape(vec)
    made = []

    def callback(phase, info):
        if phase == "start" and len(made) < 20:
            made.append(len(made))
            vec.with_label_values(f"gc{len(made)}").inc()

    gc.callbacks.append(callback)
    try:
        for i in range(300, 600):
            vec.with_label_values(str(i)).inc()
            if i % 50 == 0:
                _children_text(vec)
                gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert made
    assert _children_text(vec) == expfmt.encode_to_string(vec.collect())


@pytest.mark.parametrize("label", ["%", "%s", "%%d", "100%"])
def test_percent_in_const_and_variable_labels_prints_as_given(label):
    vec = dm.CounterVec("m_total", "h", ["k"], {"c": label})
    vec.with_label_values(label).inc(3)
    assert _children_text(vec).endswith(f'm_total{{c="{label}",k="{label}"}} 3\n')
