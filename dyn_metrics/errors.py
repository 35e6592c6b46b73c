"""The exception tree of dyn_metrics.

Every error the package raises on purpose derives from :class:`MetricsError`.
Errors about bad input also derive from :class:`ValueError`, so a caller who
only knows the standard library can still catch them::

    MetricsError(Exception)                         base; catch-all for callers
    ├── InvalidNameError(MetricsError, ValueError)  bad or unsanitisable metric/label name
    ├── InvalidLabelsError(MetricsError, ValueError) duplicate key, reserved auto-label key,
    │   │                                            unknown/missing label name in a mapping
    │   └── CardinalityError                         wrong number of label values (.expected, .got)
    ├── InvalidBucketsError(MetricsError, ValueError) empty or not strictly increasing
    ├── InvalidValueError(MetricsError, ValueError)  e.g. negative counter increment, empty help
    ├── ConfigError(MetricsError, ValueError)        bad DYN_* environment value (strict mode)
    ├── RegistrationError(MetricsError)
    │   ├── AlreadyRegisteredError                   .existing, .new
    │   └── DescriptorConflictError                  same name, different help/labels/type
    ├── ParseError(MetricsError, ValueError)         .line, .msg; str = "line N: msg"
    └── ExportError(MetricsError)                    a push failed; .url, .status (or None), .body
        ├── ExportRejectedError                      permanent: 4xx (the receiver's text), 3xx
        └── ExportUnavailableError                   5xx or connection errors after retries,
                                                     or the deadline passed; .attempts, .last_status

Messages start lowercase (except where they reproduce Dynamo's own text), show
user values with ``!r`` and say what was expected against what was received.

What cannot be raised (a failing callback during a scrape, a bad environment
value outside strict mode) is logged, through :class:`LazyLogger`.
"""

from typing import Any, Optional


class MetricsError(Exception):
    """Base class of every error raised by dyn_metrics."""


class InvalidNameError(MetricsError, ValueError):
    """A metric or label name is invalid or cannot be sanitised."""


class InvalidLabelsError(MetricsError, ValueError):
    """Labels are inconsistent: duplicate, reserved, unknown or missing names."""


class CardinalityError(InvalidLabelsError):
    """The number of label values differs from the number of label names."""

    def __init__(
        self, message: str, expected: Optional[int] = None, got: Optional[int] = None
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.got = got


class InvalidBucketsError(MetricsError, ValueError):
    """Histogram buckets are empty, not numbers, or not strictly increasing."""


class InvalidValueError(MetricsError, ValueError):
    """A value is not acceptable (negative counter increment, empty help, ...)."""


class ConfigError(MetricsError, ValueError):
    """A ``DYN_*`` environment variable holds a value that cannot be used."""


class RegistrationError(MetricsError):
    """A collector cannot be registered (or the registries disagree at scrape)."""


class AlreadyRegisteredError(RegistrationError):
    """The same collector, or one with the same descriptors, is already registered."""

    def __init__(self, message: str, existing: object = None, new: object = None) -> None:
        super().__init__(message)
        self.existing = existing
        self.new = new


class DescriptorConflictError(RegistrationError):
    """Same fully-qualified name with a different help, type or label-name set."""


class ParseError(MetricsError, ValueError):
    """An exposition is malformed; ``.line`` is 1-based (0 when not tied to a line)."""

    def __init__(self, line: int, msg: str) -> None:
        super().__init__(line, msg)
        self.line = line
        self.msg = msg

    def __str__(self) -> str:
        return f"line {self.line}: {self.msg}"


class ExportError(MetricsError):
    """Pushing metrics out failed.

    ``.url`` is the URL sent to, ``.status`` the last HTTP status (None when
    no response came) and ``.body`` the last response body as text ("" when
    none).
    """

    def __init__(
        self, message: str, url: str, status: Optional[int] = None, body: str = ""
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body


class ExportRejectedError(ExportError):
    """Refused for good (4xx, 3xx, an untrusted TLS certificate): retrying cannot help."""


class ExportUnavailableError(ExportError):
    """The receiver could not be reached or kept failing (5xx) until retries or time ran out.

    ``.attempts`` is the number of requests made; ``.last_status`` the status
    of the last answer (None for a connection error), the same as ``.status``.
    """

    def __init__(
        self,
        message: str,
        url: str,
        status: Optional[int] = None,
        body: str = "",
        attempts: int = 0,
    ) -> None:
        super().__init__(message, url, status, body)
        self.attempts = attempts
        self.last_status = status


class LazyLogger:
    """``logging.getLogger(name)``, looked up on first use (``_log = LazyLogger(__name__)``).

    Importing :mod:`logging` is about a sixth of ``import dyn_metrics``, and a
    process whose metrics never fail never needs it. Any attribute is the
    logger's (``.warning``, ``.error``, ``.exception``, ...).
    """

    __slots__ = ("_name", "_logger")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self._name)
        return getattr(logger, attr)
