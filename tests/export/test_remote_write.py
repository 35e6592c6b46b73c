"""Remote write 1.0: the WriteRequest read back by protobuf from a descriptor built here
(field numbers from prompb, independent of our encoder), a real Prometheus 2.42 receiving
it, and the retry rules against a scripted loopback receiver."""

import http.server
import math
import threading
import time

import cramjam
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import dyn_metrics as dm
from dyn_metrics.errors import ExportRejectedError, ExportUnavailableError, InvalidValueError
from dyn_metrics.export import snappy
from dyn_metrics.export.pushgateway import Backoff
from dyn_metrics.export.remote_write import encode_write_request, retry_after, send
from dyn_metrics.export.result import ExportResult
from dyn_metrics.model import Family, Sample
from tests.realtools import Prometheus, free_port, get, poll

F = descriptor_pb2.FieldDescriptorProto


def _write_request_class():
    """prometheus.WriteRequest as in prompb/remote.proto and types.proto."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="dyn_metrics_test_remote.proto", package="rwtest", syntax="proto3"
    )

    def message(name, *fields):
        m = proto.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
        return m

    one, many = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("Label", ("name", 1, F.TYPE_STRING, one, ""), ("value", 2, F.TYPE_STRING, one, ""))
    message("Sample", ("value", 1, F.TYPE_DOUBLE, one, ""), ("timestamp", 2, F.TYPE_INT64, one, ""))
    message(
        "TimeSeries",
        ("labels", 1, F.TYPE_MESSAGE, many, ".rwtest.Label"),
        ("samples", 2, F.TYPE_MESSAGE, many, ".rwtest.Sample"),
    )
    meta = message(
        "MetricMetadata",
        ("type", 1, F.TYPE_ENUM, one, ".rwtest.MetricMetadata.MetricType"),
        ("metric_family_name", 2, F.TYPE_STRING, one, ""),
        ("help", 4, F.TYPE_STRING, one, ""),
        ("unit", 5, F.TYPE_STRING, one, ""),
    )
    kinds = meta.enum_type.add(name="MetricType")
    words = "UNKNOWN COUNTER GAUGE HISTOGRAM GAUGEHISTOGRAM SUMMARY INFO STATESET".split()
    for number, word in enumerate(words):
        kinds.value.add(name=word, number=number)
    message(
        "WriteRequest",
        ("timeseries", 1, F.TYPE_MESSAGE, many, ".rwtest.TimeSeries"),
        ("metadata", 3, F.TYPE_MESSAGE, many, ".rwtest.MetricMetadata"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("rwtest.WriteRequest")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


WriteRequest = _write_request_class()
TYPE_NAMES = {0: "UNKNOWN", 1: "COUNTER", 2: "GAUGE", 3: "HISTOGRAM", 5: "SUMMARY"}


def decode(body):
    request = WriteRequest()
    request.ParseFromString(body)
    series = []
    for ts in request.timeseries:
        names = [label.name for label in ts.labels]
        assert names == sorted(names), names
        labels = {label.name: label.value for label in ts.labels}
        series.append((labels, [(s.value, s.timestamp) for s in ts.samples]))
    meta = [(TYPE_NAMES[m.type], m.metric_family_name, m.help, m.unit) for m in request.metadata]
    return series, meta


def example_registry():
    reg = dm.Registry()
    c = reg.register(dm.CounterVec("jobs_total", "Jobs done", ["queue"]))
    c.with_label_values("a").inc(3)
    g = reg.register(dm.Gauge("temp_celsius", "Temperature", unit="celsius"))
    g.set(21.5)
    h = reg.register(dm.Histogram("lat_seconds", "Latency", buckets=[0.1, 1.0]))
    h.observe(0.5)
    h.observe(2.0)
    s = reg.register(dm.Summary("rpc_seconds", "RPC", objectives={0.5: 0.05}))
    s.observe(4.0)
    return reg


T = 1_700_000_000_123


def test_write_request_decodes_with_protobuf():
    body = encode_write_request(example_registry().gather(), timestamp_ms=T)
    series, meta = decode(body)
    assert series == [
        ({"__name__": "jobs_total", "queue": "a"}, [(3.0, T)]),
        ({"__name__": "lat_seconds_bucket", "le": "0.1"}, [(0.0, T)]),
        ({"__name__": "lat_seconds_bucket", "le": "1"}, [(1.0, T)]),
        ({"__name__": "lat_seconds_bucket", "le": "+Inf"}, [(2.0, T)]),
        ({"__name__": "lat_seconds_sum"}, [(2.5, T)]),
        ({"__name__": "lat_seconds_count"}, [(2.0, T)]),
        ({"__name__": "rpc_seconds", "quantile": "0.5"}, [(4.0, T)]),
        ({"__name__": "rpc_seconds_sum"}, [(4.0, T)]),
        ({"__name__": "rpc_seconds_count"}, [(1.0, T)]),
        ({"__name__": "temp_celsius"}, [(21.5, T)]),
    ]
    assert meta == [
        ("COUNTER", "jobs_total", "Jobs done", ""),
        ("HISTOGRAM", "lat_seconds", "Latency", ""),
        ("SUMMARY", "rpc_seconds", "RPC", ""),
        ("GAUGE", "temp_celsius", "Temperature", "celsius"),
    ]


LABEL_CASES = [
    # sample labels, external labels, labels sent
    ((), {"cluster": "c1"}, {"__name__": "x", "cluster": "c1"}),
    (
        (("cluster", "own"),),
        {"cluster": "c1", "a": "1"},
        {"__name__": "x", "a": "1", "cluster": "own"},
    ),
    ((("z", "1"), ("b", "2")), None, {"__name__": "x", "b": "2", "z": "1"}),
    ((("empty", ""),), {"gone": ""}, {"__name__": "x"}),  # empty values are absent labels
    ((("_a", "1"), ("Z", "2")), {"a": "3"}, {"__name__": "x", "Z": "2", "_a": "1", "a": "3"}),
]


@pytest.mark.parametrize("labels, external, expected", LABEL_CASES)
def test_labels_sorted_and_external_labels_never_override(labels, external, expected):
    family = Family("x", "gauge", "h", (Sample("x", labels, 1),))
    (got,), _ = decode(encode_write_request([family], external_labels=external, timestamp_ms=T))
    assert got == (expected, [(1.0, T)])


def test_values_timestamps_and_types():
    samples = (
        Sample("u", (("k", "a"),), 7),  # an int value
        Sample("u", (("k", "b"),), float("nan")),
        Sample("u", (("k", "c"),), -0.0, timestamp=1.5),  # its own timestamp, seconds
        Sample("u", (("k", "d"),), float("-inf"), timestamp=-2.0),  # before 1970
    )
    families = [
        Family("u", "untyped", "", samples),
        Family("none", "gauge", "no samples, no metadata", ()),
        Family("build", "info", "Build", (Sample("build_info", (("v", "1"),), 1),)),
        Family("c_total", "counter", "c", (Sample("c_created", (), 5.0), Sample("c_total", (), 1))),
    ]
    series, meta = decode(encode_write_request(families, timestamp_ms=T))
    values = [(labels.get("k"), points) for labels, points in series[:4]]
    assert values[0] == ("a", [(7.0, T)])
    assert values[1][0] == "b" and math.isnan(values[1][1][0][0])
    assert values[2] == ("c", [(-0.0, 1500)]) and math.copysign(1, values[2][1][0][0]) == -1
    assert values[3] == ("d", [(float("-inf"), -2000)])
    assert series[4] == ({"__name__": "build_info", "v": "1"}, [(1.0, T)])
    assert series[5:] == [({"__name__": "c_total"}, [(1.0, T)])]  # _created left out
    assert meta == [
        ("UNKNOWN", "u", "", ""),
        ("GAUGE", "build_info", "Build", ""),
        ("COUNTER", "c_total", "c", ""),
    ]


BAD_ARGUMENTS = [
    # keyword arguments, message part
    ({"external_labels": {"1bad": "x"}}, "'1bad'"),
    ({"external_labels": {"__name__": "x"}}, "'__name__'"),
    ({"external_labels": {"a": 1}}, "1"),
    ({"external_labels": [("a", "b")]}, "mapping"),
    ({"timestamp_ms": 1.5}, "1.5"),
    ({"timestamp_ms": True}, "True"),
]


@pytest.mark.parametrize("kwargs, message", BAD_ARGUMENTS)
def test_bad_encode_arguments(kwargs, message):
    kwargs = {"timestamp_ms": T, **kwargs}
    with pytest.raises(InvalidValueError, match=message.replace(".", r"\.")):
        encode_write_request(example_registry().gather(), **kwargs)


def big_families(n=10_000):
    reg = dm.Registry()
    g = reg.register(
        dm.GaugeVec(
            "dynamo_component_requests_in_flight", "In flight", ["model", "worker_id", "route"]
        )
    )
    for i in range(n):
        g.with_label_values(f"llama-{i % 4}", f"{i % 50:x}", f"/v1/route/{i // 50}").set(i % 97)
    return reg.gather()


def test_compression_ratio_of_10k_series():
    body = encode_write_request(big_families(), external_labels={"cluster": "eu-1"}, timestamp_ms=T)
    block = snappy.compress(body)
    assert bytes(cramjam.snappy.decompress_raw(block)) == body
    assert len(body) / len(block) >= 3.0  # 11.5x here
    series, _ = decode(body)
    assert len(series) == 10_000


# --- a real Prometheus 2.42 with its remote-write receiver


@pytest.fixture(scope="module")
def prometheus():
    prom = Prometheus([], flags=("--web.enable-remote-write-receiver",))
    try:
        poll(
            "prometheus /-/ready", lambda: prom.proc.poll() is None and get(f"{prom.base}/-/ready")
        )
        yield prom
    finally:
        prom.stop()


def value_of(prom, promql):
    def found():
        result = prom.query(promql)
        return result and result[0]["value"][1]

    return poll(promql, found)


def test_prometheus_receives_our_writes(prometheus):
    now = int(time.time() * 1000)
    body = encode_write_request(
        example_registry().gather(), external_labels={"cluster": "c1"}, timestamp_ms=now
    )
    result = send(f"{prometheus.base}/api/v1/write", snappy.compress(body), timeout=10.0)
    assert result == ExportResult(True, 204, 1)
    assert value_of(prometheus, 'jobs_total{queue="a",cluster="c1"}') == "3"
    assert value_of(prometheus, 'temp_celsius{cluster="c1"}') == "21.5"
    assert value_of(prometheus, 'lat_seconds_bucket{le="1"}') == "1"
    assert value_of(prometheus, 'lat_seconds_bucket{le="+Inf"}') == "2"
    assert value_of(prometheus, "lat_seconds_sum") == "2.5"
    assert value_of(prometheus, "histogram_quantile(1, lat_seconds_bucket)") == "1"
    assert value_of(prometheus, 'rpc_seconds{quantile="0.5"}') == "4"
    assert value_of(prometheus, "rpc_seconds_count") == "1"


def test_prometheus_400_is_a_rejection_with_its_text(prometheus):
    url = f"{prometheus.base}/api/v1/write"
    family = [Family("ooo_gauge", "gauge", "h", (Sample("ooo_gauge", (), 1),))]
    now = int(time.time() * 1000)
    assert send(url, snappy.compress(encode_write_request(family, timestamp_ms=now))).success
    older = snappy.compress(encode_write_request(family, timestamp_ms=now - 60_000))
    result = send(url, older, data_points=1, backoff=Backoff(sleep=_no_sleep))
    outcome = (result.success, result.status, result.attempts, result.rejected_data_points)
    assert outcome == (False, 400, 1, 1)
    assert isinstance(result.error, ExportRejectedError)
    assert "out of order sample" in result.error.body
    assert "out of order sample" in result.error_message
    corrupt = send(url, b"\x05not snappy", backoff=Backoff(sleep=_no_sleep))
    assert corrupt.status == 400 and "snappy" in corrupt.error.body


def _no_sleep(seconds):
    raise AssertionError(f"slept {seconds}s where no retry is due")


# --- retries against a scripted loopback receiver


class Stub:
    """A loopback receiver answering from ``script``: (status, headers, body) per request."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.requests.append((self.path, self.headers, body))  # names: any case
                status, headers, text = stub.script.pop(0) if stub.script else (500, {}, b"")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/write"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeTime:
    """A monotonic clock that only sleeping moves; the sleeps are recorded."""

    def __init__(self):
        self.now = 0.0
        self.slept = []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def backoff(self, **kwargs):
        return Backoff(sleep=self.sleep, clock=lambda: self.now, random=lambda: 0.5, **kwargs)


