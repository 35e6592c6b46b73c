"""A summary's options, checked at creation: objectives, ``max_age`` and ``age_buckets``.

Every refusal is an :class:`~dyn_metrics.errors.InvalidValueError` naming the
value, raised before anything is created, so a summary that exists has a
window the streams of ``quantiles.py`` can rotate (not more often than every
microsecond, with at most :data:`MAX_AGE_BUCKETS` streams per child).
"""

import math
from collections.abc import Mapping

from ..errors import InvalidValueError


def _number(value: object, what: str) -> float:
    if value.__class__ is bool or not isinstance(value, (int, float)):
        raise InvalidValueError(f"{what} must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise InvalidValueError(f"{what} must fit in a float, got {value!r}") from None


def check_objectives(objectives: object) -> dict[float, float]:
    """``objectives`` as ``{quantile: epsilon}`` floats, both in (0, 1); None means none.

    Raises :class:`InvalidValueError` naming the offending value.
    """
    if objectives is None:
        return {}
    if not isinstance(objectives, Mapping):
        raise InvalidValueError(
            f"objectives must be a mapping of quantile to epsilon, got {objectives!r}"
        )
    checked: dict[float, float] = {}
    for q, eps in objectives.items():
        quantile = _number(q, "an objective's quantile")
        if not 0.0 < quantile < 1.0:
            raise InvalidValueError(f"objective quantile must be in (0, 1), got {q!r}")
        epsilon = _number(eps, f"the epsilon of quantile {q!r}")
        if not 0.0 < epsilon < 1.0:
            raise InvalidValueError(
                f"objective epsilon must be in (0, 1), got {eps!r} for quantile {q!r}"
            )
        if quantile in checked:
            raise InvalidValueError(f"objective quantile {q!r} is given twice")
        checked[quantile] = epsilon
    return checked


def check_max_age(max_age: object) -> float:
    """``max_age`` as a float if it is a finite number of seconds > 0."""
    seconds = _number(max_age, "max_age")
    if not 0.0 < seconds < math.inf:
        raise InvalidValueError(f"max_age must be a finite number of seconds > 0, got {max_age!r}")
    return seconds


#: At most this many streams per child (each holds its own summary of the window).
MAX_AGE_BUCKETS = 1024
#: The shortest rotation period accepted: below it a window is meaningless, and
#: divisions by it would overflow.
MIN_BUCKET_SECONDS = 1e-6


def check_age_buckets(age_buckets: object) -> int:
    """``age_buckets`` if it is an int in 1..:data:`MAX_AGE_BUCKETS`."""
    if (
        age_buckets.__class__ is bool
        or not isinstance(age_buckets, int)
        or not 1 <= age_buckets <= MAX_AGE_BUCKETS
    ):
        raise InvalidValueError(
            f"age_buckets must be an integer in 1..{MAX_AGE_BUCKETS}, got {age_buckets!r}"
        )
    return int(age_buckets)


def check_window(max_age: float, age_buckets: int) -> None:
    """Refuse a window whose streams would rotate more often than every microsecond."""
    if max_age / age_buckets < MIN_BUCKET_SECONDS:
        raise InvalidValueError(
            f"max_age / age_buckets must be at least {MIN_BUCKET_SECONDS} s, "
            f"got max_age={max_age!r} and age_buckets={age_buckets!r}"
        )
