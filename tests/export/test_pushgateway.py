"""The Pushgateway client against Debian's real ``prometheus-pushgateway`` (1.5.1).

Every push is read back through the gateway's ``/api/v1/metrics`` (or its
``/metrics``, parsed with ``dm.parse``); refusals are checked to leave the
gateway untouched. Retries run with an injected clock and sleep, so no test
waits for a backoff.
"""

import base64
import gzip
import re
import shutil
import ssl
import subprocess
import urllib.error

import prometheus_client
import pytest
from prometheus_client.exposition import basic_auth_handler, default_handler

import dyn_metrics as dm
from dyn_metrics.errors import ExportRejectedError, ExportUnavailableError
from dyn_metrics.export import (
    Backoff,
    delete_from_gateway,
    gateway_url,
    instance_ip_grouping_key,
    push_to_gateway,
    pushadd_to_gateway,
)
from tests.realtools import Prometheus, Pushgateway, free_port, poll

# The password "s3cret-push" hashed once with bcrypt (cost 4, to keep the
# gateway's checks cheap) by Python 3.11's crypt module (METHOD_BLOWFISH).
USER, PASSWORD = "pusher", "s3cret-push"
BCRYPT = "$2b$04$YpYUtb.j.S0TZfXjBWDi2.Qj2n/9mjsaeAJKwZeTirq6gUp75OYN."
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def gateway_process():
    gw = Pushgateway()
    yield gw
    gw.stop()


@pytest.fixture
def gateway(gateway_process):
    gateway_process.wipe()
    return gateway_process


@pytest.fixture(scope="module")
def auth_gateway():
    gw = Pushgateway(web_config=f"basic_auth_users:\n  {USER}: {BCRYPT}\n", auth=AUTH)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory):
    """A gateway serving HTTPS with a self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make the test certificate"
    d = tmp_path_factory.mktemp("pgw-tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=pgw",
         "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        cwd=d, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(d / "cert.pem"))
    config = f"tls_server_config:\n  cert_file: {d}/cert.pem\n  key_file: {d}/key.pem\n"
    gw = Pushgateway(web_config=config, scheme="https", context=context)
    yield gw
    gw.stop()


def registry_with(**values):
    """A registry of gauges ``name=value``, help "h"."""
    reg = dm.Registry()
    for name, value in values.items():
        reg.register(dm.Gauge(name, "h")).set(value)
    return reg


def values_of(group):
    """``{family: {labels tuple: value}}`` of a stored group, the gateway's own gauges left out."""
    out = {}
    for name, family in group.items():
        if name in ("labels", "last_push_successful", "push_time_seconds"):
            continue
        if name == "push_failure_time_seconds":
            continue
        out[name] = {tuple(sorted(m["labels"].items())): m.get("value") for m in family["metrics"]}
    return out


class TextSource:
    """A source rendering a fixed exposition (anything with render_exposition is one)."""

    def __init__(self, text):
        self.text = text

    def render_exposition(self, fmt, names):
        return self.text


class Recorder:
    """A handler in prometheus_client's protocol that records its calls and sends nothing."""

    def __init__(self, failures=()):
        self.calls = []
        self.failures = list(failures)

    def __call__(self, url, method, timeout, headers, data):
        self.calls.append({"url": url, "method": method, "timeout": timeout,
                           "headers": list(headers), "data": data})  # fmt: skip

        def send():
            if self.failures:
                failure = self.failures.pop(0)
                if isinstance(failure, int):
                    raise urllib.error.HTTPError(url, failure, "failing", {}, None)
                raise failure

        return send


