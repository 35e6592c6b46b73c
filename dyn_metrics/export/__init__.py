"""Sending metrics out of the process: the Pushgateway client.

``pushgateway`` pushes one group (PUT/POST/DELETE) synchronously, with the
typed errors of :mod:`dyn_metrics.errors` (``ExportError`` and below).
"""

from .pushgateway import (
    Backoff,
    delete_from_gateway,
    gateway_url,
    instance_ip_grouping_key,
    push_to_gateway,
    pushadd_to_gateway,
)

__all__ = [
    "Backoff",
    "delete_from_gateway",
    "gateway_url",
    "instance_ip_grouping_key",
    "push_to_gateway",
    "pushadd_to_gateway",
]
