"""Scrape isolation: probes never wait behind scrapes, single-flight renders, scrape_timeout.

Renders here block on an Event; tests wait on the server's own count of
waiting scrapes, never on the clock.
"""

import threading

import pytest

from dyn_metrics.server import flight as flight_module
from dyn_metrics.server.app import _is_light
from dyn_metrics.server.flight import RenderFailed, RenderFlights, RenderHung, RenderTimeout
from tests.server.helpers import request

BODY = "# TYPE up gauge\nup 1\n"
REFUSED = b"Scrape refused: an earlier render is still running past the scrape timeout"


class BlockingRender:
    """Counts its calls; each blocks until ``release`` is set."""

    def __init__(self):
        self.calls = []
        self.release = threading.Event()
        self.returned = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, fmt, names):
        with self._lock:
            self.calls.append((fmt, names))
        self.release.wait(30)
        self.returned.set()
        return BODY


def wait_for(condition, what):
    """Poll ``condition`` on an Event-timed wait; fail naming ``what`` after ~10 s."""
    tick = threading.Event()
    for _ in range(2000):
        if condition():
            return
        tick.wait(0.005)
    pytest.fail(f"timed out waiting for {what}")


def in_threads(n, target):
    """Run ``target()`` on ``n`` threads; returns (threads, results list filled as they end)."""
    results = []
    lock = threading.Lock()

    def run():
        result = target()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def join(threads):
    for t in threads:
        t.join(10)
        assert not t.is_alive()


def scrape(server, path="/metrics", headers=None):
    status, _, body = request(server, path, headers=headers)
    return status, body


def test_concurrent_scrapes_share_one_render(serve):
    render = BlockingRender()
    server = serve(render)
    threads, results = in_threads(20, lambda: scrape(server))
    wait_for(lambda: server.scrapes_waiting == 20, "20 waiting scrapes")
    render.release.set()
    join(threads)
    assert results == [(200, BODY.encode())] * 20
    assert render.calls == [("text", None)]


def test_concurrent_gzip_scrapes_share_one_compression(serve, monkeypatch):
    import gzip

    from dyn_metrics.server import flight

    compressions = []
    real = gzip.compress
    monkeypatch.setattr(
        flight.gzip, "compress", lambda *a, **k: compressions.append(1) or real(*a, **k)
    )
    render = BlockingRender()
    server = serve(render)
    gz = {"Accept-Encoding": "gzip"}
    threads, results = in_threads(10, lambda: request(server, headers=gz))
    wait_for(lambda: server.scrapes_waiting == 10, "10 waiting scrapes")
    render.release.set()
    join(threads)
    assert {(s, h["content-encoding"], gzip.decompress(b)) for s, h, b in results} == {
        (200, "gzip", BODY.encode())
    }
    assert (len(render.calls), len(compressions)) == (1, 1)


def test_live_answers_while_80_scrapes_wait_on_a_hung_render(serve):
    render = BlockingRender()
    server = serve(render, max_connections=100, scrape_timeout=30.0)
    threads, results = in_threads(80, lambda: scrape(server))
    wait_for(lambda: server.scrapes_waiting == 80, "80 waiting scrapes")
    assert request(server, "/live")[0] == 200
    assert request(server, "/health")[0] == 200
    assert request(server, "/")[0] == 200
    names = {t.name for t in threading.enumerate()}
    assert f"dyn-metrics-server-{server.port}-probe-worker-1" in names  # the probes' own pool
    render.release.set()
    join(threads)
    assert [status for status, _ in results] == [200] * 80
    assert len(render.calls) == 1


def test_live_answers_while_every_handler_thread_waits(serve):
    # The default 64 handler threads all wait on the render and more scrapes
    # queue for a thread: the probe has its own pool.
    render = BlockingRender()
    server = serve(render, scrape_timeout=30.0)
    threads, results = in_threads(80, lambda: scrape(server))
    wait_for(lambda: server.scrapes_waiting == 64, "64 waiting scrapes")
    assert request(server, "/live")[0] == 200
    render.release.set()
    join(threads)
    assert [status for status, _ in results] == [200] * 80


