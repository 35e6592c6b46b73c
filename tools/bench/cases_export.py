"""The exporters: one OTLP request, one remote write, the snappy size reduction.

The right-hand column of these rows is not prometheus_client, which has no
OTLP or remote-write exporter, but the OpenTelemetry Python packages of the
``bench`` extra, fed the same points:

* building one OTLP ``ExportMetricsServiceRequest`` for a 10k-series counter
  vec (collect + encode) against the OpenTelemetry SDK's points encoded by
  ``opentelemetry-exporter-otlp-proto-common`` (target <= 0.5x);
* the snappy size of the 10k-series ``WriteRequest`` over its raw size (target:
  at least a 3x reduction, so compressed / original <= 1/3; the right column
  is python-snappy's ratio on the same bytes, for reference);
* one remote write body of 10k series (collect + encode + snappy) against
  ``opentelemetry-exporter-prometheus-remote-write`` translating the SDK's
  points and building its snappy body without sending it (target <= 0.5x).

The SDK's points are recorded once, outside the timed region: in the target
rows its reader's collection is not timed while ours is. Report rows under
them time our encode alone, and both sides with their collection. A missing
optional package makes its cells ERROR with the import error, never a
stopped run.
"""

import gc
import importlib
from time import perf_counter_ns
from typing import Any, Callable, Optional

from .harness import Bench, Row, Timed, fmt_ms

SERIES = 10_000
PEER = "prometheus_client"  # the table's right-hand column; here an OpenTelemetry package
START_NS = 1_700_000_000_000_000_000
NOW_NS = START_NS + 15_000_000_000
NOW_MS = NOW_NS // 1_000_000
INNER = 2  # builds per sample

Build = Callable[[], object]


def _ours(dm: Any, n: int) -> tuple[Build, Build, Callable[[], bytes], Build]:
    """(OTLP request, remote write body, raw WriteRequest, OTLP of pre-collected) for n series."""
    otlp_model = importlib.import_module(dm.__name__ + ".export.otlp_model")
    remote_write = importlib.import_module(dm.__name__ + ".export.remote_write")
    snappy = importlib.import_module(dm.__name__ + ".export.snappy")
    reg = dm.Registry()
    cv = reg.register(dm.CounterVec("requests_total", "Requests.", ["model", "worker"]))
    for i in range(n):
        cv.with_label_values("llama", str(i)).inc(i)

    def otlp(families: Optional[list[Any]] = None) -> bytes:
        body: bytes = otlp_model.encode_request(
            reg.collect() if families is None else families,
            resource_attributes={"service.name": "bench"},
            scope_version="0",
            start_time_unix_nano=START_NS,
            time_unix_nano=NOW_NS,
        )
        return body

    def raw() -> bytes:
        body: bytes = remote_write.encode_write_request(reg.collect(), timestamp_ms=NOW_MS)
        return body

    def write() -> bytes:
        body: bytes = snappy.compress(raw())
        return body

    collected = list(reg.collect())
    return otlp, write, raw, lambda: otlp(collected)


def _sdk_data(n: int) -> tuple[Any, Any]:
    """(MetricsData, its reader): the SDK holding n counter points with the same attributes."""
    sdk_metrics = importlib.import_module("opentelemetry.sdk.metrics")
    export = importlib.import_module("opentelemetry.sdk.metrics.export")
    view_mod = importlib.import_module("opentelemetry.sdk.metrics.view")
    reader = export.InMemoryMetricReader()
    # The SDK folds attribute sets past 2000 into one overflow point unless told otherwise.
    view = view_mod.View(instrument_name="requests", aggregation_cardinality_limit=n + 1)
    provider = sdk_metrics.MeterProvider(metric_readers=[reader], views=[view])
    counter = provider.get_meter("bench", "0").create_counter("requests")
    for i in range(n):
        counter.add(float(i), {"model": "llama", "worker": str(i)})
    data = reader.get_metrics_data()
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    if len(metric.data.data_points) != n:
        raise RuntimeError(f"the SDK kept {len(metric.data.data_points)} of {n} points")
    return data, reader


def _sdk_otlp(data: Any, reader: Any = None) -> Build:
    """The SDK's OTLP bytes of ``data``, or of a fresh collection when ``reader`` is given."""
    encoder = importlib.import_module("opentelemetry.exporter.otlp.proto.common.metrics_encoder")
    if reader is not None:
        return lambda: encoder.encode_metrics(reader.get_metrics_data()).SerializeToString()
    return lambda: encoder.encode_metrics(data).SerializeToString()


def _sdk_write(data: Any, reader: Any = None) -> Build:
    """The remote-write exporter's snappy body of ``data`` (or of a fresh collection)."""
    rw = importlib.import_module("opentelemetry.exporter.prometheus_remote_write")
    exporter = rw.PrometheusRemoteWriteMetricsExporter(endpoint="http://127.0.0.1:9/api/v1/write")
    # export() minus the POST: translate the points, then serialize + snappy.
    if reader is not None:
        return lambda: exporter._build_message(exporter._translate_data(reader.get_metrics_data()))
    return lambda: exporter._build_message(exporter._translate_data(data))


def _time(build: Build) -> float:
    """Mean ms of one build over INNER builds."""
    with Timed():
        t0 = perf_counter_ns()
        for _ in range(INNER):
            build()
        t1 = perf_counter_ns()
    return (t1 - t0) / INNER / 1e6


