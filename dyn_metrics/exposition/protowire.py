"""Protocol Buffers wire format by hand: the few encodings OTLP, remote write and the
protobuf exposition need, and a reader for the replies.

Messages are built bottom-up as ``bytes``: a field is its key (``field number
<< 3 | wire type`` as a varint) then its payload. Wire types: 0 varint, 1
64-bit, 2 length-delimited (strings, bytes, nested messages, packed repeated
scalars), 5 32-bit. proto3 leaves out fields that hold their default value;
callers decide (the ``*_field`` helpers here always write, the ``opt_*``
ones skip defaults). Everything is standard library: ``struct`` for the
fixed-width numbers.

:func:`iter_fields` walks an encoded message (for servers' replies, such as
OTLP's partial success): it raises :class:`ValueError` on a truncated or
malformed input rather than returning garbage.
"""

import struct
from collections.abc import Iterable, Iterator
from typing import Union

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_FIXED32 = struct.Struct("<I")

#: A decoded field value: an int (varint, fixed64, fixed32) or bytes (length-delimited).
FieldValue = Union[int, bytes]


def varint(n: int) -> bytes:
    """``n`` (0 <= n < 2**64; a negative int64 as its two's complement) as a varint."""
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n: int) -> int:
    """``sint64`` encoding: 0, -1, 1, -2 ... as 0, 1, 2, 3 ..."""
    return (n << 1) ^ (n >> 63)


def key(field: int, wire: int) -> bytes:
    """The key of field ``field`` with wire type ``wire``."""
    return varint(field << 3 | wire)


def varint_field(field: int, n: int) -> bytes:
    """A varint field (int32/int64/uint64/bool/enum)."""
    return key(field, VARINT) + varint(n)


def bytes_field(field: int, data: bytes) -> bytes:
    """A length-delimited field: bytes or an encoded nested message."""
    return key(field, LENGTH_DELIMITED) + varint(len(data)) + data


def string_field(field: int, text: str) -> bytes:
    """A string field (UTF-8)."""
    return bytes_field(field, text.encode("utf-8"))


def double_field(field: int, value: float) -> bytes:
    """A double field (wire type 1)."""
    return key(field, FIXED64) + _DOUBLE.pack(value)


def fixed64_field(field: int, n: int) -> bytes:
    """A fixed64 field (wire type 1)."""
    return key(field, FIXED64) + _FIXED64.pack(n)


def packed_doubles(field: int, values: Iterable[float]) -> bytes:
    """A packed repeated double field (one length-delimited run)."""
    data = list(values)
    return bytes_field(field, struct.pack(f"<{len(data)}d", *data))


def packed_fixed64(field: int, values: Iterable[int]) -> bytes:
    """A packed repeated fixed64 field."""
    data = list(values)
    return bytes_field(field, struct.pack(f"<{len(data)}Q", *data))


def packed_varints(field: int, values: Iterable[int]) -> bytes:
    """A packed repeated varint field (uint64, or sint64 after :func:`zigzag`)."""
    return bytes_field(field, b"".join(varint(v) for v in values))


def opt_varint(field: int, n: int) -> bytes:
    """A varint field, left out when 0 (proto3's default)."""
    return varint_field(field, n) if n else b""


def opt_string(field: int, text: str) -> bytes:
    """A string field, left out when empty."""
    return string_field(field, text) if text else b""


def opt_double(field: int, value: float) -> bytes:
    """A double field, left out when +0.0 (NaN and -0.0 are written: they are not 0)."""
    return double_field(field, value) if value or str(value)[0] == "-" or value != value else b""


def delimited(message: bytes) -> bytes:
    """``message`` prefixed with its length (the protobuf exposition's stream framing)."""
    return varint(len(message)) + message


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, FieldValue]]:
    """``(field number, wire type, value)`` of each field of an encoded message, in order.

    Raises :class:`ValueError` for a truncated message or an unknown wire type.
    """
    pos = 0
    end = len(data)
    while pos < end:
        tag, pos = _read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        value: FieldValue
        if wire == VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise ValueError("truncated 64-bit field")
            value = _FIXED64.unpack_from(data, pos)[0]
            pos += 8
        elif wire == LENGTH_DELIMITED:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise ValueError("truncated length-delimited field")
            value = data[pos : pos + size]
            pos += size
        elif wire == FIXED32:
            if pos + 4 > end:
                raise ValueError("truncated 32-bit field")
            value = _FIXED32.unpack_from(data, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire} (field {field})")
        yield field, wire, value


def sint_field(field: int, n: int) -> bytes:
    """A ``sint32``/``sint64`` field: ``n`` zigzag-encoded (identical for both in int32 range)."""
    return key(field, VARINT) + varint(zigzag(n))


def packed_sint64(field: int, values: Iterable[int]) -> bytes:
    """A packed repeated ``sint64`` field: each value zigzag-encoded, one length-delimited run."""
    return bytes_field(field, b"".join([varint(zigzag(v)) for v in values]))


#: ``varint(n)`` of every n < 128, for encoders that inline the one-byte case.
ONE_BYTE_VARINTS = [bytes((i,)) for i in range(128)]


def uvarint(n: int) -> bytes:
    """``varint(n)`` for ``n >= 0``; one-byte values (most lengths and counts) from a table."""
    return ONE_BYTE_VARINTS[n] if n < 128 else varint(n)


def len_record(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited record: the encoded key ``tag``, the payload's length, the payload."""
    n = len(payload)
    return tag + (ONE_BYTE_VARINTS[n] if n < 128 else varint(n)) + payload