@pytest.fixture
def stub_factory():
    stubs = []

    def make(*script):
        stubs.append(Stub(script))
        return stubs[-1]

    yield make
    for stub in stubs:
        stub.close()


BODY = snappy.compress(b"\x0a\x00")


def test_required_headers_and_auth(stub_factory):
    stub = stub_factory((204, {}, b""))
    result = send(stub.url, BODY, headers={"X-Scope-OrgID": "team"}, bearer_token="tok")
    assert result == ExportResult(True, 204, 1)
    ((path, headers, body),) = stub.requests
    assert (path, body) == ("/api/v1/write", BODY)
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["User-Agent"] == f"dyn_metrics/{dm.__version__}"
    assert headers["Authorization"] == "Bearer tok"
    assert headers["X-Scope-OrgID"] == "team"
    stub2 = stub_factory((200, {}, b""))
    assert send(stub2.url, BODY, basic_auth=("u", "p")).success
    assert stub2.requests[0][1]["Authorization"] == "Basic dTpw"


def test_503_then_200_retries_with_backoff(stub_factory):
    stub = stub_factory((503, {}, b"busy"), (200, {}, b""))
    fake = FakeTime()
    result = send(stub.url, BODY, backoff=fake.backoff(), data_points=3)
    assert result == ExportResult(True, 200, 2)
    assert fake.slept == [1.0]
    assert len(stub.requests) == 2


