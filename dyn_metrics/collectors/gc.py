"""``GCCollector``: the garbage collector's counters per generation, as prometheus_client.

Three counter families from ``gc.get_stats()`` (``prometheus_client/gc_collector.py``),
each with one sample per generation, label ``generation`` = ``"0"``, ``"1"``, ...:
``python_gc_objects_collected_total``, ``python_gc_objects_uncollectable_total`` and
``python_gc_collections_total``.
"""

import gc
import platform

from ..model import COUNTER, Family, Sample

# (family name, gc.get_stats() key, help), in prometheus_client's order.
_FAMILIES = (
    ("python_gc_objects_collected_total", "collected", "Objects collected during gc"),
    (
        "python_gc_objects_uncollectable_total",
        "uncollectable",
        "Uncollectable objects found during GC",
    ),
    ("python_gc_collections_total", "collections", "Number of times this generation was collected"),
)


class GCCollector:
    """The collector's statistics, read from ``gc.get_stats()`` at each ``collect()``.

    Only CPython's ``gc.get_stats()`` has this shape: elsewhere (PyPy, GraalPy) the
    collector is inert, ``describe()`` and ``collect()`` return ``[]``, as prometheus_client
    does not register it there. ``collect()`` only reads the statistics: it never runs a
    collection, takes no lock, and works from inside a ``gc.callbacks`` callback (the
    counts are then those of before the collection in progress). Never registers itself.
    """

    def __init__(self) -> None:
        self._enabled = hasattr(gc, "get_stats") and platform.python_implementation() == "CPython"

    def describe(self) -> list[Family]:
        """The three families ``collect()`` produces, with no samples (none when inert)."""
        if not self._enabled:
            return []
        return [Family(name, COUNTER, help_text, ()) for name, _, help_text in _FAMILIES]

    def collect(self) -> list[Family]:
        """The current counts: three families, one sample per generation (ints)."""
        if not self._enabled:
            return []
        stats = gc.get_stats()
        families = []
        for name, key, help_text in _FAMILIES:
            samples = tuple(
                Sample(name, (("generation", str(gen)),), stat[key])
                for gen, stat in enumerate(stats)
            )
            families.append(Family(name, COUNTER, help_text, samples))
        return families
