"""OTLPExporter and RemoteWriteExporter end to end: a real grpcio server decoding with
opentelemetry-proto, a real Prometheus 2.42 remote-write receiver, the periodic driver's
final export, and the runtime starting them from the environment."""

import threading

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.export.exporters import (
    OTLPExporter,
    RemoteWriteExporter,
    export_counts,
    start_from_env,
)
from tests.export.test_grpc import Receiver
from tests.export.test_remote_write import prometheus, value_of  # noqa: F401 (fixture)
from tests.realtools import free_port


def _registry():
    reg = dm.Registry()
    reg.register(dm.Counter("jobs_total", "Jobs done")).inc(3)
    reg.register(dm.Gauge("temp_celsius", "Temperature")).set(21.5)
    hist = reg.register(dm.Histogram("lat_seconds", "Latency", buckets=[0.5, 1.0]))
    for v in (0.2, 0.7, 3.0):
        hist.observe(v)
    return reg


class OtlpReceiver(Receiver):
    """The grpcio receiver, decoding each export with opentelemetry-proto."""

    def export(self, request, context):
        self.calls.append((ExportMetricsServiceRequest.FromString(request), None))
        if self.mode == "unavailable":
            import grpc

            context.abort(grpc.StatusCode.UNAVAILABLE, "collector overloaded")
        if self.mode == "invalid":
            import grpc

            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad points")
        response = ExportMetricsServiceResponse()
        if self.mode == "partial":
            response.partial_success.rejected_data_points = 2
            response.partial_success.error_message = "two dropped"
        return response.SerializeToString()


@pytest.fixture(scope="module")
def collector():
    r = OtlpReceiver()
    yield r
    r.stop()


def _metrics(request):
    rm = request.resource_metrics[0]
    attrs = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
    scope = rm.scope_metrics[0]
    return attrs, scope.scope.name, {m.name: m for m in scope.metrics}


def test_otlp_grpc_export_reaches_a_real_grpc_server(collector):
    collector.calls.clear()
    collector.mode = "ok"
    exp = OTLPExporter(
        _registry(), endpoint=f"http://{collector.target}", protocol="grpc", service_name="worker"
    )
    result = exp.export_once()
    assert result.success and result.attempts == 1
    [(request, _)] = collector.calls
    attrs, scope, metrics = _metrics(request)
    assert attrs["service.name"] == "worker" and scope == "dynamo.runtime.metrics"
    jobs = metrics["jobs_total"].sum
    assert jobs.is_monotonic and jobs.aggregation_temporality == 2
    assert jobs.data_points[0].as_double == 3
    assert metrics["temp_celsius"].gauge.data_points[0].as_double == 21.5
    point = metrics["lat_seconds"].histogram.data_points[0]
    assert list(point.explicit_bounds) == [0.5, 1.0] and list(point.bucket_counts) == [1, 1, 1]
    assert point.count == 3 and point.sum == pytest.approx(3.9)
    assert exp.last_result is result and exp.consecutive_failures == 0
    assert exp.last_success_time is not None


@pytest.mark.parametrize(
    "mode, success, status, rejected",
    [("partial", True, 0, 2), ("invalid", False, 3, 3), ("unavailable", False, 14, 3)],
)
def test_otlp_grpc_outcomes_are_results_not_exceptions(collector, mode, success, status, rejected):
    collector.calls.clear()
    collector.mode = mode
    exp = OTLPExporter(
        _registry(), endpoint=f"http://{collector.target}", protocol="grpc", timeout=0.5
    )
    result = exp.export_once()
    assert (result.success, result.status, result.rejected_data_points) == (
        success,
        status,
        rejected,
    )
    # INVALID_ARGUMENT is permanent; UNAVAILABLE is retryable, but the first backoff
    # wait (1 s) would pass the 0.5 s export timeout, so one attempt either way.
    assert len(collector.calls) == 1 and result.attempts == 1
    assert exp.consecutive_failures == (0 if success else 1)


