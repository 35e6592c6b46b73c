"""Instrumentation helpers: ``InProgress`` (track_inprogress) and ``ExceptionCounter``
(count_exceptions), as context managers and decorators, sync and async, under threads."""

import asyncio
import inspect
import threading

import pytest

import dyn_metrics as dm
from dyn_metrics.errors import InvalidValueError
from dyn_metrics.metrics.instrument import ExceptionCounter, InProgress

THREADS = 8
LOOPS = 2_000  # per thread
TIMEOUT = 60.0


class _Calls:
    """inc/dec callables recording the running total."""

    def __init__(self):
        self.value = 0

    def inc(self):
        self.value += 1

    def dec(self):
        self.value -= 1


# -- InProgress / track_inprogress -------------------------------------------------------


@pytest.mark.parametrize("make", [dm.Gauge, dm.IntGauge], ids=["Gauge", "IntGauge"])
def test_track_inprogress_context_manager_counts_while_inside(make):
    g = make("g", "g")
    with g.track_inprogress():
        assert g.get() == 1
        with g.track_inprogress():
            assert g.get() == 2
        assert g.get() == 1
    assert g.get() == 0


def test_track_inprogress_decrements_when_the_block_raises():
    g = dm.Gauge("g", "g")
    tracker = g.track_inprogress()
    with pytest.raises(KeyError):
        with tracker:
            assert g.get() == 1
            raise KeyError("boom")
    assert g.get() == 0
    with tracker:  # the same object can be entered again
        assert g.get() == 1
    assert g.get() == 0


def test_track_inprogress_decorator_keeps_metadata_and_decrements_on_raise():
    child = dm.GaugeVec("v", "v", ["a"]).labels("x")
    seen = []

    @child.track_inprogress()
    def work(x, fail=False):
        """Doc of work."""
        seen.append(child.get())
        if fail:
            raise ValueError(x)
        return x * 2

    assert work(21) == 42
    with pytest.raises(ValueError):
        work(1, fail=True)
    assert seen == [1.0, 1.0]
    assert child.get() == 0
    assert work.__name__ == "work" and work.__doc__ == "Doc of work."
    assert work.__wrapped__.__name__ == "work"


def test_track_inprogress_decorated_async_function_stays_async_and_tracks_until_done():
    g = dm.Gauge("g", "g")
    seen = []

    @g.track_inprogress()
    async def work(fail):
        """Doc."""
        await asyncio.sleep(0)
        seen.append(g.get())
        if fail:
            raise RuntimeError("boom")
        return "done"

    assert inspect.iscoroutinefunction(work) and work.__doc__ == "Doc."
    coroutine = work(False)
    assert g.get() == 0  # creating the coroutine is not running it
    assert asyncio.run(coroutine) == "done"
    with pytest.raises(RuntimeError):
        asyncio.run(work(True))
    assert seen == [1.0, 1.0] and g.get() == 0


def test_track_inprogress_threads_end_at_exactly_zero():
    g = dm.IntGauge("g", "g")
    tracker = g.track_inprogress()
    inside = threading.Barrier(THREADS + 1)
    release = threading.Barrier(THREADS + 1)
    errors = []

    @g.track_inprogress()
    def step():
        pass

    def run():
        try:
            with tracker:  # all threads inside at once: the gauge reads THREADS
                inside.wait(TIMEOUT)
                release.wait(TIMEOUT)
            for _ in range(LOOPS):
                with tracker:
                    pass
                step()
        except BaseException as exc:  # noqa: B036 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    inside.wait(TIMEOUT)
    assert g.get() == THREADS
    release.wait(TIMEOUT)
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert g.get() == 0


def test_inprogress_calls_plain_callables():
    calls = _Calls()
    tracker = InProgress(calls.inc, calls.dec)
    with tracker:
        assert calls.value == 1
    assert calls.value == 0


