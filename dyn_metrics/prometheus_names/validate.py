"""Name validators, the ``DYN_METRICS_CONST_LABELS`` parser and the u64 clamp of Dynamo.

``is_valid_*`` return a bool and never raise; ``validate_*`` return None or
raise :class:`InvalidNameError` with rust-prometheus' message text. The name
patterns are the ones in :mod:`dyn_metrics.model`, shared with the parser.
"""

from typing import Optional

from ..errors import InvalidLabelsError, InvalidNameError
from ..model import LABEL_NAME_RE as _LABEL_NAME_RE
from ..model import METRIC_NAME_RE as _METRIC_NAME_RE
from .constants import AUTO_LABEL_NAMES

_I64_MAX = 9223372036854775807


def is_valid_metric_name(name: object) -> bool:
    """Return True if ``name`` is a str matching ``[a-zA-Z_:][a-zA-Z0-9_:]*`` (ASCII)."""
    return isinstance(name, str) and _METRIC_NAME_RE.fullmatch(name) is not None


def is_valid_label_name(name: object) -> bool:
    """Return True if ``name`` is a str matching ``[a-zA-Z_][a-zA-Z0-9_]*`` (ASCII).

    Names starting with ``__`` are accepted, as rust-prometheus does.
    """
    return isinstance(name, str) and _LABEL_NAME_RE.fullmatch(name) is not None


def require_str(name: object, what: str) -> str:
    """Return ``name`` if it is a str, else raise InvalidNameError naming ``what``."""
    if not isinstance(name, str):
        raise InvalidNameError(f"expected {what} as str, got {type(name).__name__}: {name!r}")
    return name


def validate_metric_name(name: str) -> None:
    """Raise InvalidNameError unless ``name`` is a valid metric name (rust-prometheus text)."""
    if _METRIC_NAME_RE.fullmatch(require_str(name, "metric name")) is None:
        raise InvalidNameError(f"'{name}' is not a valid metric name")


def validate_label_name(name: str) -> None:
    """Raise InvalidNameError unless ``name`` is a valid label name (rust-prometheus text)."""
    if _LABEL_NAME_RE.fullmatch(require_str(name, "label name")) is None:
        raise InvalidNameError(f"'{name}' is not a valid label name")


def clamp_u64_to_i64(value: int) -> int:
    """Return ``value`` capped at 2**63 - 1 (input domain 0 .. 2**64 - 1); mirrors Rust."""
    return _I64_MAX if value > _I64_MAX else value


def parse_const_labels(text: Optional[str]) -> dict[str, str]:
    """Parse a ``DYN_METRICS_CONST_LABELS`` value (``k=v,k2=v2``) into a dict.

    Whitespace around items, names and values is trimmed, empty items are ignored
    and only the first ``=`` of an item splits it (``k=a=b`` -> ``{"k": "a=b"}``).
    Values are kept as given, including ``""``. ``None`` or ``""`` gives ``{}``.
    Raises InvalidLabelsError, naming the item, for an item without ``=``, an empty
    or invalid name, a ``__`` name, one of AUTO_LABEL_NAMES, or a repeated name.
    """
    if text is None:
        return {}
    if not isinstance(text, str):
        raise InvalidLabelsError(
            f"expected const labels as str, got {type(text).__name__}: {text!r}"
        )
    result: dict[str, str] = {}
    for raw_item in text.split(","):
        item = raw_item.strip()
        if not item:
            continue
        if "=" not in item:
            raise InvalidLabelsError(f"expected 'name=value' in const labels, got {item!r}")
        key, _, value = item.partition("=")
        key = key.strip()
        if not key:
            raise InvalidLabelsError(f"expected a label name before '=' in {item!r}")
        if not is_valid_label_name(key):
            raise InvalidLabelsError(
                f"expected a label name matching [a-zA-Z_][a-zA-Z0-9_]* in {item!r}, got {key!r}"
            )
        if key.startswith("__"):
            raise InvalidLabelsError(
                f"expected a label name not starting with '__' in {item!r}, got {key!r}"
            )
        if key in AUTO_LABEL_NAMES:
            raise InvalidLabelsError(
                f"expected a label name other than the auto-labels "
                f"{sorted(AUTO_LABEL_NAMES)} in {item!r}, got {key!r}"
            )
        if key in result:
            raise InvalidLabelsError(
                f"expected each label name once, got {key!r} again in {item!r}"
            )
        result[key] = value.strip()
    return result
