"""The timer behind ``time()`` and ``start_timer()``: context manager, decorator, manual."""

import time

import pytest

from tests.metrics.support import new_histogram


def test_histogram_cell_time_as_context_manager():
    cell = new_histogram((0.5, 60.0))
    with cell.time():
        time.sleep(0.001)
    assert cell.get_sample_count() == 1
    assert 0.0 < cell.get_sample_sum() < 60.0


def test_histogram_cell_time_observes_even_when_block_raises():
    cell = new_histogram()
    with pytest.raises(RuntimeError):
        with cell.time():
            raise RuntimeError("boom")
    assert cell.get_sample_count() == 1


def test_histogram_cell_time_as_decorator():
    cell = new_histogram()

    @cell.time()
    def work(x):
        """Doc of work."""
        return x * 2

    assert work(21) == 42
    assert work(1) == 2
    assert work.__name__ == "work" and work.__doc__ == "Doc of work."
    assert cell.get_sample_count() == 2
    assert cell.get_sample_sum() >= 0.0


def test_histogram_cell_start_timer_observe_duration():
    cell = new_histogram()
    timer = cell.start_timer()
    elapsed = timer.observe_duration()
    assert elapsed >= 0.0
    assert cell.get_sample_count() == 1
    assert cell.get_sample_sum() == elapsed
