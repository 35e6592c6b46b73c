"""HPACK (RFC 7541): the header compression of HTTP/2, both directions.

``Encoder`` writes literal fields without indexing (never indexed for
credentials, RFC 7541 section 7.1.3), so it keeps no state and the peer's
table size never matters. ``Decoder`` reads everything a server may send:
indexed fields, the static table, the dynamic table with its size updates,
every literal form and Huffman-coded strings. A block it cannot decode raises
``HpackError``; HPACK is stateful, so the connection must be dropped then.

Header names and values are bytes: HTTP/2 defines them as octets.
"""

from collections import deque
from collections.abc import Iterable, Sequence

from ..errors import MetricsError

Header = tuple[bytes, bytes]


class HpackError(MetricsError, ValueError):
    """A header block or Huffman string that RFC 7541 does not allow."""


# RFC 7541 Appendix A, index 1..61.
STATIC_TABLE: tuple[Header, ...] = tuple(
    (name.encode(), value.encode())
    for name, value in (
        (":authority", ""),
        (":method", "GET"),
        (":method", "POST"),
        (":path", "/"),
        (":path", "/index.html"),
        (":scheme", "http"),
        (":scheme", "https"),
        (":status", "200"),
        (":status", "204"),
        (":status", "206"),
        (":status", "304"),
        (":status", "400"),
        (":status", "404"),
        (":status", "500"),
        ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"),
        ("accept-language", ""),
        ("accept-ranges", ""),
        ("accept", ""),
        ("access-control-allow-origin", ""),
        ("age", ""),
        ("allow", ""),
        ("authorization", ""),
        ("cache-control", ""),
        ("content-disposition", ""),
        ("content-encoding", ""),
        ("content-language", ""),
        ("content-length", ""),
        ("content-location", ""),
        ("content-range", ""),
        ("content-type", ""),
        ("cookie", ""),
        ("date", ""),
        ("etag", ""),
        ("expect", ""),
        ("expires", ""),
        ("from", ""),
        ("host", ""),
        ("if-match", ""),
        ("if-modified-since", ""),
        ("if-none-match", ""),
        ("if-range", ""),
        ("if-unmodified-since", ""),
        ("last-modified", ""),
        ("link", ""),
        ("location", ""),
        ("max-forwards", ""),
        ("proxy-authenticate", ""),
        ("proxy-authorization", ""),
        ("range", ""),
        ("referer", ""),
        ("refresh", ""),
        ("retry-after", ""),
        ("server", ""),
        ("set-cookie", ""),
        ("strict-transport-security", ""),
        ("transfer-encoding", ""),
        ("user-agent", ""),
        ("vary", ""),
        ("via", ""),
        ("www-authenticate", ""),
    )
)
_STATIC_NAME_INDEX: dict[bytes, int] = {}
for _i, (_name, _) in enumerate(STATIC_TABLE, 1):
    _STATIC_NAME_INDEX.setdefault(_name, _i)

# RFC 7541 Appendix B: the code length of each symbol 0..255 and EOS (256).
# The table's codes are canonical (sorted by length, then symbol, each code is
# the previous one plus one, shifted left when the length grows), so the codes
# follow from the lengths alone; tests check them against the RFC's examples.
_HUFFMAN_LENGTHS: tuple[int, ...] = tuple(
    int(n)
    for n in """
13 23 28 28 28 28 28 28 28 24 30 28 28 30 28 28 28 28 28 28 28 28 30 28 28 28 28 28 28 28 28
28 6 10 10 12 13 6 8 11 10 10 8 11 8 6 6 6 5 5 5 6 6 6 6 6 6 6 7 8 15 6 12 10 13 6 7 7 7 7 7
7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 8 7 8 13 19 13 14 6 15 5 6 5 6 5 6 6 6 5 7 7 6 6 6 5 6 7 6
5 5 6 7 7 7 7 7 15 11 14 13 28 20 22 20 20 22 22 22 23 22 23 23 23 23 23 24 23 24 24 22 23
24 23 23 23 23 21 22 23 22 23 23 24 22 21 20 22 22 23 23 21 23 22 22 24 21 22 23 23 21 21 22
21 23 22 23 23 20 22 22 22 23 22 22 23 26 26 20 19 22 23 22 25 26 26 26 27 27 26 24 25 19 21
26 27 27 26 27 24 21 21 26 26 28 27 27 27 20 24 20 21 22 21 21 23 22 22 25 25 24 24 26 23 26
27 26 26 27 27 27 27 27 28 27 27 27 27 27 26 30
""".split()
)
_EOS = 256