def _make(row: Row, column: str, make: Callable[[], Build]) -> Optional[Build]:
    """make() warmed once, or None with the row's cell set to the error."""
    try:
        build = make()
        build()
        return build
    except Exception as exc:  # a missing optional peer must not stop the run
        row.error(column, exc)
        if isinstance(exc, ImportError):
            row.errors[column] += " (install the bench extra: pip install -e '.[bench]')"
        return None


def _sizes(bench: Bench, row: Row, raw: Callable[[], bytes], ours: Build) -> None:
    """compressed / original for our snappy, and python-snappy's on the same bytes."""
    try:
        original = raw()
        compressed = ours()
        assert isinstance(compressed, bytes)
        row.add("dyn_metrics", len(compressed) / len(original))
        row.extra["dyn_metrics"] = f"({len(original)} -> {len(compressed)} B)"
        bench.info["export_write_request_bytes"] = len(original)
        bench.info["export_snappy_bytes"] = len(compressed)
    except Exception as exc:
        row.error("dyn_metrics", exc)
        return
    try:
        snappy = importlib.import_module("snappy")
        theirs = snappy.compress(original)
        row.add(PEER, len(theirs) / len(original))
        row.extra[PEER] = f"({len(theirs)} B, python-snappy)"
    except Exception as exc:  # reference only: the target reads our side
        row.error(PEER, exc)


def run(bench: Bench) -> None:
    k = SERIES // 1000
    otlp_row = bench.row(
        "otlp_encode_10k",
        f"OTLP request, {k}k series (ours collect+encode; right: OTel SDK encode)",
        "ms/request",
        fmt=fmt_ms,
        group="export",
    )
    otlp_only = bench.row(
        "otlp_encode_only_10k",
        "  encode only on both sides (the target: the SDK's exporter encoding its points)",
        "ms/request",
        0.5,
        fmt=fmt_ms,
        group="export",
    )
    otlp_both = bench.row(
        "otlp_collect_encode_10k",
        "  collect+encode on both sides (SDK reader collection timed too)",
        "ms/request",
        fmt=fmt_ms,
        group="export",
    )
    size_row = bench.row(
        "snappy_size_10k",
        f"snappy, {k}k-series WriteRequest: compressed/original (>= 3x reduction)",
        "compressed/original",
        1 / 3,
        kind="abs",
        fmt=("%.3f", "x"),
        group="export",
    )
    write_row = bench.row(
        "remote_write_10k",
        f"remote write, {k}k series (ours collect+encode+snappy; right: OTel RW exporter)",
        "ms/request",
        fmt=fmt_ms,
        group="export",
    )
    write_both = bench.row(
        "remote_write_collect_10k",
        "  collect+encode+compress on both sides (the target)",
        "ms/request",
        0.5,
        fmt=fmt_ms,
        group="export",
    )
    dyn = next(s for s in bench.sides if s.name == "dyn_metrics")
    dm: Any = getattr(dyn, "dm")  # noqa: B009  (Side is a union of the two adapters)
    bench.log(f"export: {SERIES} series, {bench.args.repeat} repeats")

    built: dict[str, Any] = {}

    def ours() -> Build:
        built["ours"] = _ours(dm, SERIES)
        return built["ours"][0]

    def sdk() -> Build:
        built["sdk"] = _sdk_data(SERIES)
        return _sdk_otlp(built["sdk"][0])

    cases: list[tuple[Row, str, Optional[Build]]] = [
        (otlp_row, "dyn_metrics", _make(otlp_row, "dyn_metrics", ours)),
        (otlp_row, PEER, _make(otlp_row, PEER, sdk)),
    ]
    if "ours" in built:
        otlp, write, raw, otlp_collected = built["ours"]
        _sizes(bench, size_row, raw, write)
        for row, build in (
            (otlp_only, otlp_collected),
            (otlp_both, otlp),
            (write_row, write),
            (write_both, write),
        ):
            cases.append((row, "dyn_metrics", _make(row, "dyn_metrics", lambda b=build: b)))
    else:
        missing = otlp_row.errors.get("dyn_metrics", "our series could not be built")
        for row in (otlp_only, otlp_both, size_row, write_row, write_both):
            row.errors.setdefault("dyn_metrics", missing)
    if "sdk" in built:
        data, reader = built["sdk"]
        peers: list[tuple[Row, Callable[[], Build]]] = [
            (otlp_only, lambda: _sdk_otlp(data)),
            (otlp_both, lambda: _sdk_otlp(data, reader)),
            (write_row, lambda: _sdk_write(data)),
            (write_both, lambda: _sdk_write(data, reader)),
        ]
        for row, make in peers:
            cases.append((row, PEER, _make(row, PEER, make)))
    else:
        missing = otlp_row.errors.get(PEER, "the SDK points are missing")
        for row in (otlp_only, otlp_both, write_row, write_both):
            row.errors.setdefault(PEER, missing)
    otlp_row.note = "right column: opentelemetry-sdk points, encode_metrics().SerializeToString()"
    write_row.note = (
        "right column: opentelemetry-exporter-prometheus-remote-write "
        "_translate_data + _build_message (python-snappy, C)"
    )
    gc.collect()
    for rep in range(bench.args.repeat):
        order = cases if rep % 2 == 0 else list(reversed(cases))
        for row, column, build in order:
            if build is None or column in row.errors:
                continue
            try:
                row.add(column, _time(build))
            except Exception as exc:
                row.error(column, exc)
        gc.collect()
