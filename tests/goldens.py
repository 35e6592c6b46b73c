"""The golden scenarios: builders of the byte-exact expositions in ``tests/golden``.

Each scenario is a function returning exposition text. The tests compare it
with ``tests/golden/NAME.prom``; ``python -m tools.update_goldens`` is the one
place that rewrites those files, from these same functions.
"""

import pathlib
import re

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig

GOLDEN_DIR = pathlib.Path(__file__).resolve().parent / "golden"
AUTO_KEYS = ["dynamo_namespace", "dynamo_component", "dynamo_endpoint", "worker_id"]

_UPTIME_LINE = re.compile(r"^(dynamo_component_uptime_seconds(?:\{[^}\n]*\})?) (\S+)$", re.M)
UPTIME_MASK = "0.01"


def read_golden(name):
    return (GOLDEN_DIR / f"{name}.prom").read_bytes().decode("utf-8")


def runtime(worker_id=None):
    """A runtime that never starts a server, whatever the environment says."""
    return dm.DistributedRuntime(worker_id=worker_id, config=SystemConfig())


def mask_uptime(text):
    """The scrape with the uptime gauge's value (which varies) replaced by a constant."""
    return _UPTIME_LINE.sub(lambda m: f"{m.group(1)} {UPTIME_MASK}", text)


def uptime_value(text):
    return float(_UPTIME_LINE.search(text).group(2))


# -- golden scenarios (section 4.3) ---------------------------------------------------


def build_345(worker_id=None):
    """The upstream ns345/comp345/ep345 test: one metric of each kind per level."""
    drt = runtime(worker_id)
    ns = drt.namespace("ns345")
    comp = ns.component("comp345")
    ep = comp.endpoint("ep345")
    em, cm, nm = ep.metrics(), comp.metrics(), ns.metrics()
    em.create_counter("testcounter", "A test counter").inc_by(123.456789)
    cv = em.create_countervec(
        "testcountervec", "A test counter vector", ["method", "status"], [("service", "api")]
    )
    cv.with_label_values("GET", "200").inc_by(10)
    cv.with_label_values("POST", "201").inc_by(5)
    cm.create_gauge("testgauge", "A test gauge").set(50000)
    h = cm.create_histogram("testhistogram", "A test histogram")
    for v in (1.0, 2.5, 4.0):
        h.observe(v)
    nm.create_intcounter("testintcounter", "A test int counter").inc_by(12345)
    nm.create_intgauge("testintgauge", "A test int gauge").set(42)
    igv = nm.create_intgaugevec(
        "testintgaugevec", "A test int gauge vector", ["instance", "status"], [("service", "api")]
    )
    igv.with_label_values("server1", "active").set(10)
    igv.with_label_values("server2", "inactive").set(0)
    return drt, ns, comp, ep


def scenario_endpoint_counter():
    drt = runtime()
    ep = drt.namespace("ns345").component("comp345").endpoint("ep345")
    ep.metrics().create_counter("testcounter", "A test counter").inc_by(123.456789)
    return ep.metrics().prometheus_expfmt()


def scenario_scrape_endpoint():
    return build_345()[3].metrics().prometheus_expfmt()


def scenario_scrape_component():
    return build_345()[2].metrics().prometheus_expfmt()


def scenario_scrape_namespace():
    return build_345()[1].metrics().prometheus_expfmt()


def scenario_scrape_runtime():
    return mask_uptime(build_345()[0].metrics().prometheus_expfmt())


def scenario_sibling_endpoints():
    comp = runtime().namespace("ns_test").component("comp_test")
    for name, value in (("ep1", 100), ("ep2", 200)):
        comp.endpoint(name).metrics().create_counter("requests_total", "Total requests").inc_by(
            value
        )
    return comp.metrics().prometheus_expfmt()


def scenario_duplicate_endpoints():
    comp = runtime().namespace("ns_dup").component("comp_dup")
    for value in (50, 75):
        comp.endpoint("ep_same").metrics().create_gauge("dup_metric", "Duplicate metric").set(value)
    return comp.metrics().prometheus_expfmt()


def scenario_worker_id_endpoint():
    """worker_id=255 on every sample, sorted like any label, before ``le``."""
    ep = runtime(255).namespace("ns").component("comp").endpoint("ep")
    m = ep.metrics()
    m.create_intcounter("requests_total", "Total requests", {"model": "m1"}).inc_by(3)
    h = m.create_histogram("latency_seconds", "Latency", {"model": "m1"}, buckets=[0.5, 1])
    for v in (0.25, 0.75, 2):
        h.observe(v)
    return m.prometheus_expfmt()


HIERARCHY_SCENARIOS = {
    "endpoint_counter": scenario_endpoint_counter,
    "scrape_endpoint": scenario_scrape_endpoint,
    "scrape_component": scenario_scrape_component,
    "scrape_namespace": scenario_scrape_namespace,
    "scrape_runtime": scenario_scrape_runtime,
    "sibling_endpoints": scenario_sibling_endpoints,
    "duplicate_endpoints": scenario_duplicate_endpoints,
    "worker_id_endpoint": scenario_worker_id_endpoint,
}


# -- golden scenarios (regenerated only by tools/update_goldens.py) ----------------

VLLM_TEXT = (
    "# HELP vllm_num_requests_running Running requests\n"
    "# TYPE vllm_num_requests_running gauge\n"
    'vllm_num_requests_running{model="llama"} 4\n'
)


def scenario_native_and_callback():
    """Section 4.3: a native counter on a bare registry plus an engine's text."""
    reg = dm.Registry()
    native = reg.register(dm.Counter("dynamo_native_total", "Native counter"))
    native.inc_by(7)
    reg.add_expfmt_callback(lambda: VLLM_TEXT)
    return reg.prometheus_expfmt()


REGISTRY_SCENARIOS = {
    "native_and_callback": scenario_native_and_callback,
}


SCENARIOS = {**HIERARCHY_SCENARIOS, **REGISTRY_SCENARIOS}
