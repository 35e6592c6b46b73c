"""Scrape isolation: probes never wait behind scrapes, single-flight renders, scrape_timeout.

Renders here block on an Event; tests wait on the server's own count of
waiting scrapes, never on the clock.
"""

import threading

import pytest

from dyn_metrics.server import flight as flight_module
from dyn_metrics.server.app import MetricsServer, _is_light
from dyn_metrics.server.flight import RenderFailed, RenderFlights, RenderHung, RenderTimeout
from dyn_metrics.server.loop import HttpLoop
from tests.server.helpers import exchange, request, wait_for

BODY = "# TYPE up gauge\nup 1\n"
REFUSED = b"Scrape refused: an earlier render is still running past the scrape timeout"


class BlockingRender:
    """Counts its calls; each blocks until ``release`` is set."""

    def __init__(self):
        self.calls = []
        self.threads = []
        self.release = threading.Event()
        self.returned = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, fmt, names):
        with self._lock:
            self.calls.append((fmt, names))
            self.threads.append(threading.current_thread())
        self.release.wait(30)
        self.returned.set()
        return BODY


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
    # The default 64 handler threads and one loop thread all wait on the render
    # and more scrapes queue for a thread: the probe has its own pool.
    render = BlockingRender()
    server = serve(render, scrape_timeout=30.0)
    threads, results = in_threads(80, lambda: scrape(server))
    wait_for(lambda: server.scrapes_waiting == 65, "65 waiting scrapes")
    assert request(server, "/live")[0] == 200
    render.release.set()
    join(threads)
    assert [status for status, _ in results] == [200] * 80


def no_hand_over(server):
    """Make ``server`` run every request on its pools: its loop never hands itself over."""
    turns = server._loop._turns
    with turns._lock:
        turns._waiting = 0  # counts the loop threads ready to take over: none


def render_is_done(server):
    """Whether the thread of a render that returned is back waiting for work."""
    return server._loop._pool._idle == 1 or server._loop._turns._waiting == 1


