"""The native-histogram fields of the protobuf exposition's ``Histogram`` message.

:func:`spans_and_deltas` lays one side's buckets out as client_golang does;
:func:`native_fields` writes fields 5 to 13 (schema, zero bucket, spans and
packed ``sint64`` deltas per side), reducing a schema above 8 to 8 (2.42
accepts a larger one and then fails every query of it).
"""

import struct
from collections.abc import Sequence

from ..errors import InvalidValueError
from ..model import NativeHistogram, Number
from .protowire import len_record, packed_sint64, sint_field, uvarint, varint

MIN_SCHEMA = -4
MAX_SCHEMA = 8

_D = struct.Struct("<d").pack
_UINT64_MAX = 2**64 - 1


def count_of(value: Number, what: str) -> int:
    """A histogram or summary count as an int; it must be a non-negative integer.

    Counts past ``uint64`` are written as its largest value (as the OTLP
    mapping does): a longer varint would make the whole body undecodable.
    """
    if isinstance(value, int) and value >= 0:
        return min(int(value), _UINT64_MAX)
    if isinstance(value, float) and value >= 0 and value.is_integer():
        return min(int(value), _UINT64_MAX)
    raise InvalidValueError(f"{what} must be a non-negative integer, got {value!r}")


def spans_and_deltas(
    buckets: Sequence[tuple[int, int]],
) -> tuple[list[tuple[int, int]], list[int]]:
    """``(spans, deltas)`` of one side's ``(index, count)`` buckets, ascending by index.

    client_golang's layout: a span starts at the first bucket (offset = its
    index) and after every gap of more than 2 empty buckets (offset = the
    number of indices skipped); gaps of 1 or 2 are filled with empty buckets.
    The first delta is the first count, each next one ``count - previous``.
    """
    spans: list[list[int]] = []
    deltas: list[int] = []
    prev_index = prev = 0
    for index, count in buckets:
        if not spans:
            spans.append([index, 1])
        else:
            gap = index - prev_index - 1
            if gap > 2:
                spans.append([gap, 1])
            else:
                for _ in range(gap):
                    deltas.append(-prev)
                    prev = 0
                spans[-1][1] += gap + 1
        deltas.append(count - prev)
        prev_index, prev = index, count
    return [(s[0], s[1]) for s in spans], deltas


def _reduce(buckets: Sequence[tuple[int, int]], steps: int) -> tuple[tuple[int, int], ...]:
    """Buckets at ``steps`` schemas coarser: index k -> ceil(k / 2**steps), counts summed."""
    merged: dict[int, int] = {}
    add = (1 << steps) - 1
    for index, count in buckets:
        k = (index + add) >> steps
        merged[k] = merged.get(k, 0) + count
    return tuple(merged.items())  # ascending in, ascending out: the map is monotonic


def _side(span_tag: bytes, delta_field: int, buckets: Sequence[tuple[int, int]]) -> bytes:
    spans, deltas = spans_and_deltas(buckets)
    out = [len_record(span_tag, sint_field(1, off) + b"\x10" + uvarint(n)) for off, n in spans]
    zigzags = [(d << 1) ^ (d >> 63) for d in deltas]
    if max(zigzags) < 128:  # the usual case: each delta one byte, so the run is bytes(...)
        out.append(len_record(bytes((delta_field << 3 | 2,)), bytes(zigzags)))
    else:
        out.append(packed_sint64(delta_field, deltas))
    return b"".join(out)


def native_fields(nh: NativeHistogram) -> bytes:
    """Histogram fields 5..13 of a native histogram."""
    schema, positive, negative = nh.schema, nh.positive, nh.negative
    if schema.__class__ is not int or schema < MIN_SCHEMA:
        raise InvalidValueError(
            f"native histogram schema must be an int >= {MIN_SCHEMA} (one above {MAX_SCHEMA} "
            f"is reduced to {MAX_SCHEMA}), got {schema!r}"
        )
    if schema > MAX_SCHEMA:
        positive = _reduce(positive, schema - MAX_SCHEMA)
        negative = _reduce(negative, schema - MAX_SCHEMA)
        schema = MAX_SCHEMA
    zero_count = count_of(nh.zero_count, "native histogram zero count")
    out = [sint_field(5, schema), b"\x31", _D(nh.zero_threshold), b"\x38", varint(zero_count)]
    if negative:
        out.append(_side(b"\x4a", 10, negative))
    if positive:
        out.append(_side(b"\x62", 13, positive))
    elif not negative and not zero_count and not nh.zero_threshold:
        # Empty, with a zero threshold of 0: Prometheus 2.42 judges a family by its
        # first metric and sees a native histogram only with a delta (it ignores
        # the no-op span of later versions), so one empty bucket at index 0.
        out.append(b"\x62\x04\x08\x00\x10\x01\x6a\x01\x00")
    return b"".join(out)