def test_scrape_timeout_is_503_and_later_scrapes_are_refused_until_the_render_returns(serve):
    render = BlockingRender()
    server = serve(render, scrape_timeout=0.2)
    status, headers, body = request(server)
    assert (status, body) == (503, b"Scrape timed out after 0.2 s")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["retry-after"] == "1"
    # Refused at once while the render hangs, whatever the format or selection.
    for headers in ({}, {"Accept": "application/openmetrics-text"}):
        assert scrape(server, headers=headers) == (503, REFUSED)
    assert scrape(server, "/metrics?name[]=up") == (503, REFUSED)
    assert len(render.calls) == 1
    name = f"dyn-metrics-server-{server.port}-render"
    renders = [t for t in threading.enumerate() if t.name == name]
    assert len(renders) == 1  # the hung render pins one thread
    assert request(server, "/live")[0] == 200
    render.release.set()
    assert render.returned.wait(10)
    wait_for(lambda: scrape(server)[0] == 200, "a scrape after the render returned")
    assert len(render.calls) == 2


def test_scrapes_of_different_formats_or_selections_render_separately(serve):
    render = BlockingRender()
    server = serve(render, openmetrics=True)
    om = {"Accept": "application/openmetrics-text; version=1.0.0"}
    asks = [
        lambda: scrape(server),
        lambda: scrape(server),
        lambda: scrape(server, headers=om),
        lambda: scrape(server, "/metrics?name[]=up"),
        lambda: scrape(server, "/metrics?name[]=up"),
    ]
    threads = []
    for ask in asks:
        threads += in_threads(1, ask)[0]
    wait_for(lambda: server.scrapes_waiting == 5, "5 waiting scrapes")
    render.release.set()
    join(threads)
    assert sorted(render.calls, key=repr) == sorted(
        [("text", None), ("openmetrics", None), ("text", frozenset({"up"}))], key=repr
    )


@pytest.mark.parametrize("error", [RuntimeError("boom"), SystemExit(3), KeyboardInterrupt()])
def test_a_render_that_raises_fails_its_scrapes_only(serve, error, caplog):
    calls = []

    def render(fmt, names):
        calls.append(fmt)
        if len(calls) == 1:
            raise error
        return BODY

    server = serve(render)
    assert scrape(server) == (500, b"Failed to get metrics")
    assert scrape(server) == (200, BODY.encode())
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "Failed to get metrics"
    ]


def test_sequential_scrapes_each_render(serve):
    render = BlockingRender()
    render.release.set()
    server = serve(render)
    for _ in range(3):
        assert scrape(server)[0] == 200
    assert len(render.calls) == 3


def test_one_render_thread_serves_sequential_scrapes_and_ends_at_stop(serve):
    threads = []

    def render(fmt, names):
        threads.append(threading.current_thread())
        return BODY

    server = serve(render)
    for _ in range(3):
        assert scrape(server) == (200, BODY.encode())
    assert len(threads) == 3 and len(set(threads)) == 1  # made once, not per render
    assert threads[0].name == f"dyn-metrics-server-{server.port}-render"
    server.stop()
    assert not threads[0].is_alive()


def test_an_idle_render_thread_exits_and_a_new_one_renders():
    threads = []

    def render(fmt, names):
        threads.append(threading.current_thread())
        return BODY

    flights = RenderFlights(render, timeout=5.0, name="t", idle_timeout=0.05)
    assert flights.get("text", None).body == BODY.encode()
    threads[0].join(10)
    assert not threads[0].is_alive()
    assert flights.get("text", None).body == BODY.encode()
    assert len(threads) == 2 and threads[1] is not threads[0]
    flights.close()
    assert not threads[1].is_alive()


def test_on_scrape_hears_every_metrics_request_and_its_status(serve):
    events = []

    def on_scrape():
        events.append("start")
        return events.append

    def failing(fmt, names):
        raise RuntimeError("boom")

    server = serve(on_scrape=on_scrape)
    assert scrape(server)[0] == 200
    assert scrape(server, "/live")[0] == 200  # not a scrape
    assert scrape(server, "/metrics", headers={"Accept": "text/plain"})[0] == 200
    assert events == ["start", 200, "start", 200]
    broken = serve(failing, on_scrape=on_scrape)
    assert scrape(broken)[0] == 500
    assert events[-2:] == ["start", 500]