@pytest.mark.parametrize("bad", [5, "f", None])
def test_decorating_what_is_not_callable_is_refused(bad):
    g = dm.Gauge("g", "g")
    for helper, name in [
        (g.track_inprogress(), "track_inprogress()"),
        (g.time(), "time()"),
        (ExceptionCounter(lambda: None), "count_exceptions()"),
    ]:
        with pytest.raises(InvalidValueError) as info:
            helper(bad)
        assert str(info.value) == f"{name} decorates a callable, got {bad!r}"
    assert g.get() == 0


# -- ExceptionCounter / count_exceptions -------------------------------------------------


class _Custom(ValueError):
    pass


COUNT_ROWS = [
    # (id, exception argument, what the block raises (None: nothing), counted)
    ("default counts Exception", Exception, ValueError, 1),
    ("subclass matches", ValueError, _Custom, 1),
    ("other type passes uncounted", ValueError, KeyError, 0),
    ("tuple, first", (ValueError, KeyError), ValueError, 1),
    ("tuple, second", (ValueError, KeyError), KeyError, 1),
    ("tuple, neither", (ValueError, KeyError), TypeError, 0),
    ("empty tuple matches nothing", (), ValueError, 0),
    ("Exception leaves KeyboardInterrupt", Exception, KeyboardInterrupt, 0),
    ("BaseException takes KeyboardInterrupt", BaseException, KeyboardInterrupt, 1),
    ("no exception", Exception, None, 0),
]


@pytest.mark.parametrize(
    "exception, raised, counted", [r[1:] for r in COUNT_ROWS], ids=[r[0] for r in COUNT_ROWS]
)
def test_exception_counter_rows_as_context_manager_and_decorator(exception, raised, counted):
    calls = _Calls()
    counter = ExceptionCounter(calls.inc, exception)

    def body():
        if raised is not None:
            raise raised("x")
        return "ok"

    decorated = counter(body)
    for run in (lambda: _in_block(counter, body), decorated):
        if raised is None:
            assert run() == "ok"
        else:
            with pytest.raises(raised) as info:
                run()
            assert info.type is raised  # re-raised as is
    assert calls.value == 2 * counted


def _in_block(manager, body):
    with manager:
        return body()


def test_exception_counter_default_is_exception_and_decorator_keeps_metadata():
    calls = _Calls()

    @ExceptionCounter(calls.inc)
    def work():
        """Doc of work."""
        raise OSError("disk")

    with pytest.raises(OSError):
        work()
    with pytest.raises(OSError):
        work()
    assert calls.value == 2
    assert work.__name__ == "work" and work.__doc__ == "Doc of work."


def test_exception_counter_on_async_function_counts_when_the_coroutine_raises():
    calls = _Calls()

    @ExceptionCounter(calls.inc, ValueError)
    async def work(fail):
        await asyncio.sleep(0)
        if fail:
            raise ValueError("x")
        return 1

    assert inspect.iscoroutinefunction(work)
    assert asyncio.run(work(False)) == 1
    with pytest.raises(ValueError):
        asyncio.run(work(True))
    assert calls.value == 1


BAD_EXCEPTION_ROWS = [
    # (id, exception argument refused)
    ("instance", ValueError("x")),
    ("name", "ValueError"),
    ("None", None),
    ("not an exception class", int),
    ("list", [ValueError]),
    ("tuple with a non-class", (ValueError, "KeyError")),
    ("nested tuple", (ValueError, (KeyError,))),
]


@pytest.mark.parametrize(
    "bad", [r[1] for r in BAD_EXCEPTION_ROWS], ids=[r[0] for r in BAD_EXCEPTION_ROWS]
)
def test_exception_counter_refuses_what_is_not_exception_types(bad):
    calls = _Calls()
    with pytest.raises(InvalidValueError) as info:
        ExceptionCounter(calls.inc, bad)
    assert str(info.value) == (
        f"exception must be an exception class or a tuple of them, got {bad!r}"
    )
    assert calls.value == 0
