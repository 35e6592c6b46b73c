"""HeadReader: collecting one request head within the byte and field limits, no sockets."""

import pytest

from dyn_metrics.server.options import ServerOptions
from dyn_metrics.server.wire import BadRequest, HeadReader

LIMITS = ServerOptions(max_request_line=20, max_header_bytes=60, max_headers=3)


def feed_all(chunks, limits=LIMITS):
    """Feed ``chunks`` in order; return what each feed returned."""
    reader = HeadReader(limits)
    return [reader.feed(chunk) for chunk in chunks]


HEADS = [
    # (chunks as they arrive, the head returned by the last feed)
    ([b"GET / HTTP/1.1\r\n\r\n"], b"GET / HTTP/1.1\r\n\r\n"),
    ([b"GET / HTTP/1.1\n\n"], b"GET / HTTP/1.1\n\n"),  # bare LF
    ([b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"], b"GET / HTTP/1.1\r\nA: b\r\n\r\n"),  # body dropped
    ([b"\r\n\n\r\nGET / HTTP/1.1\r\n\r\n"], b"GET / HTTP/1.1\r\n\r\n"),  # leading empty lines
    ([b"\r\n", b"\r\n", b"GET / HTTP/1.1\r\n\r\n"], b"GET / HTTP/1.1\r\n\r\n"),
    ([b"GET / HT", b"TP/1.1\r", b"\n\r", b"\n"], b"GET / HTTP/1.1\r\n\r\n"),  # split anywhere
    ([b"GET / HTTP/1.1\r\nA: b\r\n", b"\r\n"], b"GET / HTTP/1.1\r\nA: b\r\n\r\n"),
    ([b"x\r\n" + b"A: b\r\n" * 3 + b"\r\n"], b"x\r\n" + b"A: b\r\n" * 3 + b"\r\n"),  # 3 fields
]


@pytest.mark.parametrize("chunks, head", HEADS)
def test_head_reader_returns_the_complete_head(chunks, head):
    got = feed_all(chunks)
    assert got[:-1] == [None] * (len(chunks) - 1)
    assert got[-1] == head


REFUSED = [
    # (chunks, status)
    ([b"GET /" + b"a" * 30], 414),  # no line end yet, already too long
    ([b"GET /" + b"a" * 13 + b" HTTP/1.1\r\n\r\n"], 414),
    ([b"GET / HTTP/1.1\r\n", b"A: " + b"b" * 60], 431),  # head too long, no end yet
    ([b"GET / HTTP/1.1\r\nA: " + b"b" * 50 + b"\r\n\r\n"], 431),
    ([b"x\r\n" + b"A: b\r\n" * 4 + b"\r\n"], 431),  # 4 fields
]


@pytest.mark.parametrize("chunks, status", REFUSED)
def test_head_reader_refuses_past_the_limits(chunks, status):
    reader = HeadReader(LIMITS)
    with pytest.raises(BadRequest) as info:
        for chunk in chunks:
            assert reader.feed(chunk) is None
    assert info.value.status == status


def test_head_reader_request_line_at_the_limit_is_accepted():
    line = b"GET /" + b"a" * 6 + b" HTTP/1.1"  # exactly 20 bytes
    assert len(line) == 20
    assert feed_all([line + b"\r\n\r\n"])[-1] == line + b"\r\n\r\n"
