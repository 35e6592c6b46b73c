"""HPACK against RFC 7541 Appendix C (decoded exactly) and the Huffman table of Appendix B."""

import os

import pytest

from dyn_metrics.export import hpack
from dyn_metrics.export.hpack import Decoder, Encoder, HpackError


def _h(text):
    return bytes.fromhex(text.replace(" ", ""))


def _fields(text):
    return [tuple(x.encode() for x in line.split(": ", 1)) for line in text.strip().splitlines()]


REQ1 = ":method: GET\n:scheme: http\n:path: /\n:authority: www.example.com"
REQ2 = REQ1 + "\ncache-control: no-cache"
REQ3 = ":method: GET\n:scheme: https\n:path: /index.html\n:authority: www.example.com\n"
REQ3 += "custom-key: custom-value"
DATE1 = "date: Mon, 21 Oct 2013 20:13:21 GMT"
LOC = "location: https://www.example.com"
RESP1 = f":status: 302\ncache-control: private\n{DATE1}\n{LOC}"
RESP2 = f":status: 307\ncache-control: private\n{DATE1}\n{LOC}"
RESP3 = ":status: 200\ncache-control: private\ndate: Mon, 21 Oct 2013 20:13:22 GMT\n"
RESP3 += f"{LOC}\ncontent-encoding: gzip\n"
RESP3 += "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
SET_COOKIE = (b"set-cookie", b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")

# C.3 / C.4: (block, decoded, dynamic table after it, table size); one decoder per sequence.
REQUESTS_PLAIN = [
    ("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", REQ1, 57),
    ("8286 84be 5808 6e6f 2d63 6163 6865", REQ2, 110),
    (
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        REQ3,
        164,
    ),
]
REQUESTS_HUFFMAN = [
    ("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", REQ1, 57),
    ("8286 84be 5886 a8eb 1064 9cbf", REQ2, 110),
    ("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", REQ3, 164),
]
# C.5 / C.6: SETTINGS_HEADER_TABLE_SIZE 256, so entries are evicted.
RESPONSES_PLAIN = [
    (
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133"
        "2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70"
        "6c65 2e63 6f6d",
        RESP1,
        222,
    ),
    ("4803 3330 37c1 c0bf", RESP2, 222),
    (
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d"
        "54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049"
        "5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e"
        "3d31",
        RESP3,
        215,
    ),
]
RESPONSES_HUFFMAN = [
    (
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6"
        "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        RESP1,
        222,
    ),
    ("4883 640e ffc1 c0bf", RESP2, 222),
    (
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab"
        "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f"
        "9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        RESP3,
        215,
    ),
]


@pytest.mark.parametrize(
    "block, fields, table",
    [
        # C.2.1 literal with incremental indexing: enters the table (size 55)
        (
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            "custom-key: custom-header",
            [(b"custom-key", b"custom-header")],
        ),
        # C.2.2 literal without indexing, C.2.3 never indexed, C.2.4 indexed: table stays empty
        ("040c 2f73 616d 706c 652f 7061 7468", ":path: /sample/path", []),
        ("1008 7061 7373 776f 7264 0673 6563 7265 74", "password: secret", []),
        ("82", ":method: GET", []),
    ],
)
def test_c2_field_representations(block, fields, table):
    decoder = Decoder()
    assert decoder.decode(_h(block)) == _fields(fields)
    assert list(decoder.table) == table
    assert decoder.size == sum(len(n) + len(v) + 32 for n, v in table)


@pytest.mark.parametrize(
    "sequence, table_size",
    [
        (REQUESTS_PLAIN, 4096),  # C.3
        (REQUESTS_HUFFMAN, 4096),  # C.4
        (RESPONSES_PLAIN, 256),  # C.5
        (RESPONSES_HUFFMAN, 256),  # C.6
    ],
    ids=["C.3", "C.4", "C.5", "C.6"],
)
def test_appendix_c_sequences(sequence, table_size):
    decoder = Decoder(max_table_size=table_size)
    decoder.table_size_limit = table_size
    for block, fields, size in sequence:
        assert decoder.decode(_h(block)) == _fields(fields)
        assert decoder.size == size
    if table_size == 256:  # C.5.3 / C.6.3: what survives the evictions, newest first
        assert list(decoder.table) == [
            SET_COOKIE,
            (b"content-encoding", b"gzip"),
            (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
        ]
    else:
        assert list(decoder.table)[0] == (b"custom-key", b"custom-value")


def test_huffman_table_matches_appendix_b_and_round_trips():
    # Spot checks of Appendix B: ' ' (32), '0' (48), 'a' (97), 255 and EOS.
    assert hpack.HUFFMAN_CODES[32] == (0x14, 6)
    assert hpack.HUFFMAN_CODES[48] == (0x0, 5)
    assert hpack.HUFFMAN_CODES[97] == (0x3, 5)
    assert hpack.HUFFMAN_CODES[255] == (0x3FFFFEE, 26)
    assert hpack.HUFFMAN_CODES[256] == (0x3FFFFFFF, 30)
    # A complete prefix code: the Kraft sum is exactly one.
    assert sum(2 ** (30 - n) for _, n in hpack.HUFFMAN_CODES) == 2**30
    for sym in range(256):
        assert hpack.huffman_decode(hpack.huffman_encode(bytes([sym]))) == bytes([sym])
    data = os.urandom(4096) + bytes(range(256))
    assert hpack.huffman_decode(hpack.huffman_encode(data)) == data
    # The RFC's own strings, both ways.
    assert hpack.huffman_encode(b"www.example.com") == _h("f1e3 c2e5 f23a 6ba0 ab90 f4ff")
    assert hpack.huffman_encode(b"no-cache") == _h("a8eb 1064 9cbf")


@pytest.mark.parametrize(
    "data, why",
    [
        ("ffff ffff", "EOS inside the string"),
        ("00", "padding of zero bits"),
        ("f1e3 c2e5 f23a 6ba0 ab90 f4ff ff", "padding of 8 bits or more"),
    ],
)
def test_huffman_refusals(data, why):
    with pytest.raises(HpackError):
        hpack.huffman_decode(_h(data))


@pytest.mark.parametrize(
    "block",
    [
        "80",  # index 0 names nothing
        "ff00",  # an index past both tables
        "007f",  # a string longer than the block
        "0000ff",  # an integer running off the end
        "0000ffffffffffff7f",  # an integer wider than any length
        "7f00 00",  # a name index past the table
        "3fe2 1f",  # a size update to 4097, over the 4096 advertised
        "8220",  # a size update after a field
    ],
)
def test_decoder_refusals(block):
    with pytest.raises(HpackError):
        Decoder().decode(_h(block))


def test_size_updates_evict_and_restore():
    decoder = Decoder()
    decoder.decode(_h("4003 6161 6103 6262 62 4003 6363 6303 6464 64"))  # aaa: bbb, ccc: ddd
    assert decoder.size == 76
    # Shrink to one entry (the newest survives at index 62), then to 0, then back to 4096.
    assert decoder.decode(_h("3f07 be")) == [(b"ccc", b"ddd")]
    assert list(decoder.table) == [(b"ccc", b"ddd")]
    with pytest.raises(HpackError):
        decoder.decode(_h("bf"))
    assert decoder.decode(_h("20 3fe1 1f 4003 6161 6103 6262 62")) == [(b"aaa", b"bbb")]
    assert decoder.size == 38


def test_decoded_list_is_bounded():
    block = b"\x40\x01k\x7f\x01" + b"v" * 128 + b"\xbe" * 64
    with pytest.raises(HpackError, match="header list exceeds"):
        Decoder(max_header_list_size=1024).decode(block)


@pytest.mark.parametrize("huffman", [False, True])
def test_encoder_literals_decode_and_never_index_credentials(huffman):
    headers = [
        (b":method", b"POST"),
        (b":path", b"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"),
        (b"content-type", b"application/grpc"),
        (b"authorization", b"Bearer secret"),
        (b"x-custom", b"\x00\xff value"),
    ]
    block = Encoder(huffman).encode(headers)
    decoder = Decoder()
    assert decoder.decode(block) == headers
    assert decoder.size == 0  # nothing entered the dynamic table
    assert Encoder().encode([(b"authorization", b"v")])[0] == 0x10 | 15  # never indexed, 23
    assert Encoder().encode([(b"x", b"v")]) == b"\x00\x01x\x01v"  # literal name, no index
