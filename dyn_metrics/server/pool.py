"""A bounded pool of daemon threads, made on demand, that run queued jobs.

At most ``max_workers`` threads exist and at most ``max_queued`` jobs wait
for one; :meth:`HandlerPool.reserve` refuses past that, so the caller can
answer "busy" at once instead of queueing without bound. A thread idle for
``idle_timeout`` seconds exits, unless the other idle threads would not cover
the queued jobs.
"""

import itertools
import queue
import threading
import time
from typing import Callable, Generic, Optional, TypeVar

_Job = TypeVar("_Job")


class HandlerPool(Generic[_Job]):
    """Runs ``run(job)`` on pool threads named ``{name}-worker-N``.

    ``name`` is read each time a thread is made, so an owner that learns its
    name late (a server's port) may set it before the first :meth:`reserve`.
    ``run`` must not raise: an escaping exception ends its thread. Submitting
    is two steps, :meth:`reserve` then :meth:`put`, so the caller can finish
    handing a job over between them. Thread-safe.
    """

    def __init__(
        self,
        run: Callable[[_Job], None],
        *,
        name: str,
        max_workers: int,
        max_queued: int,
        idle_timeout: float,
    ) -> None:
        self._run = run
        self.name = name
        self._max_workers = max_workers
        self._max_queued = max_queued
        self._idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[Optional[_Job]] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _workers, _detached, _idle, _queued
        self._workers: list[threading.Thread] = []
        self._detached: set[threading.Thread] = set()  # see detach()
        self._worker_ids = itertools.count(1)
        self._idle = 0
        self._queued = 0

    def reserve(self) -> bool:
        """Count one job as queued and return True, or False (nothing counted) when full.

        Starts a thread when the idle ones do not cover the queued jobs and the
        bound allows one more. Each True must be followed by one :meth:`put`.
        """
        with self._lock:
            if self._queued >= self._max_queued:
                return False
            self._queued += 1
            worker = self._spawn_locked()
        if worker is not None:
            worker.start()
        return True

    def detach(self, thread: threading.Thread) -> None:
        """Stop counting ``thread``, busy with a job that may not end soon, as a worker.

        It exits once that job returns (or, were it idle already, after its
        next job or its idle timeout); a thread is started in its place when
        the idle ones do not cover the queued jobs. No-op for a thread not of
        this pool.
        """
        with self._lock:
            if thread not in self._workers:
                return
            self._workers.remove(thread)
            self._detached.add(thread)
            worker = self._spawn_locked()
        if worker is not None:
            worker.start()

    def _spawn_locked(self) -> Optional[threading.Thread]:
        """A new worker (to start outside the lock) when the idle ones do not cover the queue."""
        if self._idle >= self._queued or len(self._workers) >= self._max_workers:
            return None
        worker = threading.Thread(
            target=self._work, name=f"{self.name}-worker-{next(self._worker_ids)}", daemon=True
        )
        self._workers.append(worker)
        return worker

    def put(self, job: _Job) -> None:
        """Queue ``job`` (not None) for the slot taken by :meth:`reserve`."""
        self._jobs.put(job)

    def stop(self, timeout: float) -> None:
        """Ask every thread to exit once its current job is done; wait up to ``timeout`` in all.

        Threads still busy then are abandoned (they are daemons).
        """
        with self._lock:
            workers = [*self._workers, *self._detached]
        for _ in workers:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    # Leave only if the other idle handlers cover the queued jobs;
                    # reserve() counts a job under this lock before it is put.
                    if self._queued <= self._idle:
                        self._forget_locked()
                        return
                continue
            with self._lock:
                self._idle -= 1
                if job is not None:
                    self._queued -= 1
            if job is None:
                return
            self._run(job)
            if self._detached:
                with self._lock:
                    if threading.current_thread() in self._detached:
                        self._forget_locked()
                        return

    def _forget_locked(self) -> None:
        """This thread is about to exit: no longer a worker, nor detached."""
        thread = threading.current_thread()
        if thread in self._detached:  # detached after its job ended: it was idle
            self._detached.remove(thread)
        else:
            self._workers.remove(thread)
