"""The periodic export driver, ticked by a fake clock and event (no test sleeps for a tick).

``TickEvent.wait(timeout)`` records the timeout, then blocks until the test
hands out a tick (advancing the fake clock by the timeout) or the event is
set. Fork safety runs a real ``os.fork`` child.
"""

import logging
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import pytest

from dyn_metrics.errors import InvalidValueError
from dyn_metrics.export.periodic import PeriodicExporter

LOGGER = "dyn_metrics.export.periodic"
WAIT = 10.0  # the most any condition below may take to come true


@dataclass(frozen=True)
class Result:
    success: bool
    error_message: str = ""
    n: int = 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TickEvent:
    def __init__(self, clock: Clock) -> None:
        self._cond = threading.Condition()
        self._set = False
        self._tickets = 0
        self.clock = clock
        self.waits: list[Optional[float]] = []

    def set(self) -> None:
        with self._cond:
            self._set = True
            self._cond.notify_all()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: Optional[float] = None) -> bool:
        with self._cond:
            self.waits.append(timeout)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._set or self._tickets > 0)
            if self._set:
                return True
            self._tickets -= 1
            self.clock.now += timeout or 0.0
            self._cond.notify_all()
            return False

    def tick(self, n: int = 1) -> None:
        with self._cond:
            self._tickets += n
            self._cond.notify_all()

    def wait_for_waits(self, n: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.waits) >= n, WAIT), self.waits


class Recorder:
    """An export callable: returns the next outcome of ``plan`` (a Result or an exception)."""

    def __init__(self, plan: Optional[Callable[[int], object]] = None) -> None:
        self.calls = 0
        self.plan = plan or (lambda n: Result(True, n=n))
        self.cond = threading.Condition()

    def __call__(self) -> Result:
        with self.cond:
            self.calls += 1
            n = self.calls
            self.cond.notify_all()
        outcome = self.plan(n)
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, Result)
        return outcome

    def wait_calls(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.calls >= n, WAIT), self.calls


def fake_driver(
    export: Callable[[], Result], interval: float = 5.0, **kw: object
) -> "tuple[PeriodicExporter[Result], TickEvent, Clock]":
    clock = Clock()
    events: list[TickEvent] = []

    def factory() -> TickEvent:
        events.append(TickEvent(clock))
        return events[-1]

    driver = PeriodicExporter(
        export, interval, name="test", clock=clock, time=lambda: 1.7e9, event_factory=factory, **kw
    )  # type: ignore[arg-type]
    return driver, events[0], clock


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        # (arguments, part of the message)
        ({"export": 3}, "export must be callable, got 3"),
        ({"interval": 0}, "got 0"),
        ({"interval": -1.0}, "got -1.0"),
        ({"interval": float("nan")}, "got nan"),
        ({"interval": float("inf")}, "got inf"),
        ({"interval": True}, "got True"),
        ({"interval": "5"}, "got '5'"),
        ({"name": ""}, "name must be a non-empty string, got ''"),
        ({"name": " otlp"}, "got ' otlp'"),
        ({"name": 3}, "got 3"),
    ],
)
def test_bad_arguments(kwargs: dict, fragment: str) -> None:
    args: dict = {"export": Recorder(), "interval": 1.0, "name": "x", **kwargs}
    with pytest.raises(InvalidValueError) as info:
        PeriodicExporter(args.pop("export"), args.pop("interval"), **args)
    assert fragment in str(info.value)


def test_n_ticks_give_n_exports_on_the_interval() -> None:
    rec = Recorder()
    driver, ev, clock = fake_driver(rec, interval=5.0)
    driver.start()
    ev.tick(4)
    rec.wait_calls(4)
    ev.wait_for_waits(5)  # the fifth wait is pending: exactly four exports ran
    assert rec.calls == 4 and driver.export_count == 4
    assert ev.waits == [5.0] * 5
    assert clock.now == 1020.0 and driver.missed_ticks == 0
    assert driver.last_result == Result(True, n=4)
    assert driver.last_success_time == 1.7e9 and driver.consecutive_failures == 0
    assert driver.shutdown() is True
    assert rec.calls == 5  # the final export


def test_slow_export_skips_missed_ticks_and_keeps_the_grid() -> None:
    clock_box: list[Clock] = []

    def plan(n: int) -> Result:
        if n == 1:
            clock_box[0].now += 17.5  # the export outlasts 3 ticks of 5 s
        return Result(True, n=n)

    rec = Recorder(plan)
    driver, ev, clock = fake_driver(rec, interval=5.0)
    clock_box.append(clock)
    driver.start()
    ev.tick()
    ev.wait_for_waits(2)
    # started at 1005, ended at 1022.5: ticks 1010, 1015, 1020 skipped, next at 1025
    assert ev.waits[1] == pytest.approx(2.5)
    assert driver.missed_ticks == 3 and rec.calls == 1
    driver.shutdown()