def test_429_honours_retry_after(stub_factory):
    stub = stub_factory((429, {"Retry-After": "7"}, b"slow down"), (204, {}, b""))
    fake = FakeTime()
    assert send(stub.url, BODY, backoff=fake.backoff()).success
    assert fake.slept == [7.0]


def test_retry_after_past_the_timeout_gives_up(stub_factory):
    stub = stub_factory((503, {"Retry-After": "100"}, b"later"))
    fake = FakeTime()
    result = send(stub.url, BODY, timeout=30.0, backoff=fake.backoff(), data_points=5)
    outcome = (result.success, result.status, result.attempts, result.rejected_data_points)
    assert outcome == (False, 503, 1, 5)
    assert isinstance(result.error, ExportUnavailableError) and result.error.body == "later"
    assert fake.slept == []


@pytest.mark.parametrize("status", [400, 401, 404, 413, 307])  # other 4xx, 3xx: final
def test_4xx_is_not_retried(stub_factory, status):
    stub = stub_factory((status, {}, b"out of order sample\n"), (204, {}, b""))
    result = send(stub.url, BODY, backoff=Backoff(sleep=_no_sleep))
    assert (result.success, result.status, result.attempts) == (False, status, 1)
    assert isinstance(result.error, ExportRejectedError)
    assert result.error.body == "out of order sample\n"
    text = f"remote write to {stub.url!r} refused with {status}: out of order sample"
    assert result.error_message == text
    assert len(stub.requests) == 1


