"""Streaming quantiles: the rank-error guarantee, the age window, the memory bound."""

import math
import random
from bisect import bisect_left, bisect_right

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dyn_metrics.metrics.quantiles import MERGE_AT, AgeWindow, QuantileStream, targets_of

OBJECTIVES = {0.5: 0.05, 0.9: 0.01, 0.99: 0.001}
TARGETS = targets_of(OBJECTIVES)


def stream_of(data, batch=1024, targets=TARGETS):
    s = QuantileStream(targets)
    for i in range(0, len(data), batch):
        s = s.insert_sorted(sorted(data[i : i + batch]))
    return s


def rank_errors(stream, data, objectives):
    """The objectives whose answer's rank interval misses ``[q*n - eps*n, q*n + eps*n]``."""
    ordered = sorted(data)
    n = len(ordered)
    missed = []
    for q, eps in objectives.items():
        v = stream.query(q)
        below, upto = bisect_left(ordered, v), bisect_right(ordered, v)
        if not (below <= q * n + eps * n and upto >= q * n - eps * n) or upto == below:
            missed.append((q, eps, v, below, upto, q * n))
    return missed


def generate(kind, seed, n):
    rng = random.Random(seed)
    draw = {
        "uniform": rng.random,
        "exponential": lambda: rng.expovariate(1.0),
        "lognormal": lambda: rng.lognormvariate(0.0, 3.0),
        "few distinct": lambda: float(rng.randint(0, 4)),
        "one value": lambda: 7.0,
    }[kind.split()[0] if kind.startswith(("uniform", "exponential", "lognormal")) else kind]
    data = [draw() for _ in range(n)]
    if kind.endswith("ascending"):
        data.sort()
    elif kind.endswith("descending"):
        data.sort(reverse=True)
    return data


KINDS = [
    "uniform",
    "exponential",
    "lognormal",
    "few distinct",
    "one value",
    "uniform ascending",
    "lognormal descending",
    "exponential ascending",
]


@settings(max_examples=40)
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 20_000),
    batch=st.sampled_from([1, 7, 1024, MERGE_AT]),
)
@example(kind="uniform", seed=1, n=20_000, batch=1024)
@example(kind="lognormal descending", seed=2, n=20_000, batch=MERGE_AT)
@example(kind="few distinct", seed=3, n=19_999, batch=1024)
def test_every_objective_is_met_within_its_rank_error(kind, seed, n, batch):
    data = generate(kind, seed, n if batch > 1 else min(n, 2000))
    stream = stream_of(data, batch)
    assert stream.n == len(data)
    assert rank_errors(stream, data, OBJECTIVES) == []


@settings(max_examples=20)
@given(
    seed=st.integers(0, 2**32 - 1),
    objectives=st.dictionaries(
        st.floats(0.001, 0.999), st.floats(0.0005, 0.3), min_size=1, max_size=4
    ),
)
def test_any_objectives_are_met(seed, objectives):
    data = generate("exponential", seed, 5000)
    stream = stream_of(data, 512, targets_of(objectives))
    assert rank_errors(stream, data, objectives) == []


def test_empty_stream_answers_nan():
    assert math.isnan(QuantileStream(TARGETS).query(0.5))
    assert QuantileStream(TARGETS).insert_sorted([]).n == 0


def test_small_streams_are_exact():
    # Fewer values than 1/eps: nothing may merge, the answer is an order statistic.
    s = QuantileStream(TARGETS).insert_sorted([1.0, 2.0, 3.0, 4.0])
    assert (s.query(0.5), s.query(0.99)) == (2.0, 4.0)
    assert len(s) == 4


def test_memory_stays_bounded():
    # Documented in quantiles.py: a few dozen to a few hundred tuples for
    # these objectives, whatever n; 400 bounds every distribution here.
    rng = random.Random(7)
    for data in (
        [rng.random() for _ in range(200_000)],
        sorted(rng.expovariate(1.0) for _ in range(200_000)),
        [float(rng.randint(0, 100)) for _ in range(200_000)],
    ):
        stream = stream_of(data)
        assert stream.n == 200_000
        assert len(stream) <= 400, len(stream)
        assert rank_errors(stream, data, OBJECTIVES) == []


# -- the age window ----------------------------------------------------------------------


def window(now=0.0, max_age=60.0, age_buckets=3):
    return AgeWindow.new(TARGETS, age_buckets, max_age, now)


def head(w):
    w = w.merged()
    return w.streams[w.head]


def test_window_rotates_every_max_age_over_age_buckets():
    w = window()
    assert w.expiry == 20.0
    w = w.add([1.0])
    assert w.rotated(19.999) is w
    w = w.rotated(20.0)
    assert (w.head, w.expiry) == (1, 40.0)
    # The value was in every stream; the one that was head is reset.
    assert [s.n for s in w.streams] == [0, 1, 1]
    assert w.query(0.5) == 1.0


def test_window_forgets_values_older_than_max_age():
    w = window().add([5.0])  # at t = 0
    w = w.rotated(25.0).add([6.0, 7.0])  # at t = 25
    assert head(w).n == 3  # the head holds everything since its reset at 0
    w = w.rotated(40.0)
    assert head(w).n == 3
    w = w.rotated(60.0)  # the stream reset at 20 is head: t = 0 is gone
    assert head(w).n == 2
    assert w.query(0.5) == 6.0
    w = w.rotated(85.0)  # everything is older than 60 s now
    assert head(w).n == 0
    assert math.isnan(w.query(0.5))


def test_window_jumps_over_a_long_idle_time():
    w = window().add([1.0, 2.0])
    w = w.rotated(10_000.0)
    assert all(s.n == 0 for s in w.streams)
    assert w.expiry == 10_000.0 + 20.0 - (10_000.0 % 20.0)
    assert w.expiry > 10_000.0 >= w.expiry - 20.0


def test_window_buffers_then_merges():
    w = window().add([3.0, 1.0][::-1])
    assert w.buffered == 2 and all(s.n == 0 for s in w.streams)
    assert w.query(0.5) == 1.0
    big = w.add(list(map(float, range(MERGE_AT))))
    assert big.buffered == 0 and all(s.n == MERGE_AT + 2 for s in big.streams)


def test_one_age_bucket_resets_the_whole_window():
    w = AgeWindow.new(TARGETS, 1, 10.0, 0.0).add([1.0])
    w = w.rotated(10.0)
    assert math.isnan(w.query(0.5))
