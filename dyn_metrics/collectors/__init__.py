"""The default collectors: process, platform and garbage-collector metrics.

Each is a custom collector: ``collect()`` returns a list of :class:`~dyn_metrics.model.Family`
records (names, types, HELP and labels exactly as prometheus_client writes them) and
``describe()`` returns the same families with no samples, so a registry can detect name
clashes when one is registered. They work standalone, register nowhere by themselves, and
their ``collect()`` never raises.
"""

from .gc import GCCollector
from .platform import PlatformCollector
from .process import ProcessCollector

__all__ = ["GCCollector", "PlatformCollector", "ProcessCollector"]