class FakeTime:
    """An injected clock that only the injected sleep advances."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def backoff(self, **kwargs):
        return Backoff(jitter=0.0, sleep=self.sleep, clock=lambda: self.now, **kwargs)


# value -> path segment of the grouping key {"lbl": value}: push-exporters.md B2,
# every value the gateway was seen to store exactly.
ESCAPING = [
    ("ns/comp/ep", "lbl@base64/bnMvY29tcC9lcA=="),  # a "/" never travels as %2F
    ("/ns/comp", "lbl@base64/L25zL2NvbXA="),  # a leading "/" (a 301 if percent-encoded)
    ("", "lbl@base64/="),  # empty: the router would collapse "//"
    ("a b", "lbl@base64/YSBi"),  # a space, as prometheus_client sends it
    ("a+b", "lbl/a%2Bb"),  # "+" stays a plus
    ("a%b", "lbl/a%25b"),
    ("é", "lbl/%C3%A9"),
    ("a?b#c", "lbl/a%3Fb%23c"),
    ("a;b,c=d", "lbl/a%3Bb%2Cc%3Dd"),
    ("x.y~z-_", "lbl/x.y~z-_"),  # unreserved characters unchanged
]


@pytest.mark.parametrize("value, segment", ESCAPING)
def test_every_escaping_row_is_stored_as_asked(gateway, value, segment):
    url = gateway_url(gateway.address, "esc", {"lbl": value})
    assert url == f"http://{gateway.address}/metrics/job/esc/{segment}"
    push_to_gateway(gateway.address, "esc", registry_with(esc_value=1), {"lbl": value})
    assert gateway.group(job="esc", lbl=value)["labels"] == {"job": "esc", "lbl": value}


def test_job_is_escaped_like_a_value(gateway):
    assert gateway_url("h:1", "a/b") == "http://h:1/metrics/job@base64/YS9i"
    push_to_gateway(gateway.address, "a/b", registry_with(job_value=1))
    assert gateway.group(job="a/b")["job_value"]["metrics"][0]["value"] == "1"


def test_urls_are_prometheus_clients_byte_for_byte():
    key = {"path": "ns/comp/ep", "empty": "", "sp": "a b", "plain": "x+y?", "n": 3}
    ours, theirs = Recorder(), Recorder()
    for gateway in ("pgw:9091", "http://pgw:9091/", "https://pgw:9091"):
        push_to_gateway(gateway, "pc_job", dm.Registry(), key, handler=ours)
        prometheus_client.push_to_gateway(
            gateway, "pc_job", prometheus_client.CollectorRegistry(), key, handler=theirs
        )
    assert [c["url"] for c in ours.calls] == [c["url"] for c in theirs.calls]
    assert ours.calls[0]["url"] == (  # the URL observed in push-exporters.md B7
        "http://pgw:9091/metrics/job/pc_job/empty@base64/=/n/3"
        "/path@base64/bnMvY29tcC9lcA==/plain/x%2By%3F/sp@base64/YSBi"
    )
    assert ours.calls[0]["headers"] == theirs.calls[0]["headers"]


def test_put_post_delete_semantics(gateway):
    key = {"instance": "w1"}
    push_to_gateway(gateway.address, "sem", registry_with(a=1, b=2), key)
    assert values_of(gateway.group(job="sem", instance="w1")) == {
        "a": {(("instance", "w1"), ("job", "sem")): "1"},
        "b": {(("instance", "w1"), ("job", "sem")): "2"},
    }
    pushadd_to_gateway(gateway.address, "sem", registry_with(b=20, c=30), key)  # POST: b, c only
    stored = values_of(gateway.group(job="sem", instance="w1"))
    assert {name: list(v.values()) for name, v in stored.items()} == {
        "a": ["1"], "b": ["20"], "c": ["30"]
    }  # fmt: skip
    push_to_gateway(gateway.address, "sem", registry_with(c=300), key)  # PUT: the group is c
    group = gateway.group(job="sem", instance="w1")
    assert list(values_of(group)) == ["c"]
    assert group["last_push_successful"] is True
    assert group["push_time_seconds"]["metrics"][0]["value"] != "0"
    served = {f.name: f for f in dm.parse(gateway.metrics())}
    assert served["c"].samples == (
        dm.Sample("c", (("instance", "w1"), ("job", "sem")), 300),
    )  # fmt: skip
    assert served["c"].type == "gauge" and served["c"].help == "h"
    push_to_gateway(gateway.address, "bare", registry_with(d=4))  # no instance: instance=""
    served = {f.name: f for f in dm.parse(gateway.metrics())}
    assert served["d"].samples[0].labels == (("instance", ""), ("job", "bare"))
    delete_from_gateway(gateway.address, "sem", key)  # 202: queued, so poll
    poll("the deleted group", lambda: [g["labels"] for g in gateway.groups()] == [
        {"job": "bare"}
    ])  # fmt: skip
    delete_from_gateway(gateway.address, "never-pushed")  # a missing group is no error


COUNTER_INFLIGHT = TextSource("# TYPE dyn_inflight counter\ndyn_inflight 1\n")
# (what is pushed first, then the failing push, a pattern of the gateway's 400 text): B3.
REJECTED = [
    pytest.param(
        None,
        ({"grouping_key": {"instance": "t"}}, TextSource("x_ts 1 1700000000000\n")),
        "^pushed metrics are invalid or inconsistent with existing metrics: "
        "pushed metrics must not have timestamps\n$",
        id="timestamp",
    ),
    pytest.param(
        ({"grouping_key": {"instance": "g"}}, registry_with(dyn_inflight=7)),
        ({"grouping_key": {"instance": "c"}}, COUNTER_INFLIGHT),
        # which group the gateway meets first varies, and so does the text (here and below)
        r'collected metric "dyn_inflight" \{ label:<name:"instance" value:"[cg]" > '
        r'label:<name:"job" value:"rej" > (gauge:<value:7|counter:<value:1) > \} '
        r"is not a (COUNTER|GAUGE)",
        id="type conflict",
    ),
    pytest.param(
        ({"grouping_key": {"instance": "i"}}, TextSource("dup 1\n")),
        ({}, TextSource('dup{instance="i"} 2\n')),
        r'^pushed metrics are invalid or inconsistent with existing metrics: collected metric '
        r'"dup" \{ label:<name:"instance" value:"i" > label:<name:"job" value:"rej" > '
        r"untyped:<value:[12] > \} was collected before with the same name and label values\n$",
        id="duplicate",
    ),
]  # fmt: skip


@pytest.mark.parametrize("first, failing, text", REJECTED)
def test_gateway_400_text_is_carried(gateway, first, failing, text):
    if first is not None:
        push_to_gateway(gateway.address, "rej", first[1], **first[0])
    with pytest.raises(ExportRejectedError) as caught:
        push_to_gateway(gateway.address, "rej", failing[1], **failing[0])
    error = caught.value
    assert error.status == 400
    assert re.search(text, error.body), error.body
    assert error.body.strip() in str(error)
    assert error.url == gateway_url(gateway.address, "rej", failing[0].get("grouping_key"))


def test_a_failed_push_marks_the_group(gateway):
    push_to_gateway(gateway.address, "mark", TextSource("m 1\n"))
    with pytest.raises(ExportRejectedError):
        push_to_gateway(gateway.address, "mark", TextSource("m 2 1700000000000\n"))
    group = gateway.group(job="mark")
    assert group["last_push_successful"] is False
    assert group["push_failure_time_seconds"]["metrics"][0]["value"] != "0"
    assert values_of(group)["m"] == {(("instance", ""), ("job", "mark")): "1"}


LABELS = dm.InvalidLabelsError
# (arguments, the error raised before anything is sent)
REFUSED = [
    (dict(source=dm.Registry(), job=""), dm.InvalidNameError),
    (dict(source=dm.Registry(), grouping_key={"bad-name": "x"}), dm.InvalidNameError),
    (dict(source=dm.Registry(), grouping_key={"job": "x"}), dm.InvalidLabelsError),
    (dict(source=TextSource('t{job="x"} 1\n')), dm.InvalidLabelsError),
    (dict(source=TextSource('t{instance="w"} 1\n'), grouping_key={"instance": "w"}), LABELS),
    (dict(source=TextSource('t_bucket{z="a",le="+Inf"} 1\n'), grouping_key={"z": "a"}), LABELS),
    (dict(source=TextSource("t 1\nt 2\n")), dm.InvalidValueError),  # does not parse
    (dict(source=dm.Registry(), compression="snappy"), dm.InvalidValueError),
    (dict(source=dm.Registry(), timeout=0), dm.InvalidValueError),
    (dict(source=dm.Registry(), basic_auth="user:pw"), dm.InvalidValueError),
    (dict(source=dm.Registry(), tls_context=ssl.create_default_context()), dm.InvalidValueError),
    (dict(source=object()), dm.InvalidValueError),
]  # fmt: skip


@pytest.mark.parametrize("kwargs, error", REFUSED)
def test_refusals_send_nothing(gateway, kwargs, error):
    push_to_gateway(gateway.address, "keep", registry_with(k=1))
    before = gateway.groups()
    arguments = {"job": "refused", **kwargs}
    with pytest.raises(error) as caught:
        push_to_gateway(gateway.address, **arguments)
    assert str(caught.value)[0].islower()
    recorder = Recorder()  # a handler is not called either
    with pytest.raises(error):
        push_to_gateway(gateway.address, handler=recorder, **arguments)
    assert recorder.calls == []
    assert gateway.groups() == before


def test_a_metric_labelled_job_is_refused_by_name(gateway):
    reg = dm.Registry()
    reg.register(dm.Gauge("labelled", "h", const_labels={"job": "x"}))
    with pytest.raises(dm.InvalidLabelsError, match="'labelled'.*'job'"):
        push_to_gateway(gateway.address, "j", reg)
    assert gateway.groups() == []


def test_gzip_body(gateway):
    reg = registry_with(zipped=5)
    recorder = Recorder()
    push_to_gateway("pgw:1", "z", reg, handler=recorder, compression="gzip")
    (call,) = recorder.calls
    assert ("Content-Encoding", "gzip") in call["headers"]
    assert gzip.decompress(call["data"]) == dm.generate_latest(reg)
    push_to_gateway(gateway.address, "z", reg, compression="GZIP")
    assert values_of(gateway.group(job="z"))["zipped"] == {
        (("instance", ""), ("job", "z")): "5"
    }  # fmt: skip


def test_basic_auth(auth_gateway):
    reg = registry_with(authed=1)
    for credentials in (None, (USER, "wrong")):
        with pytest.raises(ExportRejectedError) as caught:
            push_to_gateway(auth_gateway.address, "auth", reg, basic_auth=credentials)
        assert (caught.value.status, caught.value.body.strip()) == (401, "Unauthorized")
    push_to_gateway(auth_gateway.address, "auth", reg, basic_auth=(USER, PASSWORD))
    assert "authed" in auth_gateway.group(job="auth")

    def pc_basic_auth(url, method, timeout, headers, data):  # prometheus_client's own handler
        return basic_auth_handler(url, method, timeout, headers, data, USER, PASSWORD)

    push_to_gateway(auth_gateway.address, "pc_handler", reg, handler=pc_basic_auth)
    assert "authed" in auth_gateway.group(job="pc_handler")
    with pytest.raises(ExportRejectedError) as caught:
        push_to_gateway(auth_gateway.address, "pc_handler", reg, handler=default_handler)
    assert caught.value.status == 401
    delete_from_gateway(auth_gateway.address, "pc_handler", handler=pc_basic_auth)
    recorder = Recorder()  # a handler gets the header too
    push_to_gateway("pgw:1", "auth", reg, handler=recorder, basic_auth=(USER, PASSWORD))
    assert ("Authorization", AUTH) in recorder.calls[0]["headers"]
    delete_from_gateway(auth_gateway.address, "auth", basic_auth=(USER, PASSWORD))
    poll("the deleted group", lambda: auth_gateway.groups() == [])


def test_tls(tls_gateway):
    reg = registry_with(secure=2)
    push_to_gateway(tls_gateway.base, "tls", reg, tls_context=tls_gateway.context)
    assert "secure" in tls_gateway.group(job="tls")
    with pytest.raises(ExportRejectedError, match="certificate"):  # not trusted: no retries
        push_to_gateway(tls_gateway.base, "tls", reg, backoff=FakeTime().backoff())


def test_a_redirect_is_a_rejection(gateway):
    # The gateway cleans "/x/../metrics" with a 301; a POST must not become a GET.
    with pytest.raises(ExportRejectedError) as caught:
        pushadd_to_gateway(f"http://{gateway.address}/x/..", "r", registry_with(r=1))
    assert caught.value.status == 301
    assert gateway.groups() == []


def test_unreachable_gateway_within_the_timeout():
    clock = FakeTime()
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ExportUnavailableError) as caught:
        push_to_gateway(address, "down", registry_with(u=1), timeout=5.0, backoff=clock.backoff())
    error = caught.value
    assert (error.attempts, error.last_status, error.status) == (3, None, None)
    assert clock.sleeps == [1.0, 2.0] and clock.now <= 5.0  # a 4 s wait would pass the deadline
    assert "Connection refused" in str(error) and error.url.startswith(f"http://{address}/")
    clock = FakeTime()
    with pytest.raises(ExportUnavailableError) as caught:
        push_to_gateway(address, "down", registry_with(u=1), timeout=None, backoff=clock.backoff())
    assert caught.value.attempts == 6 and clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_5xx_is_retried_then_succeeds():
    clock = FakeTime()
    recorder = Recorder(failures=[503, ConnectionResetError("reset")])
    push_to_gateway("pgw:1", "retry", registry_with(r=1), handler=recorder, timeout=10.0,
                    backoff=clock.backoff())  # fmt: skip
    assert len(recorder.calls) == 3 and clock.sleeps == [1.0, 2.0]
    assert [c["timeout"] for c in recorder.calls] == [10.0, 9.0, 7.0]  # what is left of the call
    recorder = Recorder(failures=[500, 502])
    with pytest.raises(ExportUnavailableError) as caught:
        push_to_gateway("pgw:1", "retry", registry_with(r=1), handler=recorder,
                        backoff=FakeTime().backoff(max_attempts=2))  # fmt: skip
    assert (caught.value.attempts, caught.value.last_status) == (2, 502)


def test_prometheus_scrapes_the_pushed_groups_with_honor_labels(gateway):
    reg = dm.Registry()
    requests = reg.register(dm.CounterVec("dyn_requests_total", "Requests", ["model"]))
    requests.with_label_values("llama").inc(5)
    push_to_gateway(gateway.address, "dynamo", reg, {"instance": "w1"})
    requests.with_label_values("llama").inc(4)
    push_to_gateway(gateway.address, "dynamo", reg)
    prom = Prometheus(gateway.address, honor_labels=True)
    try:
        found = poll("both pushed series", lambda: len(prom.query("dyn_requests_total")) == 2
                     and prom.query("dyn_requests_total"))  # fmt: skip
    finally:
        prom.stop()
    series = sorted(((r["metric"], r["value"][1]) for r in found), key=lambda r: r[1])
    name = {"__name__": "dyn_requests_total", "job": "dynamo", "model": "llama"}
    assert series == [({**name, "instance": "w1"}, "5"), (name, "9")]


def test_same_stored_group_as_prometheus_client(gateway):
    key = {"instance": "w1", "path": "ns/comp/ep"}
    pc = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("x_requests", "Requests", ["model"], registry=pc).labels("a").inc(5)
    prometheus_client.Gauge("x_inflight", "In flight", registry=pc).set(3)
    hist = prometheus_client.Histogram(
        "x_latency_seconds", "Latency", buckets=[0.1, 1.0], registry=pc
    )
    hist.observe(0.5)
    ours = dm.Registry()
    ours.register(dm.CounterVec("x_requests_total", "Requests", ["model"])).labels("a").inc(5)
    ours.register(dm.Gauge("x_inflight", "In flight")).set(3)
    ours.register(dm.Histogram("x_latency_seconds", "Latency", buckets=[0.1, 1.0])).observe(0.5)

    def stored():
        group = gateway.group(job="cross", instance="w1", path="ns/comp/ep")
        return {name: {k: v for k, v in family.items() if k != "time_stamp"}
                for name, family in group.items()
                if isinstance(family, dict) and "metrics" in family
                and not name.endswith("_created") and not name.startswith("push_")}  # fmt: skip

    prometheus_client.push_to_gateway(gateway.address, "cross", pc, key)
    theirs = stored()
    push_to_gateway(gateway.address, "cross", ours, key)
    assert stored() == theirs
    assert sorted(theirs) == ["x_inflight", "x_latency_seconds", "x_requests_total"]
    assert instance_ip_grouping_key() == prometheus_client.instance_ip_grouping_key()
