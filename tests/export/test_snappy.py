"""Snappy block format: round trips, an independent implementation (cramjam) both ways,
real back-references, and strict rejection of corrupt blocks."""

import os

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dyn_metrics.errors import InvalidValueError
from dyn_metrics.export import snappy


def theirs_decompress(block):
    return bytes(cramjam.snappy.decompress_raw(block))


def theirs_compress(data):
    return bytes(cramjam.snappy.compress_raw(data))


def elements(block):
    """The kinds of the elements of a block: 'lit', 'copy1', 'copy2', 'copy4'."""
    pos = 0
    while block[pos] & 0x80:
        pos += 1
    pos += 1
    kinds = []
    while pos < len(block):
        tag = block[pos]
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            extra = n - 59 if n >= 60 else 0
            n = int.from_bytes(block[pos + 1 : pos + 1 + extra], "little") if extra else n
            pos += 1 + extra + n + 1
            kinds.append("lit")
        else:
            pos += (0, 2, 3, 5)[kind]
            kinds.append(("", "copy1", "copy2", "copy4")[kind])
    return kinds


CASES = [
    # input
    b"",
    b"a",
    b"abc",
    b"abcd",
    b"a" * 5,
    b"a" * 100,  # one overlapping copy of offset 1
    b"ab" * 1000,
    b"hello world " * 10_000,
    bytes(range(256)) * 300,  # matches 256 back: 2-byte offsets
    os.urandom(70_000) * 3,  # matches 70000 back: 4-byte offsets
    os.urandom(100_000),  # incompressible
    b"x" * 61 + os.urandom(300) + b"y" * 70_000,  # every literal length form
]


@pytest.mark.parametrize("data", CASES, ids=lambda d: f"{len(d)}b")
def test_round_trips_and_cramjam_reads_ours(data):
    ours = snappy.compress(data)
    assert snappy.decompress(ours) == data
    assert theirs_decompress(ours) == data
    assert snappy.decompress(theirs_compress(data)) == data


def test_copies_of_every_offset_width():
    near = b"".join(b"value_%03d " % i for i in range(200))  # short matches close by
    assert "copy1" in elements(snappy.compress(near))
    assert "copy2" in elements(snappy.compress(bytes(range(256)) * 30))
    far = snappy.compress(os.urandom(70_000) * 2)
    assert "copy4" in elements(far)
    assert len(far) < 80_000  # the second half is back-references (5 bytes per 64)


def test_memoryview_and_bytearray_input():
    data = b"abcdefgh" * 50
    assert snappy.compress(memoryview(data)) == snappy.compress(data)
    assert snappy.decompress(bytearray(snappy.compress(bytearray(data)))) == data


@settings(max_examples=150)
@given(st.binary(max_size=3000))
def test_random_bytes_round_trip(data):
    block = snappy.compress(data)
    assert snappy.decompress(block) == data
    assert theirs_decompress(block) == data
    assert snappy.decompress(theirs_compress(data)) == data


@settings(max_examples=150)
@given(
    st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=8),
    st.lists(st.integers(0, 7), max_size=400),
)
def test_repetitive_data_round_trips(pieces, picks):
    data = b"".join(pieces[i % len(pieces)] for i in picks)
    block = snappy.compress(data)
    assert theirs_decompress(block) == data
    assert snappy.decompress(block) == data
    if len(data) > 200:
        assert len(block) < len(data)  # back-references, not only literals


CORRUPT = [
    # block, what the error says
    (b"", "truncated length"),
    (b"\x80", "truncated length"),
    (b"\xff\xff\xff\xff\xff\x01", "longer than 5 bytes"),
    (b"\xff\xff\xff\xff\x7f", "above"),  # 2**35 - 1
    (b"\x05\x10abc", "past the end"),  # literal of 5, 3 given
    (b"\x05\xf0", "truncated literal length"),  # 60: one length byte missing
    (b"\x04\x01\x00", "copy offset 0"),  # copy1 at the start: nothing to copy from
    (b"\x08\x0cabcd\x01\x05", "copy offset 5"),  # offset 5 with 4 bytes written
    (b"\x08\x0cabcd\x0a\x00\x00", "copy offset 0"),  # copy2 with offset 0
    (b"\x08\x0cabcd\x02\x04", "truncated copy"),
    (b"\x08\x0cabcd\x03\x04\x00\x00", "truncated copy"),
    (b"\x03\x0cabcd", "longer than the announced"),  # trailing garbage
    (b"\x04\x0cabcd\x00x", "longer than the announced"),  # a trailing literal
    (b"\x06\x0cabcd", "4 bytes decoded, 6 announced"),
    (b"\x05\x0cabcd\x01\x04", "longer than the announced"),  # a copy past the length
]


@pytest.mark.parametrize("block, message", CORRUPT)
def test_corrupt_blocks_are_refused(block, message):
    with pytest.raises(ValueError, match=message) as info:
        snappy.decompress(block)
    assert isinstance(info.value, InvalidValueError)
    assert str(info.value).startswith("corrupt snappy block")
    with pytest.raises(Exception):  # noqa: B017 - cramjam agrees it is not a block
        theirs_decompress(block)


def test_not_bytes_is_refused():
    with pytest.raises(InvalidValueError, match="'text'"):
        snappy.compress("text")
    with pytest.raises(InvalidValueError, match="None"):
        snappy.decompress(None)
