"""Two threads that take turns running the event loop (leader and follower).

While one runs the loop, the other waits for its turn. A turn may end by
taking one request for its own thread (:meth:`Turns.claim`: only while the
other thread waits to take over): the loop is handed over, the request served,
and the thread waits for its next turn.

Why: in a process whose other threads are busy, handing a request to a
handler thread costs a wait for the GIL (a switch interval or more per busy
thread), and the thread running the loop holds the GIL already. A request that
hangs on a loop thread pins that thread only: the other runs the loop, and no
turn takes a request until the first is back.
"""

import threading
import time
from typing import Callable, Generic, Optional, TypeVar

_Job = TypeVar("_Job")


class Turns(Generic[_Job]):
    """Runs ``turn()`` on two daemon threads named ``name``, one at a time, in turns.

    ``turn()`` runs the loop until it returns a job, which its thread then
    passes to ``serve(job)`` (which must not raise), or None: the loop is over
    and both threads exit. Thread-safe.
    """

    def __init__(
        self, turn: Callable[[], Optional[_Job]], serve: Callable[[_Job], None], *, name: str
    ) -> None:
        self._run_turn, self._serve = turn, serve
        self.name = name  # read by start(), so an owner may set it before
        self._turn = threading.Lock()  # held by the thread whose turn it is
        self._lock = threading.Lock()  # guards _waiting
        self._waiting = 0  # threads neither in a turn nor serving (waiting for a turn, or about to)
        self.ended = threading.Event()  # set once a turn has returned None
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start both threads, the first one in its turn."""
        # The first thread's first turn is taken for it and the second counted as waiting,
        # so a turn may claim a request from the first on.
        self._turn.acquire()
        self._waiting = 1
        self.threads = [
            threading.Thread(target=self._take_turns, args=(first,), name=self.name, daemon=True)
            for first in (True, False)
        ]
        for thread in self.threads:
            thread.start()

    @property
    def over(self) -> bool:
        """Whether a turn has returned None (or raised): no turn runs any more."""
        return self.ended.is_set()

    def claim(self) -> bool:
        """In a turn: True if the other thread waits to take over, so this turn may end
        with a job for its own thread (the caller ends it so). At most once per turn."""
        with self._lock:
            if not self._waiting:
                return False
            self._waiting -= 1  # the other thread's turn comes next
            return True

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds in all for both threads to exit."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _take_turns(self, first: bool) -> None:
        while True:
            if not first:  # start() has taken the first thread's first turn
                self._turn.acquire()
            first, job = False, None
            try:
                job = None if self.over else self._run_turn()
            finally:
                if job is None:  # set before the turn is free: the other thread sees it
                    self.ended.set()
                self._turn.release()
            if job is None:
                return
            self._serve(job)
            with self._lock:  # counted before it waits: see claim()
                self._waiting += 1