def test_otlp_unreachable_endpoint_is_a_failed_result_and_shutdown_exports_once_more(collector):
    collector.calls.clear()
    collector.mode = "ok"
    down = OTLPExporter(_registry(), endpoint=f"http://127.0.0.1:{free_port()}", timeout=0.3)
    assert down.export_once().success is False
    exp = OTLPExporter(_registry(), endpoint=f"http://{collector.target}", interval=3600.0)
    exp.start()
    assert exp.shutdown(timeout=10) is True
    assert len(collector.calls) == 1  # the final export
    before = export_counts().get(("otlp", "success"), 0)
    assert exp.export_once().success  # explicit exports still work after shutdown
    assert export_counts()[("otlp", "success")] == before + 1


def test_remote_write_exporter_reaches_a_real_prometheus(prometheus):  # noqa: F811
    rw = RemoteWriteExporter(
        f"{prometheus.base}/api/v1/write", _registry(), external_labels={"cluster": "rw"}
    )
    result = rw.write_once()
    assert result.success and result.status == 204
    assert value_of(prometheus, 'jobs_total{cluster="rw"}') == "3"
    assert value_of(prometheus, 'lat_seconds_bucket{cluster="rw",le="1"}') == "2"
    assert value_of(prometheus, 'temp_celsius{cluster="rw"}') == "21.5"


def test_remote_write_keeps_failed_batches_and_drops_the_oldest_past_the_limit():
    rw = RemoteWriteExporter(
        f"http://127.0.0.1:{free_port()}/api/v1/write", _registry(), timeout=0.2, queue_limit=20
    )
    samples = 1 + 1 + 5  # counter, gauge, histogram (3 buckets, sum, count)
    for _ in range(4):
        result = rw.write_once()
        assert result.success is False
    # 20 samples fit two batches of 7: the oldest two were dropped and counted.
    assert len(rw._pending) == 2 and rw.dropped_samples == 2 * samples
    assert rw.consecutive_failures == 4


def test_runtime_starts_the_exporters_the_environment_asks_for(collector, monkeypatch):
    collector.calls.clear()
    collector.mode = "ok"
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{collector.target}")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
    drt = dm.DistributedRuntime(config=SystemConfig())
    drt.namespace("ns").metrics.create_counter("req_total", "Requests").inc()
    assert [type(e).__name__ for e in drt.exporters] == ["OTLPExporter"]
    drt.shutdown()
    [(request, _)] = collector.calls  # the final export on shutdown
    _, _, metrics = _metrics(request)
    assert "dynamo_component_req_total" in metrics and "dynamo_component_uptime_seconds" in metrics
    assert start_from_env(None, {}, strict=True) == []


def test_a_bad_otlp_protocol_is_a_config_error_naming_the_variable():
    env = {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}
    with pytest.raises(dm.ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        start_from_env(None, env, strict=True)
    assert start_from_env(None, env, strict=False) == []
    assert threading.active_count() >= 1


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_otlp_http_exports_reach_a_receiver(protocol):
    import http.server

    from google.protobuf import json_format

    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"
        result = OTLPExporter(_registry(), endpoint=url, protocol=protocol).export_once()
    finally:
        server.shutdown()
        server.server_close()
    assert result.success and result.status == 200
    [(path, content_type, body)] = got
    assert path == "/v1/metrics"
    if protocol == "http/json":
        assert content_type == "application/json"
        request = json_format.Parse(body, ExportMetricsServiceRequest())
    else:
        assert content_type == "application/x-protobuf"
        request = ExportMetricsServiceRequest.FromString(body)
    _, _, metrics = _metrics(request)
    assert metrics["jobs_total"].sum.data_points[0].as_double == 3


def test_exports_are_counted_in_the_self_metrics(collector):
    collector.calls.clear()
    collector.mode = "ok"
    reg = _registry()
    server = dm.start_http_server(reg, port=0, host="127.0.0.1", self_metrics=True)
    try:
        OTLPExporter(reg, endpoint=f"http://{collector.target}").export_once()
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as r:
            text = r.read().decode()
    finally:
        server.stop()
    series = 'dyn_metrics_export_requests_total{exporter="otlp",result="success"} '
    line = next(x for x in text.splitlines() if x.startswith(series))
    assert int(line.split()[-1]) >= 1
    assert dm.check(text, "text").errors == []
