"""A real gunicorn with 4 sync workers counting requests in multiprocess mode.

Each worker imports the app with ``DYN_METRICS_MULTIPROC_DIR`` set, so its
metrics write its own file; ``/metrics`` on any worker serves the aggregate
through ``MultiProcessCollector``; gunicorn's ``child_exit`` hook calls
``mark_process_dead``. Workers recycle after a few requests (``max_requests``),
so the directory sees many dead processes: the totals must stay exact and the
directory small.
"""

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.realtools import free_port, poll

APP = """
import os
import time

import dyn_metrics as dm

REQUESTS = dm.Counter("app_requests_total", "Requests served")
LATENCY = dm.Histogram("app_latency_seconds", "Latency", buckets=[0.1, 1.0])
WORKERS = dm.Gauge("app_workers", "Live workers", multiprocess_mode="livesum")
WORKERS.set(1)
served = dm.Registry()
served.register(dm.multiprocess.MultiProcessCollector(os.environ["DYN_METRICS_MULTIPROC_DIR"]))
metrics = dm.make_wsgi_app(served)


def hold():
    # Each sync worker serves one request at a time: holding this one until 4
    # workers are inside makes the 4 concurrent requests land on 4 workers.
    hold_dir = os.environ["HOLD_DIR"]
    open(os.path.join(hold_dir, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 30
    while len(os.listdir(hold_dir)) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/metrics":
        return metrics(environ, start_response)
    if environ["PATH_INFO"] == "/hold":
        hold()
    REQUESTS.inc()
    LATENCY.observe(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"ok"]
"""

CONFIG = """
import dyn_metrics as dm

workers = 4
worker_class = "sync"
max_requests = {max_requests}
{preload}

def child_exit(server, worker):
    dm.multiprocess.mark_process_dead(worker.pid)
"""


def _gunicorn():
    found = shutil.which("gunicorn") or os.path.join(os.path.dirname(sys.executable), "gunicorn")
    assert os.path.exists(found), "gunicorn (a test extra) is not installed"
    return found


class Served:
    def __init__(self, tmp_path, max_requests, preload):
        self.dir = tmp_path / "mp"
        self.dir.mkdir()
        (tmp_path / "app.py").write_text(APP)
        (tmp_path / "conf.py").write_text(
            textwrap.dedent(CONFIG).format(
                max_requests=max_requests, preload="preload_app = True" if preload else ""
            )
        )
        self.port = free_port()
        (tmp_path / "hold").mkdir()
        env = dict(
            os.environ, DYN_METRICS_MULTIPROC_DIR=str(self.dir), HOLD_DIR=str(tmp_path / "hold")
        )
        env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
        self.log = open(tmp_path / "gunicorn.log", "w")
        self.proc = subprocess.Popen(
            [_gunicorn(), "-c", "conf.py", "-b", f"127.0.0.1:{self.port}", "app:app"],
            cwd=tmp_path,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        poll("gunicorn to answer", lambda: self.get("/metrics")[0] == 200)

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.getheader("X-Pid"), response.read().decode()
        finally:
            conn.close()

    def total(self, name, text):
        found = re.search(rf"^{name} (\S+)$", text, re.M)
        assert found, text
        return float(found.group(1))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def served(tmp_path):
    made = []

    def make(max_requests=0, preload=False):
        s = Served(tmp_path, max_requests, preload)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.mark.parametrize("preload", [False, True], ids=["imported per worker", "preload_app"])
def test_every_worker_serves_the_total(served, preload):
    s = served(preload=preload)
    with ThreadPoolExecutor(4) as pool:
        held = list(pool.map(lambda _: s.get("/hold"), range(4)))
    assert [status for status, _, _ in held] == [200] * 4
    assert len({pid for _, pid, _ in held}) == 4  # every worker counted some
    for _ in range(196):
        assert s.get("/")[0] == 200
    for _ in range(8):  # whichever worker answers the scrape
        status, _, text = s.get("/metrics")
        assert status == 200
        assert s.total("app_requests_total", text) == 200
        assert s.total("app_latency_seconds_count", text) == 200
        if not preload:  # each worker set it to 1 in its own process
            assert s.total("app_workers", text) == 4


def test_recycled_workers_keep_the_totals_and_the_directory_small(served):
    s = served(max_requests=10)
    for _ in range(600):  # about 60 worker restarts
        assert s.get("/")[0] == 200
    text = poll(
        "the totals after the restarts",
        lambda: (t := s.get("/metrics")[2]) and s.total("app_requests_total", t) == 600 and t,
    )
    assert s.total("app_latency_seconds_count", text) == 600
    files = sorted(os.listdir(s.dir))
    # 4 live workers' files, the aggregate, the lock; at most a few retired ones
    # waiting for the next compaction.
    assert len(files) <= 10, files