def _canonical_codes(lengths: Sequence[int]) -> tuple[int, ...]:
    codes = [0] * len(lengths)
    code, prev = -1, lengths[min(range(len(lengths)), key=lambda s: (lengths[s], s))]
    for sym in sorted(range(len(lengths)), key=lambda s: (lengths[s], s)):
        code = (code + 1) << (lengths[sym] - prev)
        prev = lengths[sym]
        codes[sym] = code
    return tuple(codes)


HUFFMAN_CODES: tuple[tuple[int, int], ...] = tuple(
    zip(_canonical_codes(_HUFFMAN_LENGTHS), _HUFFMAN_LENGTHS)
)
"""``HUFFMAN_CODES[symbol] == (code, bit_length)`` for symbols 0..256 (256 is EOS)."""

# Canonical decoding: for each length, the first code of that length, how
# many codes have it, and where its symbols start in the sorted symbol list.
_SORTED_SYMBOLS = sorted(range(257), key=lambda s: (_HUFFMAN_LENGTHS[s], s))
_FIRST_CODE: dict[int, int] = {}
_FIRST_INDEX: dict[int, int] = {}
_COUNT: dict[int, int] = {}
for _k, _sym in enumerate(_SORTED_SYMBOLS):
    _code, _len = HUFFMAN_CODES[_sym]
    if _len not in _FIRST_CODE:
        _FIRST_CODE[_len], _FIRST_INDEX[_len] = _code, _k
    _COUNT[_len] = _COUNT.get(_len, 0) + 1


