"""Dynamo's name sanitisers and the component metric-name builder, quirks included.

``sanitize_*`` behave exactly like Dynamo's (``:x`` -> ``_:x``, ``___a`` ->
``__a``), so a name made by Dynamo and by dyn_metrics for the same input is the
same string. Characters are Unicode code points; each one outside the ASCII set
allowed by Prometheus becomes one ``_``. Errors are :class:`InvalidNameError`
with Dynamo's message text.
"""

import re
from typing import Literal, Optional

from ..errors import InvalidNameError
from .constants import name_prefix
from .validate import require_str

_METRIC_INVALID_CHARS_RE = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_INVALID_CHARS_RE = re.compile(r"[^a-zA-Z0-9_]")
_VALID_FIRST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_ASCII_LETTERS = _VALID_FIRST_CHARS - {"_"}


def _sanitize(raw: str, invalid_chars_re: re.Pattern[str], kind: Literal["name", "label"]) -> str:
    require_str(raw, f"{kind} to sanitize")
    if not raw:
        raise InvalidNameError(f"Cannot sanitize empty string into valid Prometheus {kind}")
    result = invalid_chars_re.sub("_", raw)
    # Dynamo tests the first char against [a-zA-Z_] for names too, so `:x` gets a `_`.
    if result[0] not in _VALID_FIRST_CHARS:
        result = "_" + result
    if kind == "label" and result.startswith("__"):
        # Dynamo strips exactly two underscores and re-adds one unless a letter follows,
        # which is why `___a` comes out as `__a`.
        result = result[2:]
        if not result or result[0] not in _ASCII_LETTERS:
            result = "_" + result
    if not result.strip("_"):
        raise InvalidNameError(
            f"Input '{raw}' contains only invalid characters and cannot be sanitized "
            f"into a valid Prometheus {kind}"
        )
    return result


def sanitize_prometheus_name(raw: str) -> str:
    """Turn ``raw`` into a valid metric name the way Dynamo does; mirrors the Rust function.

    Each code point outside ``[a-zA-Z0-9_:]`` becomes ``_``; a ``_`` is prepended when
    the first character is not in ``[a-zA-Z_]`` (so ``:x`` -> ``_:x``). Idempotent.
    Raises InvalidNameError (Dynamo's text) for ``""`` or a result made only of ``_``.
    """
    return _sanitize(raw, _METRIC_INVALID_CHARS_RE, "name")


def sanitize_prometheus_label(raw: str) -> str:
    """Turn ``raw`` into a valid label name the way Dynamo does; mirrors the Rust function.

    As :func:`sanitize_prometheus_name` but ``:`` is replaced too, and a leading ``__``
    is stripped, with one ``_`` re-added unless a letter follows (``__a`` -> ``a``,
    ``___a`` -> ``__a``). The result can therefore still start with ``__``, and applying
    the function again changes it exactly in that case.
    Raises InvalidNameError (Dynamo's text) for ``""`` or a result made only of ``_``.
    """
    return _sanitize(raw, _LABEL_INVALID_CHARS_RE, "label")


def sanitize_frontend_prometheus_prefix(raw: Optional[str]) -> str:
    """Return the frontend metric prefix for ``raw`` (``DYN_METRICS_PREFIX``); never raises.

    ``""``, None or an unsanitisable value gives ``name_prefix.FRONTEND``; otherwise
    :func:`sanitize_prometheus_name` of it. Mirrors the Rust function.
    """
    if not raw:
        return name_prefix.FRONTEND
    try:
        return sanitize_prometheus_name(raw)
    except InvalidNameError:
        return name_prefix.FRONTEND


def build_component_metric_name(name: str) -> str:
    """Return ``dynamo_component_`` + the sanitised ``name``; mirrors the Rust function.

    Raises InvalidNameError("metric name should be valid or sanitizable"), chained to
    the sanitiser's error, where Dynamo panics.
    """
    try:
        sanitized = sanitize_prometheus_name(name)
    except InvalidNameError as exc:
        raise InvalidNameError("metric name should be valid or sanitizable") from exc
    return f"{name_prefix.COMPONENT}_{sanitized}"
