"""Running the real binaries the interop tests talk to.

Debian's ``prometheus`` (``prometheus``, ``promtool``) and
``prometheus-node-exporter`` packages provide them; a test that needs one
fails, rather than skips, when it is missing. Every process listens on a
127.0.0.1 port of its own, keeps its files in a temporary directory and is
polled for readiness (never slept on).
"""

import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

INSTALL_HINT = (
    "install Debian's prometheus and prometheus-node-exporter packages "
    "(apt-get install prometheus prometheus-node-exporter)"
)
DEADLINE = 25.0
POLL = 0.1


def binary(name):
    """The path of the installed ``name``; fails the test when it is missing."""
    path = shutil.which(name)
    assert path, f"{name} not found: {INSTALL_HINT}"
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def poll(what, fn):
    """Call ``fn`` until it returns something truthy; fail after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except OSError as exc:  # the server is not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(POLL)
    pytest.fail(f"timed out waiting for {what}; last answer: {last!r}")


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class Prometheus:
    """A throw-away Prometheus scraping ``targets`` (one job) every second.

    ``targets`` is one ``host:port`` or a list of them; ``flags`` are extra
    command-line arguments (``--enable-feature=exemplar-storage``);
    ``honor_labels`` keeps the scraped ``job``/``instance`` (a Pushgateway's).
    """

    def __init__(self, targets, flags=(), honor_labels=False):
        if isinstance(targets, str):
            targets = [targets]
        self.binary = binary("prometheus")
        self.dir = tempfile.mkdtemp(prefix="dyn-metrics-prom-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        listed = ", ".join(f"'{t}'" for t in targets)
        config = (
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: dyn\n"
            + ("    honor_labels: true\n" if honor_labels else "")
            + "    static_configs:\n"
            f"      - targets: [{listed}]\n"
        )
        with open(f"{self.dir}/prometheus.yml", "w") as f:
            f.write(config)
        self.log = open(f"{self.dir}/prometheus.log", "w")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.dir}/prometheus.yml",
                f"--storage.tsdb.path={self.dir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *flags,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path, **params):
        """The ``data`` of a successful answer of ``/api/v1/<path>?<params>``."""
        url = f"{self.base}/api/v1/{path}?" + urllib.parse.urlencode(params)
        answer = get_json(url)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, promql):
        return self.api("query", query=promql)["result"]

    def wait_for(self, promql):
        def ready():
            assert self.proc.poll() is None, f"prometheus exited: {self.tail()}"
            return self.query(promql)

        return poll(promql, ready)

    def targets(self):
        """Every active target, once each has been scraped at least once."""

        def scraped():
            targets = get_json(f"{self.base}/api/v1/targets")["data"]["activeTargets"]
            done = targets and all(t["health"] != "unknown" for t in targets)
            return targets if done else None

        return poll("the first scrapes", scraped)

    def target(self):
        return self.targets()[0]

    def tail(self):
        self.log.flush()
        with open(f"{self.dir}/prometheus.log") as f:
            return f.read()[-2000:]

    def stop(self):
        _stop(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class NodeExporter:
    """A real ``prometheus-node-exporter`` on a free 127.0.0.1 port.

    ``args`` are extra command-line arguments; ``address`` is its
    ``host:port``, ``url`` its ``/metrics``. Construction returns once
    ``/metrics`` answers.
    """

    def __init__(self, args=()):
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}/metrics"
        self.proc = subprocess.Popen(
            [binary("prometheus-node-exporter"), f"--web.listen-address={self.address}", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def ready():
                assert self.proc.poll() is None, "node_exporter exited"
                return get(self.url)

            poll("node_exporter", ready)
        except BaseException:
            _stop(self.proc)
            raise

    def scrape(self):
        return get(self.url)

    def stop(self):
        _stop(self.proc)


class Pushgateway:
    """A real Debian ``prometheus-pushgateway`` on an ephemeral 127.0.0.1 port.

    In memory (``--persistence.file=""``: Debian's default is a file), with
    the admin API on for :meth:`wipe`. ``web_config`` is the text of a
    ``--web.config.file`` (basic auth, TLS); ``scheme`` is then what it
    serves. The port is read from the ``Listening on`` log line, and
    construction returns once ``/-/ready`` answers (``context`` is the TLS
    client context, ``auth`` the ``Authorization`` header the probes send).
    """

    LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')

    def __init__(self, web_config=None, scheme="http", context=None, auth=None):
        assert shutil.which("prometheus-pushgateway"), (
            "prometheus-pushgateway not found: apt-get install prometheus-pushgateway"
        )
        self.dir = tempfile.mkdtemp(prefix="dyn-metrics-pgw-")
        self.context = context
        self.auth = auth
        args = [
            binary("prometheus-pushgateway"),
            "--web.listen-address=127.0.0.1:0",
            "--persistence.file=",
            "--web.enable-admin-api",
        ]
        if web_config is not None:
            with open(f"{self.dir}/web.yml", "w") as f:
                f.write(web_config)
            args.append(f"--web.config.file={self.dir}/web.yml")
        self.log_path = f"{self.dir}/pushgateway.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.port = int(poll("the pushgateway's port", self._port))
            self.address = f"127.0.0.1:{self.port}"
            self.base = f"{scheme}://{self.address}"
            poll("the pushgateway's /-/ready", lambda: self.request("/-/ready")[0] == 200)
        except BaseException:
            self.stop()
            raise

    def _port(self):
        assert self.proc.poll() is None, f"pushgateway exited: {self.tail()}"
        found = self.LISTENING.search(self.tail())
        return found and found.group(1)

    def request(self, path, method="GET"):
        """``(status, body bytes)`` of ``method path``, with the probes' credentials."""
        request = urllib.request.Request(self.base + path, method=method)
        if self.auth is not None:
            request.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def groups(self):
        """``/api/v1/metrics``: every group as the gateway stores it."""
        status, body = self.request("/api/v1/metrics")
        assert status == 200, (status, body)
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    def group(self, **labels):
        """The stored group whose grouping labels (``job`` included) are ``labels``."""
        found = [g for g in self.groups() if g["labels"] == labels]
        assert len(found) == 1, (labels, [g["labels"] for g in self.groups()])
        return found[0]

    def metrics(self):
        """What the gateway serves on ``/metrics``, as text."""
        status, body = self.request("/metrics")
        assert status == 200, (status, body)
        return body.decode()

    def wipe(self):
        """Delete every group (the admin API answers 202)."""
        status, body = self.request("/api/v1/admin/wipe", method="PUT")
        assert status == 202, (status, body)
        poll("an empty pushgateway", lambda: not self.groups())

    def tail(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def stop(self):
        _stop(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