def test_5xx_until_attempts_run_out(stub_factory):
    stub = stub_factory(*[(502, {}, b"bad gateway")] * 3)
    fake = FakeTime()
    result = send(stub.url, BODY, backoff=fake.backoff(max_attempts=3))
    assert (result.success, result.status, result.attempts) == (False, 502, 3)
    assert isinstance(result.error, ExportUnavailableError) and result.error.attempts == 3
    assert fake.slept == [1.0, 2.0]


def test_connection_refused_is_retried_then_unavailable():
    fake = FakeTime()
    url = f"http://127.0.0.1:{free_port()}/api/v1/write"
    result = send(url, BODY, backoff=fake.backoff(max_attempts=2))
    assert (result.success, result.status, result.attempts) == (False, None, 2)
    assert "connection error" in result.error_message
    assert fake.slept == [1.0]


RETRY_AFTER = [
    # header, seconds
    ("3", 3.0),
    (" 0 ", 0.0),
    ("Thu, 01 Jan 1970 00:00:30 GMT", 20.0),  # an HTTP-date, 10 s after "now"
    ("Thu, 01 Jan 1970 00:00:05 GMT", 0.0),  # in the past
    ("soon", None),
    ("-1", None),
    (None, None),
]


@pytest.mark.parametrize("header, seconds", RETRY_AFTER)
def test_retry_after_values(header, seconds):
    assert retry_after(header, now=10.0) == seconds


SEND_ERRORS = [
    # arguments, message part
    (("ftp://x/", BODY), {}, "'ftp://x/'"),
    (("http://x/", "text"), {}, "str"),
    (("http://x/", BODY), {"timeout": 0}, "0"),
    (("http://x/", BODY), {"headers": {"Content-Type": "text/plain"}}, "'Content-Type'"),
    (("http://x/", BODY), {"basic_auth": ("u", "p"), "bearer_token": "t"}, "exclude"),
    (("http://x/", BODY), {"basic_auth": "u:p"}, "'u:p'"),
    (("http://x/", BODY), {"backoff": 3}, "3"),
]


@pytest.mark.parametrize("args, kwargs, message", SEND_ERRORS)
def test_bad_send_arguments(args, kwargs, message):
    with pytest.raises(InvalidValueError, match=message.replace("(", r"\(")):
        send(*args, **kwargs)