def huffman_encode(data: bytes) -> bytes:
    """``data`` Huffman-coded, padded with the most significant bits of EOS (ones)."""
    acc, nbits = 0, 0
    for byte in data:
        code, length = HUFFMAN_CODES[byte]
        acc = (acc << length) | code
        nbits += length
    pad = -nbits % 8
    acc = (acc << pad) | ((1 << pad) - 1)
    return acc.to_bytes((nbits + pad) // 8, "big")


def huffman_decode(data: bytes) -> bytes:
    """The octets ``data`` encodes; raises ``HpackError`` on EOS or bad padding."""
    out = bytearray()
    code, length = 0, 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            offset = code - _FIRST_CODE.get(length, 1 << 31)
            if 0 <= offset < _COUNT.get(length, 0):
                sym = _SORTED_SYMBOLS[_FIRST_INDEX[length] + offset]
                if sym == _EOS:
                    raise HpackError("huffman string contains EOS")
                out.append(sym)
                code, length = 0, 0
    # Section 5.2: padding is fewer than 8 bits, all of them ones.
    if length > 7 or code != (1 << length) - 1:
        raise HpackError(f"huffman string has invalid padding ({length} bits {code:#x})")
    return bytes(out)


def encode_integer(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    """Section 5.1: ``value`` on an N-bit prefix, ``flags`` in the bits above it."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """Section 5.1: ``(value, next position)`` of the integer starting at ``data[pos]``."""
    if pos >= len(data):
        raise HpackError("header block ends inside an integer")
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise HpackError("header block ends inside an integer")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 28:  # past 2**35: no length or index is that large
            raise HpackError("integer in header block is too large")


def encode_string(data: bytes, huffman: bool = False) -> bytes:
    """Section 5.2: a length-prefixed string literal, Huffman-coded when asked."""
    if huffman:
        coded = huffman_encode(data)
        return encode_integer(len(coded), 7, 0x80) + coded
    return encode_integer(len(data), 7) + data


def _decode_string(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos >= len(data):
        raise HpackError("header block ends before a string")
    huffman = data[pos] & 0x80
    length, pos = decode_integer(data, pos, 7)
    end = pos + length
    if end > len(data):
        raise HpackError(f"string of {length} bytes runs past the header block")
    raw = data[pos:end]
    return (huffman_decode(raw) if huffman else raw), end


# Values a proxy must not index (section 7.1.3): credentials.
_NEVER_INDEXED = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"})


class Encoder:
    """Writes header blocks of literal fields that never enter a dynamic table."""

    def __init__(self, huffman: bool = False) -> None:
        self.huffman = huffman

    def encode(self, headers: Iterable[Header]) -> bytes:
        """One header block for ``headers`` (names already lowercase)."""
        out = bytearray()
        for name, value in headers:
            # 0x10: never indexed (4-bit prefix); 0x00: without indexing.
            flags = 0x10 if name in _NEVER_INDEXED else 0x00
            index = _STATIC_NAME_INDEX.get(name, 0)
            out += encode_integer(index, 4, flags)
            if not index:
                out += encode_string(name, self.huffman)
            out += encode_string(value, self.huffman)
        return bytes(out)


class Decoder:
    """Decodes header blocks against one connection's dynamic table.

    ``max_table_size`` is the SETTINGS_HEADER_TABLE_SIZE this end advertised
    (4096 unless changed); a size update above it is refused.
    ``max_header_list_size`` bounds what one block may decode to (the sum of
    name + value + 32 per field), so a small block naming large entries many
    times cannot grow without bound.
    """

    def __init__(self, max_table_size: int = 4096, max_header_list_size: int = 1 << 20) -> None:
        self.max_table_size = max_table_size
        self.max_header_list_size = max_header_list_size
        self.table_size_limit = max_table_size  # the current limit, set by size updates
        self.table: deque[Header] = deque()  # newest first: index 62 is table[0]
        self.size = 0

    def _entry(self, index: int) -> Header:
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dynamic = index - len(STATIC_TABLE) - 1
        if index == 0 or dynamic >= len(self.table):
            raise HpackError(f"header index {index} is not in the table")
        return self.table[dynamic]

    def _evict_to(self, limit: int) -> None:
        while self.size > limit:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32

    def _add(self, name: bytes, value: bytes) -> None:
        entry_size = len(name) + len(value) + 32
        # Section 4.4: an entry larger than the table empties it and is not added.
        self._evict_to(self.table_size_limit - entry_size)
        if entry_size <= self.table_size_limit:
            self.table.appendleft((name, value))
            self.size += entry_size

    def decode(self, block: bytes) -> list[Header]:
        """The header list ``block`` encodes; the dynamic table is updated as it goes."""
        headers: list[Header] = []
        pos, total, fields_seen = 0, 0, False
        while pos < len(block):
            byte = block[pos]
            if byte & 0x80:  # 6.1 indexed field
                index, pos = decode_integer(block, pos, 7)
                name, value = self._entry(index)
            elif byte & 0xE0 == 0x20:  # 6.3 dynamic table size update
                if fields_seen:
                    raise HpackError("table size update after a header field")
                size, pos = decode_integer(block, pos, 5)
                if size > self.max_table_size:
                    raise HpackError(
                        f"table size update to {size} exceeds the {self.max_table_size} allowed"
                    )
                self.table_size_limit = size
                self._evict_to(size)
                continue
            else:  # 6.2 literals: with incremental indexing (01), without (0000), never (0001)
                indexing = bool(byte & 0x40)
                index, pos = decode_integer(block, pos, 6 if indexing else 4)
                if index:
                    name = self._entry(index)[0]
                else:
                    name, pos = _decode_string(block, pos)
                value, pos = _decode_string(block, pos)
                if indexing:
                    self._add(name, value)
            fields_seen = True
            total += len(name) + len(value) + 32
            if total > self.max_header_list_size:
                raise HpackError(
                    f"header list exceeds {self.max_header_list_size} bytes once decoded"
                )
            headers.append((name, value))
        return headers
