"""The loop's two threads taking turns (dyn_metrics.server.turns)."""

import threading

from dyn_metrics.server.turns import Turns
from tests.server.helpers import TIMEOUT, wait_for


def test_a_turn_serves_its_job_on_its_own_thread_while_the_other_thread_runs_the_loop():
    turns_on, served_on, claims = [], [], []
    release = threading.Event()

    def turn():
        turns_on.append(threading.current_thread())
        if len(turns_on) == 1:
            claims.append(turns.claim())  # start() counted the other thread as waiting
            return "first"
        if len(turns_on) == 2:
            claims.append(turns.claim())  # the first thread is serving: no one to take over
            release.set()
            wait_for(turns.claim, "the first thread back, waiting for a turn")
            return "second"
        return None  # the third turn ends the loop

    def serve(job):
        served_on.append((job, threading.current_thread()))
        if job == "first":
            assert release.wait(TIMEOUT)

    turns = Turns[str](turn, serve, name="turns-test")
    turns.start()
    assert turns.ended.wait(TIMEOUT)
    turns.join(TIMEOUT)
    first, second = turns.threads
    assert claims == [True, False]
    assert turns_on[:2] == [first, second] and len(turns_on) == 3  # the third: either one
    assert served_on == [("first", first), ("second", second)]
    assert turns.over and not first.is_alive() and not second.is_alive()
    assert first.name == second.name == "turns-test" and first.daemon


def test_a_turn_that_returns_none_ends_both_threads_and_no_later_turn_runs():
    ran = []

    def turn():
        ran.append(threading.current_thread())
        return None

    turns = Turns[str](turn, lambda job: None, name="turns-test")
    turns.start()
    turns.join(TIMEOUT)
    assert ran == [turns.threads[0]]  # the waiting thread saw it over and left
    assert turns.ended.is_set() and not any(t.is_alive() for t in turns.threads)
