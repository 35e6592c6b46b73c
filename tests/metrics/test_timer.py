"""The timer behind ``time()`` and ``start_timer()``: context manager, decorator, manual.

The clock is injected (``timer._perf_counter``): no sleeps, exact durations.
"""

import asyncio
import inspect

import pytest

import dyn_metrics as dm
from dyn_metrics.metrics import timer
from tests.metrics.support import new_histogram


@pytest.fixture
def clock(monkeypatch):
    """A fake ``perf_counter``: ``clock[0]`` is the time it reads."""
    now = [1000.0]
    monkeypatch.setattr(timer, "_perf_counter", lambda: now[0])
    return now


def test_histogram_cell_time_as_context_manager(clock):
    cell = new_histogram((0.5, 60.0))
    with cell.time():
        clock[0] += 2.5
    assert cell.get_sample_count() == 1
    assert cell.get_sample_sum() == 2.5


def test_histogram_cell_time_observes_even_when_block_raises(clock):
    cell = new_histogram()
    with pytest.raises(RuntimeError):
        with cell.time():
            clock[0] += 1.0
            raise RuntimeError("boom")
    assert cell.get_sample_count() == 1 and cell.get_sample_sum() == 1.0


def test_histogram_cell_time_as_decorator(clock):
    cell = new_histogram()

    @cell.time()
    def work(x):
        """Doc of work."""
        clock[0] += 0.25
        return x * 2

    assert work(21) == 42
    assert work(1) == 2
    assert work.__name__ == "work" and work.__doc__ == "Doc of work."
    assert cell.get_sample_count() == 2
    assert cell.get_sample_sum() == 0.5


def test_histogram_cell_start_timer_observe_duration(clock):
    cell = new_histogram()
    timer_ = cell.start_timer()
    clock[0] += 3.0
    assert timer_.observe_duration() == 3.0
    assert cell.get_sample_count() == 1
    assert cell.get_sample_sum() == 3.0


def test_time_going_backwards_observes_zero(clock):
    cell = new_histogram()
    with cell.time():
        clock[0] -= 5.0
    assert cell.get_sample_sum() == 0.0 and cell.get_sample_count() == 1


def test_observe_duration_before_start_raises_type_error():
    with pytest.raises(TypeError):
        timer.Timer(lambda s: None).observe_duration()


def test_timed_async_function_stays_async_and_is_timed_until_it_finishes(clock):
    cell = new_histogram()

    @cell.time()
    async def work(fail):
        await asyncio.sleep(0)
        clock[0] += 1.5
        if fail:
            raise ValueError("x")
        return "done"

    assert inspect.iscoroutinefunction(work)
    assert asyncio.run(work(False)) == "done"
    with pytest.raises(ValueError):
        asyncio.run(work(True))
    assert cell.get_sample_count() == 2 and cell.get_sample_sum() == 3.0


# -- Gauge.time(): the gauge is set to the elapsed seconds -------------------------------

GAUGE_TIME_ROWS = [
    # (id, metric maker, seconds elapsed, value stored)
    ("Gauge", lambda: dm.Gauge("g", "g"), 2.75, 2.75),
    ("IntGauge whole seconds", lambda: dm.IntGauge("g", "g"), 2.75, 2),
    ("IntGauge below a second", lambda: dm.IntGauge("g", "g"), 0.5, 0),
    ("GaugeVec child", lambda: dm.GaugeVec("g", "g", ["a"]).labels("x"), 0.125, 0.125),
    ("IntGaugeVec child", lambda: dm.IntGaugeVec("g", "g", ["a"]).labels("x"), 7.9, 7),
]


@pytest.mark.parametrize(
    "make, elapsed, stored", [r[1:] for r in GAUGE_TIME_ROWS], ids=[r[0] for r in GAUGE_TIME_ROWS]
)
def test_gauge_time_sets_the_elapsed_seconds(clock, make, elapsed, stored):
    g = make()
    g.set(100)
    with g.time():
        clock[0] += elapsed
        assert g.get() == 100  # set on exit only
    assert g.get() == stored and type(g.get()) is type(stored)

    @g.time()
    def work():
        clock[0] += 2 * elapsed
        raise KeyError("x")

    with pytest.raises(KeyError):
        work()
    assert g.get() == type(stored)(2 * elapsed)  # set when the call raises too


def test_gauge_time_replaces_a_function(clock):
    g = dm.Gauge("g", "g")
    g.set_function(lambda: 42)
    with g.time():
        clock[0] += 1.0
    assert g.get() == 1.0
    g.set_function(None)  # no function left to remove
    assert g.get() == 1.0
