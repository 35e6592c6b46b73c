"""Process-wide counts of what scrapes dropped or could not run.

The server's self metrics (``dyn_metrics_dropped_families_total``,
``dyn_metrics_callback_errors_total{kind}``) read them through :func:`stats`;
this module knows nothing of the server.

Counting is lock-free. Each count is an :class:`itertools.count`: ``next()``
on it is one C call, so under the GIL two threads never lose an update, and
a signal handler, ``gc.callbacks`` hook or finalizer that scrapes while the
interrupted frame is itself counting cannot deadlock (there is no lock to
wait for) nor lose an update (the interrupted ``next()`` either finished or
has not started). ``repr(count)`` (``count(5)``) reads the value without
changing it, so a read never makes a count go down. A plain ``n += 1``
would not do: it is a read, an add and a store, and a thread switch or a
signal between them loses an increment.
"""

import itertools

from ..metrics.gauge_functions import function_errors_total

__all__ = ["CALLBACK_ERROR_KINDS", "count_callback_error", "count_dropped_families", "stats"]

#: The ``kind`` label values of ``dyn_metrics_callback_errors_total``: update
#: and exposition-text callbacks and custom collectors (``typed``), counted
#: here, and gauge ``set_function`` failures, counted by the gauges
#: (``metrics.gauge_functions.function_errors_total``).
CALLBACK_ERROR_KINDS = ("update", "expfmt", "typed", "function")


class _Count:
    """A monotonic count, safe to bump from any thread or signal handler."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        self._count = itertools.count()

    def add(self, n: int = 1) -> None:
        for _ in range(n):
            next(self._count)

    @property
    def value(self) -> int:
        # repr is "count(N)", N the next value next() returns = how many calls so far.
        return int(repr(self._count)[6:-1])


_dropped_families = _Count()
_callback_errors = {kind: _Count() for kind in CALLBACK_ERROR_KINDS}


def count_dropped_families(n: int = 1) -> None:
    """Add ``n`` families left out of a scrape (invalid or repeated callback families)."""
    _dropped_families.add(n)


def count_callback_error(kind: str) -> None:
    """Count one failed callback of ``kind`` (one of :data:`CALLBACK_ERROR_KINDS`)."""
    _callback_errors[kind].add()


def stats() -> dict[str, object]:
    """The counts so far in this process, for self metrics.

    ``{"dropped_families": int, "callback_errors": {kind: int, ...}}`` with
    every kind of :data:`CALLBACK_ERROR_KINDS`. Counts only go up. Thread-safe
    and signal-safe (no lock).
    """
    return {
        "dropped_families": _dropped_families.value,
        "callback_errors": {
            kind: c.value + (function_errors_total() if kind == "function" else 0)
            for kind, c in _callback_errors.items()
        },
    }
