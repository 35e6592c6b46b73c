"""Snappy block compression, the format remote write sends (not the framed stream format).

A block is the uncompressed length as a varint (at most ``2**32 - 1``), then
elements, each starting with a tag byte whose low two bits give its kind:

* ``00`` literal: the length minus one in the upper six bits when below 60,
  else 60..63 say that 1..4 little-endian bytes holding it follow; then the
  bytes themselves;
* ``01`` copy, length 4..11 (bits 2-4, plus 4) and an 11-bit offset (bits
  5-7 are its high bits, one byte follows);
* ``10`` copy, length 1..64 (upper six bits, plus 1), 2-byte offset;
* ``11`` copy, length 1..64, 4-byte offset.

A copy repeats ``length`` bytes starting ``offset`` bytes back in the output
(it may overlap what it writes, which repeats a short pattern).

:func:`compress` is greedy LZ77 over the whole input: a dict maps each 4-byte
sequence to the last position it was seen at (a hit is therefore a real
4-byte match, no verification needed); matches are extended by comparing
slices and locating the first differing byte with one integer XOR, so the
Python loop runs once per element, not once per byte. After a run of misses
the scan steps further (snappy's skip heuristic), which keeps incompressible
input fast. Offsets of 64 KiB and more use the 4-byte form, so matches
across the whole input are found (the reference splits its input into 64
KiB blocks; any conforming decoder reads both).

:func:`decompress` is strict: a bad length, a copy reaching before the
start, output longer or shorter than announced (trailing bytes included)
raise :class:`~dyn_metrics.errors.InvalidValueError` (a ``ValueError``).
"""

import struct
from typing import Union

from ..errors import InvalidValueError
from ..exposition.protowire import varint

__all__ = ["MAX_LENGTH", "compress", "decompress"]

#: The largest uncompressed length a block can announce.
MAX_LENGTH = 0xFFFFFFFF

BytesLike = Union[bytes, bytearray, memoryview]

_LITERAL = 0
_PACK_COPY1 = struct.Struct("<BB").pack  # tag, offset low byte
_PACK_COPY2 = struct.Struct("<BH").pack  # tag, offset
_COPY1 = 1
_COPY2 = 2
_COPY4 = 3


def _literal(out: bytearray, src: bytes, start: int, end: int) -> None:
    n = end - start - 1
    if n < 60:
        out.append(n << 2)
    elif n < 0x100:
        out += bytes((60 << 2, n))
    elif n < 0x10000:
        out += bytes((61 << 2, n & 0xFF, n >> 8))
    elif n < 0x1000000:
        out += bytes((62 << 2, n & 0xFF, (n >> 8) & 0xFF, n >> 16))
    else:
        out.append(63 << 2)
        out += n.to_bytes(4, "little")
    out += src[start:end]


def _copy(out: bytearray, offset: int, length: int) -> None:
    # Pieces of 64 at most; keep the last one >= 4 so the 1-byte form stays usable,
    # as the reference encoder does (68 = 64 + the shortest 1-byte copy).
    if offset >= 0x10000:
        tail = offset.to_bytes(4, "little")
        while length > 0:
            piece = 64 if length > 64 else length
            out.append(_COPY4 | (piece - 1) << 2)
            out += tail
            length -= piece
        return
    lo, hi = offset & 0xFF, offset >> 8
    while length >= 68:
        out += bytes((_COPY2 | 63 << 2, lo, hi))
        length -= 64
    if length > 64:
        out += bytes((_COPY2 | 59 << 2, lo, hi))
        length -= 60
    if length < 12 and offset < 2048:
        out += bytes((_COPY1 | (length - 4) << 2 | hi << 5, lo))
    else:
        out += bytes((_COPY2 | (length - 1) << 2, lo, hi))