@pytest.mark.parametrize("on", ["loop", "pool"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_scrape_timeout_is_503_and_later_scrapes_are_refused_until_the_render_returns(
    serve, method, on
):
    events = []

    def on_scrape():
        events.append("start")
        return events.append

    render = BlockingRender()
    # One handler thread. On the pool, the one the hung render holds is replaced;
    # on the loop, the other loop thread runs the loop and the pool serves.
    server = serve(render, scrape_timeout=0.2, max_connections=1, on_scrape=on_scrape)
    if on == "pool":
        no_hand_over(server)
    status, headers, body = request(server, method=method)
    assert (status, body) == (503, b"Scrape timed out after 0.2 s" if method == "GET" else b"")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["retry-after"] == "1"
    assert headers["content-length"] == str(len(b"Scrape timed out after 0.2 s"))
    # The render runs on the scrape's own thread (the loop's, or a handler's), and goes on.
    prefix = f"dyn-metrics-server-{server.port}"
    names = [t.name if on == "loop" else t.name.rsplit("-", 1)[0] for t in render.threads]
    assert names == ([prefix] if on == "loop" else [f"{prefix}-worker"])
    assert render.threads[0].is_alive()
    # Refused at once while the render hangs, whatever the format or selection.
    for headers in ({}, {"Accept": "application/openmetrics-text"}):
        assert scrape(server, headers=headers) == (503, REFUSED)
    assert scrape(server, "/metrics?name[]=up") == (503, REFUSED)
    assert len(render.calls) == 1
    assert request(server, "/live")[0] == 200
    assert request(server, "/")[0] == 200  # served by the thread that replaced it
    render.release.set()
    if on == "pool":
        render.threads[0].join(10)  # its job over, the held thread exits, sending nothing
        assert not render.threads[0].is_alive()
    else:
        wait_for(lambda: render_is_done(server), "the loop thread to wait for its turn")
        assert render.threads[0].is_alive()
    assert events == ["start", 503] * 4  # one finish per scrape, the overran one included
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


def test_a_scrape_renders_on_its_handler_thread_and_one_watchdog_ends_at_stop(serve):
    threads = []

    def render(fmt, names):
        threads.append(threading.current_thread())
        return BODY

    server = serve(render)
    for _ in range(3):
        assert scrape(server) == (200, BODY.encode())
    prefix = f"dyn-metrics-server-{server.port}"
    # A loop thread or a handler: the one that answers (the first one is a loop thread's).
    assert threads[0].name == prefix
    assert all(t.name == prefix or t.name.startswith(f"{prefix}-worker-") for t in threads)
    watchdogs = [t for t in threading.enumerate() if t.name == f"{prefix}-watchdog"]
    assert len(watchdogs) == 1  # made once, not per render
    assert not any(t.name == f"{prefix}-render" for t in threading.enumerate())
    server.stop()
    assert not watchdogs[0].is_alive()


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


# -- inline renders and the watchdog, on a clock the test moves --------------------------------


class Inline:
    """RenderFlights on a fake clock, rendering ``render`` inline under a 0.02 s real timeout.

    The watchdog's real waits are short; whether a deadline has passed is read
    from ``clock``, which only the test moves.
    """

    def __init__(self, monkeypatch, name, idle_timeout=30.0):
        self.name = name  # its threads' prefix, apart from other tests' leftovers
        self.clock = [0.0]
        monkeypatch.setattr(flight_module.time, "monotonic", lambda: self.clock[0])
        self.render = BlockingRender()
        self.flights = RenderFlights(
            self.render, timeout=0.02, name=name, idle_timeout=idle_timeout
        )
        self.overruns = []
        self.proceed = threading.Event()  # overrun() returns once set
        self.proceed.set()

    def overrun(self):
        self.overruns.append(threading.current_thread().name)
        self.proceed.wait(10)

    def lead(self, results):
        """Start a scrape that renders inline; returns its thread once its render runs."""

        def scrape():
            try:
                results.append(self.flights.get("text", None, self.overrun).body)
            except Exception as e:
                results.append(type(e).__name__)

        thread = threading.Thread(target=scrape, daemon=True)
        thread.start()
        wait_for(lambda: self.render.calls, "the render to start")
        return thread


def test_an_inline_render_that_overruns_is_answered_once_by_the_watchdog(monkeypatch):
    inline = Inline(monkeypatch, "overrun")
    results = []
    thread = inline.lead(results)
    assert inline.render.threads == [thread]  # rendered on the scrape's own thread
    follower = in_threads(1, lambda: _get_or_error(inline.flights, "text"))
    wait_for(lambda: inline.flights.waiting == 2, "a follower joining the render")
    inline.proceed.clear()  # overrun() is still answering when the render returns
    inline.clock[0] = 1.0  # the deadline passes
    wait_for(lambda: inline.overruns, "the watchdog to call overrun")
    assert inline.overruns == ["overrun-watchdog"]
    join(follower[0])
    assert follower[1] == ["RenderTimeout"]  # followers time out on their own thread
    assert _get_or_error(inline.flights, "openmetrics") == "RenderHung"
    inline.render.release.set()
    thread.join(10)
    assert results == ["RenderOverran"]  # answered by overrun: returns nothing to send
    inline.proceed.set()
    assert inline.flights.get("text", None, inline.overrun).body == BODY.encode()
    assert inline.overruns == ["overrun-watchdog"]
    inline.flights.close()


def test_an_inline_render_that_returns_first_is_never_overrun(monkeypatch):
    inline = Inline(monkeypatch, "first", idle_timeout=5.0)
    results = []
    thread = inline.lead(results)
    inline.render.release.set()
    thread.join(10)
    assert results == [BODY.encode()]
    (watchdog,) = [t for t in threading.enumerate() if t.name == "first-watchdog"]
    inline.clock[0] = 10.0  # past the render's deadline and the watchdog's idle timeout
    watchdog.join(10)  # it looked at the deadline, found nothing owed and exited
    assert not watchdog.is_alive()
    assert inline.overruns == []


def test_a_render_queued_behind_an_inline_one_runs_on_the_render_thread(monkeypatch):
    inline = Inline(monkeypatch, "queued")
    results = []
    thread = inline.lead(results)
    queued = in_threads(1, lambda: _get_or_error(inline.flights, "openmetrics"))
    wait_for(lambda: inline.flights.waiting == 2, "a queued render")
    assert len(inline.render.calls) == 1  # not beside the running one
    inline.render.release.set()
    join([thread, *queued[0]])
    assert (results, queued[1]) == ([BODY.encode()], [BODY.encode()])
    assert [t.name for t in inline.render.threads[1:]] == ["queued-render"]
    inline.flights.close()


def test_a_render_that_returns_while_its_overrun_answers_gets_one_answer(serve, monkeypatch):
    events, answers = [], []

    def on_scrape():
        events.append("start")
        return events.append

    real_answer = HttpLoop._answer

    def answer(self, conn, reply):
        answers.append(reply.status)
        real_answer(self, conn, reply)

    real_overrun = MetricsServer._overrun

    def overrun(self, late, finish):
        # The render returns and its thread is done with the scrape before the
        # watchdog, which took the answer at the deadline, gives it.
        render.release.set()
        wait_for(lambda: render_is_done(self), "the render's thread to be done")
        real_overrun(self, late, finish)

    monkeypatch.setattr(HttpLoop, "_answer", answer)
    monkeypatch.setattr(MetricsServer, "_overrun", overrun)
    render = BlockingRender()
    server = serve(render, scrape_timeout=0.2, max_connections=1, on_scrape=on_scrape)
    raw = exchange(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", half_close=False)
    assert raw.startswith(b"HTTP/1.1 503 ") and raw.count(b"HTTP/1.1 ") == 1
    assert raw.endswith(b"\r\n\r\nScrape timed out after 0.2 s")
    assert (events, answers) == (["start", 503], [503])
    assert scrape(server) == (200, BODY.encode())  # the pool serves on after the detach
    assert (events, answers) == (["start", 503, "start", 200], [503, 200])
