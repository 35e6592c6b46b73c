"""The timer behind ``Histogram.time()`` and ``start_timer()``.

One small object serves as context manager, decorator and manual timer; it
feeds the elapsed seconds (``time.perf_counter``, never negative) to one
observe function, so it holds no lock and knows nothing of histograms (a
gauge's ``time()`` feeds its ``set``). A decorated ``async def`` function
stays one and is timed until its coroutine finishes.
"""

import functools
from collections.abc import Callable, Sequence
from time import perf_counter as _perf_counter
from types import TracebackType
from typing import Any, Literal, Optional, Protocol, TypeVar, cast

from .instrument import check_decorated, is_async_function

# Any callable: the wrapper keeps its signature (typing.ParamSpec is 3.10+).
_F = TypeVar("_F", bound=Callable[..., Any])


class Timer:
    """Context manager, decorator and manual timer feeding one observe function."""

    __slots__ = ("_observe", "_start")

    def __init__(self, observe: Callable[[float], None]) -> None:
        self._observe = observe
        self._start: Optional[float] = None

    def start(self) -> "Timer":
        """Start (or restart) timing; returns the timer."""
        self._start = _perf_counter()
        return self

    def observe_duration(self) -> float:
        """Record the seconds since ``start()``; returns them.

        Raises :class:`TypeError` if the timer was never started.
        """
        start = self._start
        if start is None:
            # What the subtraction below raised before this check existed.
            raise TypeError("unsupported operand type(s) for -: 'float' and 'NoneType'")
        elapsed = max(_perf_counter() - start, 0.0)
        self._observe(elapsed)
        return elapsed

    stop_and_record = observe_duration

    def __enter__(self) -> "Timer":
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]:
        self.observe_duration()
        return False

    def __call__(self, func: _F) -> _F:
        """Decorate ``func``: every call of it observes its duration, even when it raises."""
        check_decorated(func, "time()")
        observe = self._observe
        if is_async_function(func):

            @functools.wraps(func)
            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                start = _perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    observe(max(_perf_counter() - start, 0.0))

            return cast(_F, wrapped_async)

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = _perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                observe(max(_perf_counter() - start, 0.0))

        return cast(_F, wrapped)


class _Observing(Protocol):
    def _read(self) -> Sequence[Any]: ...

    def observe(self, value: float) -> None: ...


class ObservedCell:
    """The reads and timers every observing cell (histogram, summary) shares.

    A cell mixing this in has ``observe(value)`` and a ``_read()`` whose items
    1 and 2 are the sum and the count (a summary's: all time; a multiprocess
    cell's: this process's).
    """

    __slots__ = ()

    def get_sample_count(self: _Observing) -> int:
        """Number of observations so far."""
        return cast(int, self._read()[2])

    def get_sample_sum(self: _Observing) -> float:
        """Sum of observations so far."""
        return cast(float, self._read()[1])

    def time(self: _Observing) -> Timer:
        """Observe the seconds spent in a ``with`` block or decorated function."""
        return Timer(self.observe)

    def start_timer(self: _Observing) -> Timer:
        """Start a timer; its ``observe_duration()`` records the elapsed seconds."""
        return Timer(self.observe).start()

    def __repr__(self: _Observing) -> str:
        return f"<{type(self).__name__} count={self._read()[2]}>"
