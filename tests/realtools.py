"""Running the real binaries the interop tests talk to.

Debian's ``prometheus`` (``prometheus``, ``promtool``) and
``prometheus-node-exporter`` packages provide them; a test that needs one
fails, rather than skips, when it is missing. Every process listens on a
127.0.0.1 port of its own, keeps its files in a temporary directory and is
polled for readiness (never slept on).
"""

import json
import shutil
import socket
import subprocess
import tempfile
import time
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
    command-line arguments (``--enable-feature=exemplar-storage``).
    """

    def __init__(self, targets, flags=()):
        if isinstance(targets, str):
            targets = [targets]
        self.binary = binary("prometheus")
        self.dir = tempfile.mkdtemp(prefix="dyn-metrics-prom-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        listed = ", ".join(f"'{t}'" for t in targets)
        config = (
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: dyn\n    static_configs:\n"
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
