"""Shared test setup: one Hypothesis profile so CI time stays predictable."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dyn_metrics",
    max_examples=int(os.environ.get("DYN_METRICS_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("dyn_metrics")
