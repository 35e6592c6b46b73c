"""Process-wide counts of exports, by exporter and outcome, for the self metrics.

``dyn_metrics_export_requests_total{exporter,result}`` reads :func:`export_counts`.
Counting is lock-free on the common path (``next`` on an ``itertools.count`` is
one C call); a lock only guards making a new count.
"""

import itertools
import threading

_counts: dict[tuple[str, str], "itertools.count[int]"] = {}
_lock = threading.Lock()


def count_export(exporter: str, success: bool) -> None:
    """Count one export of ``exporter`` (``otlp``, ``remote_write``)."""
    key = (exporter, "success" if success else "failure")
    counter = _counts.get(key)
    if counter is None:
        with _lock:
            counter = _counts.setdefault(key, itertools.count())
    next(counter)


def export_counts() -> dict[tuple[str, str], int]:
    """``{(exporter, "success" | "failure"): exports so far}`` in this process."""
    return {key: int(repr(c)[6:-1]) for key, c in list(_counts.items())}