def compress(data: BytesLike) -> bytes:
    """``data`` as one snappy block (literals and back-references).

    The match table holds one entry per distinct 4-byte sequence scanned, so
    memory grows with the input (a few times its size at most): callers send
    bounded batches. Raises :class:`InvalidValueError` for input that is not
    bytes-like or is longer than :data:`MAX_LENGTH`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidValueError(f"snappy compresses bytes, got {data!r:.80}")
    src = bytes(data)
    n = len(src)
    if n > MAX_LENGTH:
        raise InvalidValueError(f"snappy blocks hold at most {MAX_LENGTH} bytes, got {n}")
    out = bytearray(varint(n))  # the preamble: the uncompressed length, as protobuf's varint
    table: dict[bytes, int] = {}
    get = table.get
    from_bytes = int.from_bytes
    pack_copy1 = _PACK_COPY1
    pack_copy2 = _PACK_COPY2
    literal_start = 0
    i = 0
    last = n - 4  # the last position a 4-byte key fits at
    skip = 32
    while i <= last:
        k = src[i : i + 4]
        cand = get(k)
        table[k] = i
        if cand is None:
            i += skip >> 5
            if skip < 2048:  # steps of at most 64, as 64 KiB blocks bound the reference's
                skip += 1
            continue
        # src[cand:cand+4] == src[i:i+4]: extend with doubling slice compares.
        m = 4
        room = n - i
        step = 32
        while m < room:
            e = m + step
            if e > room:
                e = room
            a = src[cand + m : cand + e]
            b = src[i + m : i + e]
            if a == b:
                m = e
                step <<= 1
                continue
            x = from_bytes(a, "little") ^ from_bytes(b, "little")
            m += ((x & -x).bit_length() - 1) >> 3
            break
        if literal_start < i:
            _literal(out, src, literal_start, i)
        offset = i - cand
        # The common cases inline (a call costs as much as the encoding); _copy does the rest.
        if m <= 64 and offset < 0x10000:
            if m < 12 and offset < 2048:
                out += pack_copy1(_COPY1 | (m - 4) << 2 | (offset >> 8) << 5, offset & 0xFF)
            else:
                out += pack_copy2(_COPY2 | (m - 1) << 2, offset)
        else:
            _copy(out, offset, m)
        i += m
        literal_start = i
        skip = 32
        # The reference also remembers the position just before the next scan.
        if i - 1 <= last:
            table[src[i - 1 : i + 3]] = i - 1
    if literal_start < n:
        _literal(out, src, literal_start, n)
    return bytes(out)


def _corrupt(what: str, pos: int) -> InvalidValueError:
    return InvalidValueError(f"corrupt snappy block: {what} (at byte {pos})")


def decompress(data: BytesLike) -> bytes:
    """The bytes a snappy block holds.

    Raises :class:`InvalidValueError` (a ``ValueError``) for input that is not
    bytes-like or not a valid block: a missing, overlong or too large length,
    a truncated element, a copy with offset 0 or reaching before the start of
    the output, or output longer or shorter than the announced length.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidValueError(f"snappy decompresses bytes, got {data!r:.80}")
    src = bytes(data)
    n = len(src)
    length = shift = pos = 0
    while True:
        if pos >= n:
            raise _corrupt("truncated length", pos)
        if pos == 5:
            raise _corrupt("length longer than 5 bytes", pos)
        byte = src[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    if length > MAX_LENGTH:
        raise _corrupt(f"length {length} above {MAX_LENGTH}", 0)
    out = bytearray()
    size = 0
    from_bytes = int.from_bytes
    while pos < n:
        at = pos
        tag = src[pos]
        pos += 1
        kind = tag & 3
        if kind == _LITERAL:
            ln = tag >> 2
            if ln >= 60:
                extra = ln - 59
                if pos + extra > n:
                    raise _corrupt("truncated literal length", at)
                ln = from_bytes(src[pos : pos + extra], "little")
                pos += extra
            ln += 1
            if pos + ln > n:
                raise _corrupt(f"literal of {ln} bytes past the end of the input", at)
            if size + ln > length:
                raise _corrupt(f"output longer than the announced {length} bytes", at)
            out += src[pos : pos + ln]
            pos += ln
            size += ln
            continue
        if kind == _COPY1:
            if pos + 1 > n:
                raise _corrupt("truncated copy", at)
            ln = ((tag >> 2) & 7) + 4
            offset = (tag >> 5) << 8 | src[pos]
            pos += 1
        elif kind == _COPY2:
            if pos + 2 > n:
                raise _corrupt("truncated copy", at)
            ln = (tag >> 2) + 1
            offset = src[pos] | src[pos + 1] << 8
            pos += 2
        else:
            if pos + 4 > n:
                raise _corrupt("truncated copy", at)
            ln = (tag >> 2) + 1
            offset = from_bytes(src[pos : pos + 4], "little")
            pos += 4
        if offset == 0 or offset > size:
            raise _corrupt(f"copy offset {offset} with {size} bytes written", at)
        if size + ln > length:
            raise _corrupt(f"output longer than the announced {length} bytes", at)
        start = size - offset
        if ln <= offset:
            out += out[start : start + ln]
        else:  # overlapping: the last `offset` bytes repeat
            pattern = out[start:]
            reps, rest = divmod(ln, offset)
            out += pattern * reps + pattern[:rest]
        size += ln
    if size != length:
        raise _corrupt(f"{size} bytes decoded, {length} announced", pos)
    return bytes(out)
