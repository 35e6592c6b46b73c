"""The outcome of one export, shared by the exporters (OTLP, remote write).

Exporters never raise for transport outcomes: a refused, failed or timed-out
export is an :class:`ExportResult` with ``success`` False, and the typed
error it would have raised in ``error``.
"""

from dataclasses import dataclass
from typing import Optional

from ..errors import ExportError

__all__ = ["ExportResult"]


@dataclass(frozen=True)
class ExportResult:
    """What one export did.

    ``success``: the receiver accepted the data (a 2xx, or gRPC ``OK``).
    ``status``: the last HTTP status or gRPC code, None when no answer came.
    ``attempts``: requests made, retries included (0: nothing was sent).
    ``rejected_data_points``: points the receiver refused (all of them for a
    failed export, a partial success's count otherwise). ``error_message``:
    "" on success, else what went wrong, the receiver's text included.
    ``error``: the :class:`~dyn_metrics.errors.ExportRejectedError` (permanent)
    or :class:`~dyn_metrics.errors.ExportUnavailableError` (retries or time ran
    out) describing a failure, None on success.
    """

    success: bool
    status: Optional[int] = None
    attempts: int = 0
    rejected_data_points: int = 0
    error_message: str = ""
    error: Optional[ExportError] = None
