"""The bounded handler pool: on its own, then behind a server (thread bounds, 503 when full)."""

import selectors
import socket
import threading

from dyn_metrics.server import app as server_module
from dyn_metrics.server.pool import HandlerPool
from tests.server.helpers import TIMEOUT, request, status_of, wait_for

# -- HandlerPool on its own ----------------------------------------------------------------------


def _pool(run, **kwargs):
    kwargs.setdefault("name", "test-pool")
    kwargs.setdefault("max_workers", 2)
    kwargs.setdefault("max_queued", 3)
    kwargs.setdefault("idle_timeout", 30.0)
    return HandlerPool(run, **kwargs)


def test_pool_runs_each_job_once():
    done, lock = [], threading.Lock()
    all_done = threading.Event()

    def run(job):
        with lock:
            done.append(job)
            if len(done) == 3:
                all_done.set()

    pool = _pool(run)
    for job in range(3):
        assert pool.reserve()
        pool.put(job)
    assert all_done.wait(TIMEOUT)
    pool.stop(TIMEOUT)
    assert sorted(done) == [0, 1, 2]


def test_pool_reserve_refuses_past_max_queued_and_threads_stay_bounded():
    release = threading.Event()
    started = threading.Semaphore(0)

    def run(job):
        started.release()
        release.wait(TIMEOUT)

    pool = _pool(run, name="test-pool-bounded", max_workers=2, max_queued=3)
    try:
        assert all(pool.reserve() for _ in range(3))
        assert not pool.reserve()  # three counted, none put yet: full
        for job in range(3):
            pool.put(job)
        assert started.acquire(timeout=TIMEOUT) and started.acquire(timeout=TIMEOUT)
        # Two jobs run on the only two threads and one waits: two more may queue.
        assert pool.reserve() and pool.reserve()
        assert not pool.reserve()
        pool.put(3)
        pool.put(4)
        workers = [t for t in threading.enumerate() if t.name.startswith("test-pool-bounded-")]
        assert len(workers) == 2
        assert all(t.daemon for t in workers)
    finally:
        release.set()
        pool.stop(TIMEOUT)


def test_pool_stop_ends_idle_threads():
    pool = _pool(lambda job: None, name="test-pool-stop")
    assert pool.reserve()
    pool.put("job")
    pool.stop(TIMEOUT)
    assert not [t for t in threading.enumerate() if t.name.startswith("test-pool-stop-")]


# -- behind a server -----------------------------------------------------------------------------


def test_pool_detach_starts_a_thread_for_the_queued_job_and_the_detached_one_exits():
    release, started = threading.Event(), threading.Semaphore(0)
    held, ran = [], []

    def run(job):
        ran.append(job)
        if job == "held":
            held.append(threading.current_thread())
            started.release()
            release.wait(TIMEOUT)
        else:
            started.release()

    pool = _pool(run, name="test-pool-detach", max_workers=1, max_queued=3)
    try:
        assert pool.reserve()
        pool.put("held")
        assert started.acquire(timeout=TIMEOUT)
        assert pool.reserve()
        pool.put("queued")  # waits: the only thread is held
        pool.detach(threading.current_thread())  # not a worker: no-op
        assert not started.acquire(timeout=0.05) and ran == ["held"]
        pool.detach(held[0])
        assert started.acquire(timeout=TIMEOUT)  # a new thread ran it
        assert ran == ["held", "queued"]
        release.set()
        held[0].join(TIMEOUT)
        assert not held[0].is_alive()  # exits after its job instead of taking another
    finally:
        release.set()
        pool.stop(TIMEOUT)


def test_server_connection_flood_keeps_threads_bounded(serve):
    # max_queued covers the flood, so every request is answered 200, not 503.
    server = serve(max_connections=4, max_queued=300)
    base = threading.active_count()
    peak = base
    socks = []
    try:
        for i in range(300):
            sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(sock)
            if i % 10 == 0:
                peak = max(peak, threading.active_count())
        answers = []
        for sock in socks:
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            answers.append(b"".join(chunks))
            peak = max(peak, threading.active_count())
    finally:
        for sock in socks:
            sock.close()
    assert peak <= base + 4 + 1  # the handlers and the one render thread
    assert all(status_of(a) == 200 for a in answers)


def test_server_idle_handler_threads_exit(serve, monkeypatch):
    monkeypatch.setattr(server_module, "_WORKER_IDLE", 0.05)
    # The render's watchdog too, once past the render's deadline (scrape_timeout).
    server = serve(scrape_timeout=0.2)
    assert request(server)[0] == 200
    workers = [t for t in threading.enumerate() if t.name.startswith(server.thread.name + "-")]
    assert workers
    for worker in workers:
        worker.join(TIMEOUT)
        assert not worker.is_alive()
    assert request(server)[0] == 200  # a new handler is made on demand


def test_server_busy_queue_answers_503(serve):
    started, release = threading.Event(), threading.Event()

    def render(fmt, names):
        started.set()
        release.wait(TIMEOUT)
        return "x 1\n"

    server = serve(render, max_connections=1, max_queued=1)
    # The first is served on a loop thread, the second by the only handler.
    first, second = (threading.Thread(target=request, args=(server,)) for _ in range(2))
    socks = []
    first.start()
    try:
        assert started.wait(TIMEOUT)
        second.start()
        wait_for(lambda: server.scrapes_waiting == 2, "the handler's scrape to join the render")
        # The only handler is busy: one request may queue, the next is refused at once.
        socks = [
            socket.create_connection((server.host, server.port), timeout=TIMEOUT) for _ in range(2)
        ]
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
                sel.register(sock, selectors.EVENT_READ)
            ready = [key.fileobj for key, _ in sel.select(TIMEOUT)]
        assert len(ready) == 1
        refused = ready[0]
        raw = refused.recv(4096)
        assert status_of(raw) == 503
        assert b"\r\nRetry-After: 1\r\n" in raw
        release.set()
        queued = socks[1] if refused is socks[0] else socks[0]
        assert status_of(queued.recv(4096)) == 200
    finally:
        release.set()
        first.join(TIMEOUT)
        for sock in socks:
            sock.close()
