"""The timer behind ``Histogram.time()`` and ``start_timer()``.

One small object serves as context manager, decorator and manual timer; it
feeds the elapsed seconds (``time.perf_counter``, never negative) to one
observe function, so it holds no lock and knows nothing of histograms (a
gauge's ``time()`` feeds its ``set``). A decorated ``async def`` function
stays one and is timed until its coroutine finishes.
"""

import functools
from collections.abc import Callable
from time import perf_counter as _perf_counter
from types import TracebackType
from typing import Any, Literal, Optional, TypeVar, cast

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
