"""Tests of dyn_metrics.multiprocess; ``write_client_dir`` fills a prometheus_client directory."""

import os
import subprocess
import sys

#: What each child process does, with prometheus_client in multiprocess mode.
#: argv[1] is the child's index: values differ per child so every aggregation shows.
CHILD = r"""
import sys
from prometheus_client import Counter, Gauge, Histogram, Summary

i = int(sys.argv[1])
requests = Counter("vllm:request_success", "Finished requests", ["finished_reason"])
requests.labels("stop").inc(1 + i)
requests.labels("length").inc(10)
Counter("tokens", "Tokens").inc(100 * (i + 1))
for mode in ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
             "mostrecent", "livemostrecent"):
    gauge = Gauge("gauge_" + mode, "A gauge, mode " + mode, ["engine"], multiprocess_mode=mode)
    gauge.labels("0").set(10 * (i + 1) - 3)
ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT", ["model_name"],
                 buckets=[0.1, 1.0, 2.5, 1e7])
ttft.labels("llama").observe(0.05 * (i + 1))
ttft.labels("llama").observe(2.0 + i)
Summary("latency_seconds", "Latency").observe(0.5 + i)
"""


def write_client_dir(path, children=2):
    """Run ``children`` processes, one after the other, writing into ``path``."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)}
    for i in range(children):
        subprocess.run([sys.executable, "-c", CHILD, str(i)], env=env, check=True, timeout=60)
