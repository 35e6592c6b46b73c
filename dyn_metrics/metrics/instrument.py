"""Instrumentation helpers: in-progress tracking and exception counting.

Each helper is one small object that serves as a context manager and as a
decorator, and calls plain callables (a cell's bound ``inc`` / ``dec``), so it
holds no lock and knows nothing of gauges or counters:

* :class:`InProgress` (``Gauge.track_inprogress()``) calls ``inc`` on entry
  and ``dec`` on exit, whether the block returns or raises;
* :class:`ExceptionCounter` (``Counter.count_exceptions(exception)``) calls
  ``inc`` once for each exception of the given type(s) leaving the block, and
  lets it propagate.

Neither keeps state between uses, so one object may be entered by many
threads at once, nested, or reused. A decorated function keeps its name,
docstring and signature (``functools.wraps``); an ``async def`` function stays
one, and its calls are tracked until the coroutine finishes, not merely until
it is created.
"""

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, Optional, TypeVar, Union, cast

from ..errors import InvalidValueError

# Any callable: the wrapper keeps its signature (typing.ParamSpec is 3.10+).
_F = TypeVar("_F", bound=Callable[..., Any])

#: What ``count_exceptions`` takes: an exception class or a tuple of them (as ``except``).
ExceptionTypes = Union[type[BaseException], tuple[type[BaseException], ...]]

# inspect.CO_COROUTINE, without importing inspect (a few ms at import).
_CO_COROUTINE = 0x80


def is_async_function(func: object) -> bool:
    """True for a function defined with ``async def`` (its calls return coroutines)."""
    code = getattr(func, "__code__", None)
    return bool(getattr(code, "co_flags", 0) & _CO_COROUTINE)


def check_decorated(func: object, helper: str) -> None:
    """:class:`InvalidValueError` unless ``func`` is callable (what a decorator wraps)."""
    if not callable(func):
        raise InvalidValueError(f"{helper} decorates a callable, got {func!r}")


def check_exception_types(exception: object) -> ExceptionTypes:
    """``exception`` if it is an exception class or a tuple of them, else an error.

    The same as ``except`` accepts (a nested tuple excepted); an empty tuple
    matches nothing.
    """
    if isinstance(exception, type) and issubclass(exception, BaseException):
        return exception
    if isinstance(exception, tuple) and all(
        isinstance(item, type) and issubclass(item, BaseException) for item in exception
    ):
        return tuple(exception)
    raise InvalidValueError(
        f"exception must be an exception class or a tuple of them, got {exception!r}"
    )


class InProgress:
    """Context manager and decorator: ``inc()`` on entry, ``dec()`` on exit (raising too)."""

    __slots__ = ("_inc", "_dec")

    def __init__(self, inc: Callable[[], object], dec: Callable[[], object]) -> None:
        self._inc = inc
        self._dec = dec

    def __enter__(self) -> None:
        self._inc()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]:
        self._dec()
        return False

    def __call__(self, func: _F) -> _F:
        """Decorate ``func``: each call counts as in progress until it returns or raises."""
        check_decorated(func, "track_inprogress()")
        inc, dec = self._inc, self._dec
        if is_async_function(func):

            @functools.wraps(func)
            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                inc()
                try:
                    return await func(*args, **kwargs)
                finally:
                    dec()

            return cast(_F, wrapped_async)

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            inc()
            try:
                return func(*args, **kwargs)
            finally:
                dec()

        return cast(_F, wrapped)


class ExceptionCounter:
    """Context manager and decorator: ``inc()`` once per matching exception raised through it.

    ``exception`` is an exception class or a tuple of them, matched as
    ``except`` matches (subclasses included); the default ``Exception`` leaves
    ``KeyboardInterrupt`` and ``SystemExit`` uncounted. The exception always
    propagates. Bad ``exception`` -> :class:`InvalidValueError` here, at the call.
    """

    __slots__ = ("_inc", "_exception")

    def __init__(self, inc: Callable[[], object], exception: ExceptionTypes = Exception) -> None:
        self._exception = check_exception_types(exception)
        self._inc = inc

    def __enter__(self) -> None:
        pass

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]:
        if exc is not None and isinstance(exc, self._exception):
            self._inc()
        return False

    def __call__(self, func: _F) -> _F:
        """Decorate ``func``: each matching exception it raises is counted, then re-raised."""
        check_decorated(func, "count_exceptions()")
        inc, exception = self._inc, self._exception
        if is_async_function(func):

            @functools.wraps(func)
            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await func(*args, **kwargs)
                except exception:
                    inc()
                    raise

            return cast(_F, wrapped_async)

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except exception:
                inc()
                raise

        return cast(_F, wrapped)
