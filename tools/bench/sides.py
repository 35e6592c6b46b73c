"""The two library adapters: every call into either library goes through here.

An API rename is fixed in this file and nowhere else. The metric objects the
adapters hand out are typed ``Any``: the two libraries' metrics share no type,
and the cases only call ``inc`` / ``observe`` / ``set`` on them.
"""

import math
import os
import socket
import types
from typing import Any, Callable, Optional, Union

LABELS = ["a", "b"]
# Observed in a cycle by both sides: one value per prometheus_client default
# bucket, +Inf included, which also covers every dyn_metrics default bucket.
OBSERVE_VALUES = [
    0.001,
    0.007,
    0.02,
    0.04,
    0.06,
    0.09,
    0.2,
    0.4,
    0.6,
    0.9,
    2.0,
    4.0,
    6.0,
    9.0,
    20.0,
]

Metric = Any  # a metric, vec or child of either library
Getter = Callable[[str, str], Metric]  # positional label lookup: getter(a, b) -> child
Scrape = Callable[[], Union[str, bytes]]
# (host, port, path, stop) of a running /metrics server
Server = tuple[str, int, str, Callable[[], None]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def label_pair(i: int) -> tuple[str, str]:
    return f"a{i // 100}", f"b{i % 100}"


def fill_vec(getter: Getter, n: int, op: str) -> None:
    """Create n children (2 labels) and touch each once: ``inc`` or ``observe``."""
    for i in range(n):
        a, b = label_pair(i)
        child = getter(a, b)
        if op == "inc":
            child.inc()
        else:
            child.observe(OBSERVE_VALUES[i % len(OBSERVE_VALUES)])


class DynMetricsSide:
    """dyn_metrics calls used by the benchmark (public API only, see spec/api.md)."""

    name = "dyn_metrics"
    module_name = "dyn_metrics"

    def __init__(self, dm: types.ModuleType) -> None:
        self.dm = dm

    def version(self) -> str:
        return str(getattr(self.dm, "__version__", "(tree)"))

    # metrics, standalone (no registry needed for the hot path)
    def counter(self, name: str) -> Metric:
        return self.dm.Counter(name, "bench counter")

    def gauge(self, name: str) -> Metric:
        return self.dm.Gauge(name, "bench gauge")

    def histogram(self, name: str) -> Metric:
        return self.dm.Histogram(name, "bench histogram")  # default buckets

    def countervec(self, name: str) -> Metric:
        return self.dm.CounterVec(name, "bench counter vec", LABELS)

    def histogramvec(self, name: str) -> Metric:
        return self.dm.HistogramVec(name, "bench histogram vec", LABELS)

    @staticmethod
    def child_getter(vec: Metric) -> Getter:
        """Bound positional label lookup: getter(a, b) -> child."""
        getter: Getter = vec.with_label_values
        return getter

    @staticmethod
    def counter_value(metric: Metric) -> float:
        value: float = metric.get()
        return value

    def bucket_count(self) -> Optional[int]:
        """Number of buckets of a default histogram, +Inf included."""
        default = getattr(self.dm, "DEFAULT_BUCKETS", None)
        if default is None:
            h = self.histogram("bench_bucket_probe")
            default = getattr(getattr(h, "desc", None), "buckets", None)
        if default is None:
            return None
        b = list(default)
        return len(b) if b and math.isinf(b[-1]) else len(b) + 1

    # registry and scrapes
    def registry_for(self, metric: Metric) -> Any:
        reg = self.dm.Registry()
        reg.register(metric)
        return reg

    def scrape_registry(self, name: str) -> tuple[Any, Metric]:
        """A registry holding one 2-label counter vec: (registry, vec)."""
        vec = self.countervec(name)
        reg = self.dm.Registry()
        reg.register(vec)
        return reg, vec

    @staticmethod
    def text_scraper(reg: Any) -> Scrape:
        scrape: Scrape = reg.prometheus_expfmt
        return scrape

    @staticmethod
    def openmetrics_scraper(reg: Any) -> Scrape:
        from dyn_metrics.exposition import openmetrics as omfmt

        encode = omfmt.encode_to_string
        collect = reg.collect
        return lambda: encode(collect())

    def start_server(self, n_series: int) -> Server:
        dm = self.dm
        os.environ.pop("DYN_SYSTEM_PORT", None)
        drt = dm.DistributedRuntime()
        cv = drt.metrics().create_countervec("bench_http_total", "bench", LABELS)
        fill_vec(self.child_getter(cv), n_series, "inc")
        srv = dm.start_http_server(drt, port=0, host="127.0.0.1")

        def stop() -> None:
            srv.stop()
            shutdown = getattr(drt, "shutdown", None)
            if shutdown is not None:
                shutdown()

        return "127.0.0.1", srv.port, "/metrics", stop


class PrometheusClientSide:
    """prometheus_client calls used by the benchmark."""

    name = "prometheus_client"
    module_name = "prometheus_client"

    def __init__(self, pc: types.ModuleType) -> None:
        self.pc = pc
        # Same series per child on both sides: no `_created` samples.
        disable = getattr(pc, "disable_created_metrics", None)
        if disable is not None:
            disable()

    def version(self) -> str:
        try:
            from importlib.metadata import version

            return version("prometheus_client")
        except Exception:  # pragma: no cover - metadata missing
            return "?"

    def counter(self, name: str) -> Metric:
        return self.pc.Counter(name, "bench counter", registry=None)

    def gauge(self, name: str) -> Metric:
        return self.pc.Gauge(name, "bench gauge", registry=None)

    def histogram(self, name: str) -> Metric:
        return self.pc.Histogram(name, "bench histogram", registry=None)

    def countervec(self, name: str, registry: Any = None) -> Metric:
        return self.pc.Counter(name, "bench counter vec", LABELS, registry=registry)

    def histogramvec(self, name: str) -> Metric:
        return self.pc.Histogram(name, "bench histogram vec", LABELS, registry=None)

    @staticmethod
    def child_getter(vec: Metric) -> Getter:
        getter: Getter = vec.labels
        return getter

    @staticmethod
    def counter_value(metric: Metric) -> float:
        value: float = metric._value.get()
        return value

    def bucket_count(self) -> Optional[int]:
        return len(self.pc.Histogram.DEFAULT_BUCKETS)

    def registry_for(self, metric: Metric) -> Any:
        reg = self.pc.CollectorRegistry()
        reg.register(metric)
        return reg

    def scrape_registry(self, name: str) -> tuple[Any, Metric]:
        reg = self.pc.CollectorRegistry()
        return reg, self.countervec(name, registry=reg)

    def text_scraper(self, reg: Any) -> Scrape:
        gen = self.pc.generate_latest
        return lambda: gen(reg)

    def openmetrics_scraper(self, reg: Any) -> Scrape:
        from prometheus_client.openmetrics.exposition import generate_latest

        gen: Callable[[Any], bytes] = generate_latest  # prometheus_client leaves it untyped
        return lambda: gen(reg)

    def start_server(self, n_series: int) -> Server:
        pc = self.pc
        reg = pc.CollectorRegistry()
        cv = self.countervec("bench_http_total", registry=reg)
        fill_vec(self.child_getter(cv), n_series, "inc")
        res = pc.start_http_server(0, addr="127.0.0.1", registry=reg)
        if isinstance(res, tuple):  # 0.20+: (server, thread)
            httpd = res[0]

            def stop() -> None:
                httpd.shutdown()
                httpd.server_close()

            return "127.0.0.1", httpd.server_port, "/metrics", stop
        # Older releases return nothing: bind a free port ourselves.
        port = free_port()
        pc.start_http_server(port, addr="127.0.0.1", registry=reg)
        return "127.0.0.1", port, "/metrics", lambda: None


Side = Union[DynMetricsSide, PrometheusClientSide]