def test_exports_never_overlap_and_export_now_waits_for_a_fresh_one() -> None:
    entered, release = threading.Event(), threading.Event()
    active = [0, 0]  # current, max
    lock = threading.Lock()

    def plan(n: int) -> Result:
        with lock:
            active[0] += 1
            active[1] = max(active)
        if n == 1:
            entered.set()
            release.wait(WAIT)
        with lock:
            active[0] -= 1
        return Result(True, n=n)

    rec = Recorder(plan)
    driver, ev, _ = fake_driver(rec)
    driver.start()
    ev.tick()
    assert entered.wait(WAIT)
    about, got = threading.Event(), []
    app = threading.Thread(target=lambda: (about.set(), got.append(driver.export_now())))
    app.start()
    assert about.wait(WAIT)
    assert rec.calls == 1  # the app's export waits for the background one
    release.set()
    app.join(WAIT)
    assert got == [Result(True, n=2)]  # its own export, not the background result
    assert active[1] == 1
    assert driver.last_result == Result(True, n=2) and driver.export_count == 2
    driver.shutdown()


def test_shutdown_wakes_the_tick_wait_and_a_backoff_wait_then_exports_once() -> None:
    waited: list[bool] = []
    in_backoff = threading.Event()
    driver: PeriodicExporter[Result]

    def export() -> Result:
        if not driver.stopping:
            in_backoff.set()
            waited.append(driver.wait(3600.0))  # a backoff sleep shutdown must end
            return Result(False, "stopped while retrying")
        return Result(True, "final")

    driver = PeriodicExporter(export, 3600.0, name="wake")  # real threading.Event
    driver.start()
    got: list[Result] = []
    app = threading.Thread(target=lambda: got.append(driver.export_now()))
    app.start()
    assert in_backoff.wait(WAIT)
    assert driver.shutdown(timeout=WAIT) is True
    app.join(WAIT)
    assert waited == [True] and got == [Result(False, "stopped while retrying")]
    assert driver.last_result == Result(True, "final") and driver.export_count == 2
    assert driver.state == "shut down" and not driver.running
    assert not any(t.name == "dyn-metrics-wake" for t in threading.enumerate())


def test_shutdown_is_idempotent_and_start_after_it_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder(lambda n: Result(n == 1))
    driver, ev, _ = fake_driver(rec)
    driver.start()
    ev.wait_for_waits(1)
    assert driver.shutdown() is True
    assert driver.shutdown() is True and driver.shutdown(timeout=0) is True
    assert rec.calls == 1
    with caplog.at_level(logging.WARNING, LOGGER):
        driver.start()
    assert driver.state == "shut down" and "start() ignored" in caplog.text


def test_never_started_shutdown_exports_nothing() -> None:
    rec = Recorder()
    driver, _, _ = fake_driver(rec)
    assert driver.state == "new" and driver.shutdown() is True and rec.calls == 0


def test_final_export_failure_is_reported() -> None:
    driver, ev, _ = fake_driver(Recorder(lambda n: Result(False, "503")))
    driver.start()
    assert driver.shutdown() is False
    assert driver.consecutive_failures == 1 and driver.last_success_time is None


def test_shutdown_timeout_while_an_export_hangs() -> None:
    entered, release = threading.Event(), threading.Event()

    def plan(n: int) -> Result:
        entered.set()
        release.wait(WAIT)
        return Result(True)

    rec = Recorder(plan)
    driver, ev, _ = fake_driver(rec)
    driver.start()
    ev.tick()
    assert entered.wait(WAIT)
    assert driver.shutdown(timeout=0.05) is False  # no final export behind a hung one
    release.set()
    assert rec.calls == 1 and driver.shutdown() is False


