"""Multiprocess mode: metrics that several processes write and any one of them serves.

Today this package reads the ``.db`` files prometheus_client writes in
``PROMETHEUS_MULTIPROC_DIR`` (:class:`PrometheusFilesReader`), so an engine's
multiprocess metrics can be served without prometheus_client; dyn_metrics'
own multiprocess files come later.
"""

from .prometheus_files import PrometheusFilesReader

__all__ = ["PrometheusFilesReader"]