LIGHT = [
    # (request head, light: runs on the probe pool)
    (b"GET /live HTTP/1.1\r\n\r\n", True),
    (b"GET /health?x=1 HTTP/1.1\r\n\r\n", True),
    # everything else runs on the main pool: a 404 with a wrong password costs a
    # key derivation, which must never crowd out the probes
    (b"GET / HTTP/1.1\r\n\r\n", False),
    (b"GET /nowhere HTTP/1.1\r\n\r\n", False),
    (b"GARBAGE\r\n\r\n", False),
    (b"GET /metrics HTTP/1.1\r\n\r\n", False),
    (b"HEAD /metrics?name[]=up HTTP/1.1\r\n\r\n", False),
    (b"GET http://host:9/metrics HTTP/1.1\r\n\r\n", False),
    (b"GET http://host:9 HTTP/1.1\r\n\r\n", False),
    (b"GET http://host:9/live HTTP/1.1\r\n\r\n", True),
]


@pytest.mark.parametrize("head, light", LIGHT)
def test_is_light(head, light):
    assert _is_light(head) is light


def test_is_light_follows_the_configured_probe_paths():
    probes = frozenset((b"/ready", b"/alive"))
    assert _is_light(b"GET /ready HTTP/1.1\r\n\r\n", probes)
    assert not _is_light(b"GET /live HTTP/1.1\r\n\r\n", probes)


def test_a_render_thread_that_cannot_start_fails_one_scrape_only(monkeypatch):
    flights = RenderFlights(lambda fmt, names: "x 1\n", timeout=5.0, name="t")
    real_start = threading.Thread.start

    def cannot_start(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", cannot_start)
    with pytest.raises(RenderFailed):
        flights.get("text", None)
    monkeypatch.setattr(threading.Thread, "start", real_start)
    assert flights.get("text", None).body == b"x 1\n"  # threads again: served
    assert flights.get("openmetrics", None).body == b"x 1\n"


def test_hung_is_measured_from_the_renders_start_not_its_queueing(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(flight_module.time, "monotonic", lambda: clock[0])
    running = {fmt: threading.Event() for fmt in ("text", "openmetrics")}
    release = {fmt: threading.Event() for fmt in ("text", "openmetrics")}

    def render(fmt, names):
        running[fmt].set()
        release[fmt].wait(10)
        return fmt

    flights = RenderFlights(render, timeout=5.0, name="t")
    results = {}

    def scrape(key, fmt):
        results[key] = _get_or_error(flights, fmt)

    def waiting_for(n, scraper):  # until n scrapes wait, or the new one is already done
        while flights.waiting < n and scraper.is_alive():
            scraper.join(0.001)

    threads = [threading.Thread(target=scrape, args=("text", "text"))]
    threads[0].start()
    assert running["text"].wait(10)
    threads.append(threading.Thread(target=scrape, args=("om", "openmetrics")))
    threads[1].start()  # queued at t=0 behind the text render
    waiting_for(2, threads[1])
    clock[0] = 4.0  # the openmetrics render starts 4 s after it was queued
    release["text"].set()
    assert running["openmetrics"].wait(10)
    clock[0] = 6.0  # 6 s after queueing, 2 s into the render: it is not hung
    threads.append(threading.Thread(target=scrape, args=("late", "openmetrics")))
    threads[2].start()
    waiting_for(2, threads[2])  # the first openmetrics scrape and this one share the render
    release["openmetrics"].set()
    for thread in threads:
        thread.join()
    assert results == {"text": b"text", "om": b"openmetrics", "late": b"openmetrics"}


def _get_or_error(flights, fmt):
    try:
        return flights.get(fmt, None).body
    except (RenderTimeout, RenderHung, RenderFailed) as e:
        return type(e).__name__
