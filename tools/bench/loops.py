"""Timed loops, one shape for both sides, and the floors of this machine.

Each loop returns ns per call with nothing subtracted; the collector is off
while the clock runs. The floors time the cheapest things Python can do in the
same loop shape, so the absolute numbers in the table can be put in context.
"""

import itertools
import threading
from time import perf_counter_ns
from typing import Any, Callable

from .harness import Timed

_repeat = itertools.repeat


def loop_call0(f: Callable[[], object], n: int) -> float:
    it = _repeat(None, n)
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            f()
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def loop_call1(f: Callable[[Any], object], arg: object, n: int) -> float:
    it = _repeat(arg, n)
    with Timed():
        t0 = perf_counter_ns()
        for v in it:
            f(v)
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def loop_call_list(f: Callable[[Any], object], values: list[float]) -> float:
    with Timed():
        t0 = perf_counter_ns()
        for v in values:
            f(v)
        t1 = perf_counter_ns()
    return (t1 - t0) / len(values)


def loop_lookup_inc(get: Callable[[str, str], Any], a: str, b: str, n: int) -> float:
    it = _repeat(None, n)
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            get(a, b).inc()
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def loop_create(get: Callable[[str, str], Any], pairs: list[tuple[str, str]]) -> float:
    """ns per ``get(a, b)`` over pairs: on a fresh vec, each call creates a child."""
    with Timed():
        t0 = perf_counter_ns()
        for a, b in pairs:
            get(a, b)
        t1 = perf_counter_ns()
    return (t1 - t0) / len(pairs)


def floor_empty(n: int) -> float:
    it = _repeat(None, n)
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            pass
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def floor_incr(n: int) -> float:
    it = _repeat(None, n)
    x = 0
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            x += 1
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def floor_lock(n: int) -> float:
    it = _repeat(None, n)
    lock = threading.Lock()
    x = 0
    with Timed():
        t0 = perf_counter_ns()
        for _ in it:
            with lock:
                x += 1
        t1 = perf_counter_ns()
    return (t1 - t0) / n


def _noop() -> None:
    pass


def floor_call(n: int) -> float:
    return loop_call0(_noop, n)


# (title in the table, loop); the row key is "floor_" + the function's name
FLOORS: list[tuple[str, Callable[[int], float]]] = [
    ("empty loop (`for _ in repeat(None, n): pass`)", floor_empty),
    ("`x += 1`", floor_incr),
    ("`with lock: x += 1` (threading.Lock)", floor_lock),
    ("empty Python call `f()`", floor_call),
]