def test_shutdown_inside_an_export_does_not_deadlock(caplog: pytest.LogCaptureFixture) -> None:
    # The app's export (think: a SIGTERM handler running inside it) shuts down while the
    # background thread has woken for a tick and queues on the export lock.
    inner: list[bool] = []
    box: list = []

    def export() -> Result:
        driver, ev, clock = box
        if not inner:
            ev.tick()
            with ev._cond:  # the thread consumed the tick: it goes for the lock next
                assert ev._cond.wait_for(lambda: clock.now > 1000.0, WAIT)
            inner.append(driver.shutdown())
        return Result(True)

    box.extend(fake_driver(export))
    driver = box[0]
    driver.start()
    with caplog.at_level(logging.WARNING, LOGGER):
        assert driver.export_now() == Result(True)
    assert inner == [False] and "shutdown inside an export" in caplog.text
    assert driver.shutdown() is False and driver.export_count == 1
    for thread in [t for t in threading.enumerate() if t.name == "dyn-metrics-test"]:
        thread.join(WAIT)  # it got the lock, saw the stop and ended
        assert not thread.is_alive()


def test_exceptions_are_counted_and_logged_once_per_state_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # exports 1-3 raise, 4 succeeds, 5-6 fail by result, 7 raises a different type
    outcomes = {1: ValueError("boom"), 2: ValueError("boom"), 3: ValueError("boom")}
    outcomes.update({5: Result(False, "status 503"), 6: Result(False, "status 503")})

    def plan(n: int) -> object:
        if n == 7:
            return KeyError("k")
        return outcomes.get(n, Result(True, n=n))

    rec = Recorder(plan)
    driver, ev, _ = fake_driver(rec)
    seen = []
    with caplog.at_level(logging.INFO, LOGGER):
        driver.start()
        for n in range(1, 8):
            ev.tick()
            ev.wait_for_waits(n + 1)
            seen.append((driver.consecutive_failures, type(driver.last_error).__name__))
    assert seen == [
        (1, "ValueError"),
        (2, "ValueError"),
        (3, "ValueError"),
        (0, "NoneType"),
        (1, "NoneType"),
        (2, "NoneType"),
        (3, "KeyError"),
    ]
    assert driver.running and driver.last_result == Result(False, "status 503")
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == ["ERROR", "INFO", "WARNING", "ERROR"]
    assert "status 503" in messages[2][1]
    assert caplog.records[0].exc_info is not None and "boom" in caplog.text
    driver.shutdown()


def test_export_now_reraises_unless_on_error_converts() -> None:
    driver, _, _ = fake_driver(Recorder(lambda n: RuntimeError("transport bug")))
    with pytest.raises(RuntimeError, match="transport bug"):
        driver.export_now()
    assert driver.consecutive_failures == 1 and driver.last_result is None
    assert driver.force_flush() is False and driver.consecutive_failures == 2

    def on_error(e: BaseException) -> Result:
        return Result(False, f"raised {e}")

    conv, _, _ = fake_driver(Recorder(lambda n: RuntimeError("x")), on_error=on_error)
    assert conv.export_now() == Result(False, "raised x")
    assert conv.last_result == Result(False, "raised x")


def test_thread_name_daemon_idempotent_start_and_context_manager() -> None:
    rec = Recorder()
    driver = PeriodicExporter(rec, 3600.0, name="otlp")
    with driver as d:
        assert d is driver and driver.running and driver.thread_name == "dyn-metrics-otlp"
        threads = [t for t in threading.enumerate() if t.name == "dyn-metrics-otlp"]
        driver.start()
        again = [t for t in threading.enumerate() if t.name == "dyn-metrics-otlp"]
        assert len(threads) == 1 and threads == again and threads[0].daemon
    assert driver.state == "shut down" and rec.calls == 1 and not threads[0].is_alive()


def test_fork_child_sees_the_driver_stopped_and_can_start_its_own() -> None:
    rec = Recorder()
    driver = PeriodicExporter(rec, 3600.0, name="forky")
    driver.start()
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            facts = [driver.state, str(driver.running), str(driver.stopping)]
            driver.start()
            names = [t.name for t in threading.enumerate()]
            facts += [driver.state, str(names.count("dyn-metrics-forky"))]
            before = rec.calls
            facts.append(str(driver.export_now().success))
            facts.append(str(driver.shutdown(timeout=WAIT)))
            facts.append(str(rec.calls - before))
            os.write(write_fd, "|".join(facts).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        report = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    # stopped copy; restarted with its own thread; export_now + final export
    assert report.split("|") == ["forked", "False", "False", "running", "1", "True", "True", "2"]
    assert driver.running and driver.shutdown(timeout=WAIT) is True  # the parent's is untouched


def test_fork_child_of_an_unstarted_driver_shuts_down_without_exporting() -> None:
    rec = Recorder()
    driver = PeriodicExporter(rec, 3600.0, name="idle")
    pid = os.fork()
    if pid == 0:
        ok = driver.state == "new" and driver.shutdown() is True and rec.calls == 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
