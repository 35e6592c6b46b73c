"""The HTTP pieces every sender of ``export/`` shares: retry pacing, openers, bodies.

The Pushgateway client, remote write and OTLP/HTTP each keep their own
classification of answers (what is retried, what is permanent); what they
share lives here once: :class:`Backoff` (how retries are paced),
:func:`opener` (urllib with redirects refused: a redirected PUT or POST
would silently become a GET), :func:`read_body` (a bounded read that never
raises), :func:`retry_after`, :func:`user_agent` and :func:`failed_result`.
"""

import email.utils
import random
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Optional

from ..errors import ExportError
from .result import ExportResult


@dataclass(frozen=True)
class Backoff:
    """How failed attempts are retried.

    The wait before retry ``n`` (1-based) is ``base * factor ** (n - 1)``,
    scaled by a random factor in ``1 ± jitter``; at most ``max_attempts``
    requests are made, and none once the next wait would pass the call's
    deadline. ``sleep``, ``clock`` (monotonic seconds) and ``random`` (in
    [0, 1)) may be replaced, so tests wait for nothing.
    """

    base: float = 1.0
    factor: float = 2.0
    jitter: float = 0.2
    max_attempts: int = 6
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    random: Callable[[], float] = random.random

    def wait(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        spread = self.jitter * (2.0 * self.random() - 1.0)
        return float(self.base * self.factor ** (retry - 1) * (1.0 + spread))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turns every 3xx into an HTTPError: a receiver URL that redirects is wrong."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def opener(tls_context: Optional[Any] = None) -> urllib.request.OpenerDirector:
    """A urllib opener that refuses redirects and uses ``tls_context`` for https."""
    return urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=tls_context))


def read_body(source: object, limit: int) -> bytes:
    """Up to ``limit`` bytes of a response or HTTPError body; ``b""`` when there is none."""
    try:
        return bytes(source.read(limit))  # type: ignore[attr-defined]
    except (OSError, HTTPException, TypeError, AttributeError):  # no body, or a broken one
        return b""


def retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds a ``Retry-After`` value (delay seconds or an HTTP-date) asks for; None if unusable.

    ``now`` is the wall-clock time (``time.time()``) an HTTP-date is measured from.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def package_version() -> str:
    """The package's version, read from its (already imported) root: export may not import it."""
    root = sys.modules.get(__name__.split(".")[0])
    return str(getattr(root, "__version__", "unknown"))


def user_agent() -> str:
    """``dyn_metrics/<version>``."""
    return f"dyn_metrics/{package_version()}"


def failed_result(
    error: ExportError, status: Optional[int], attempts: int, points: int
) -> ExportResult:
    """The result of an export that ``error`` ended, ``points`` data points not delivered."""
    return ExportResult(False, status, attempts, points, str(error), error)
