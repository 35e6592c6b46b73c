"""Sending metrics out of the process: Pushgateway, OTLP (gRPC, HTTP) and remote write.

``pushgateway`` pushes one group synchronously; ``exporters`` holds the
periodic :class:`~.exporters.OTLPExporter` and
:class:`~.exporters.RemoteWriteExporter`, assembled from ``periodic`` (the
background driver), ``otlp_config`` (``OTEL_*``, ``DYN_METRICS_REMOTE_WRITE_*``
read once), ``otlp_mapping`` (families -> OTLP records), ``otlp_model`` / ``otlp_json``
(the OTLP encoders), ``grpc`` over
``http2`` and ``hpack``, ``otlp_http``, ``remote_write`` and ``snappy``, all
over ``exposition.protowire`` (the wire format) and ``transport`` (retry pacing,
openers); ``counts`` keeps the export counts the self metrics read. Errors
are :mod:`dyn_metrics.errors`' ``ExportError`` and below; results are
:class:`~.result.ExportResult`.

The Pushgateway names are imported on first use (PEP 562): reading the counts
must not pull in the HTTP client.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pushgateway import (
        Backoff,
        delete_from_gateway,
        gateway_url,
        instance_ip_grouping_key,
        push_to_gateway,
        pushadd_to_gateway,
    )

_PUSHGATEWAY = (
    "Backoff",
    "delete_from_gateway",
    "gateway_url",
    "instance_ip_grouping_key",
    "push_to_gateway",
    "pushadd_to_gateway",
)


def __getattr__(name: str) -> Any:
    if name in _PUSHGATEWAY:
        from . import pushgateway

        return getattr(pushgateway, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Backoff",
    "delete_from_gateway",
    "gateway_url",
    "instance_ip_grouping_key",
    "push_to_gateway",
    "pushadd_to_gateway",
]
