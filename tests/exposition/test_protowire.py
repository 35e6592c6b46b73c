"""The protobuf wire helpers (exposition/protowire.py) against the protobuf package's own encoder.

The oracle messages are opentelemetry-proto's generated classes (test extra) and, for packed
sint64, a message built here from a descriptor; the library itself never imports either.
"""

import math

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
)

from dyn_metrics.exposition import protowire as pb


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int64_varint_is_protobufs(n):
    assert pb.varint_field(3, n) == AnyValue(int_value=n).SerializeToString()


@given(st.floats(allow_nan=False))
def test_double_field_is_protobufs(v):
    assert pb.double_field(4, v) == AnyValue(double_value=v).SerializeToString()


@given(st.text(), st.text())
def test_strings_and_nested_messages_are_protobufs(k, v):
    # key: a plain proto3 string (left out when empty); string_value: a oneof member (always)
    ours = pb.opt_string(1, k) + pb.bytes_field(2, pb.string_field(1, v))
    assert ours == KeyValue(key=k, value=AnyValue(string_value=v)).SerializeToString()


@given(
    st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=20),
    st.lists(st.floats(allow_nan=False), max_size=20),
    st.integers(min_value=0, max_value=2**64 - 1),
)
def test_packed_repeats_and_fixed64_are_protobufs(counts, bounds, t):
    ours = pb.fixed64_field(3, t) if t else b""
    if counts:
        ours += pb.packed_fixed64(6, counts)
    if bounds:
        ours += pb.packed_doubles(7, bounds)
    theirs = HistogramDataPoint(time_unix_nano=t, bucket_counts=counts, explicit_bounds=bounds)
    assert ours == theirs.SerializeToString()


@pytest.mark.parametrize(
    "helper, value, empty",
    [
        (pb.opt_varint, 0, True),
        (pb.opt_varint, 7, False),
        (pb.opt_string, "", True),
        (pb.opt_string, "x", False),
        (pb.opt_double, 0.0, True),
        (pb.opt_double, -0.0, False),
        (pb.opt_double, math.nan, False),
        (pb.opt_double, 2.5, False),
    ],
)
def test_optional_fields_leave_out_proto3_defaults_only(helper, value, empty):
    assert (helper(1, value) == b"") is empty


def test_zigzag_and_delimited():
    assert [pb.zigzag(n) for n in (0, -1, 1, -2, 2**62)] == [0, 1, 2, 3, 2**63]
    assert pb.delimited(b"abc") == b"\x03abc"


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1)), st.binary(), st.floats())
def test_iter_fields_reads_back_what_was_written(ns, data, d):
    msg = b"".join(pb.varint_field(1, n) for n in ns) + pb.bytes_field(2, data)
    msg += pb.double_field(3, d)
    fields = list(pb.iter_fields(msg))
    assert [v for f, _, v in fields if f == 1] == ns
    assert [v for f, _, v in fields if f == 2] == [data]
    (raw,) = [v for f, _, v in fields if f == 3]
    assert raw == int.from_bytes(pb.double_field(3, d)[1:], "little")


@pytest.mark.parametrize(
    "bad",
    [b"\x08", b"\x08\xff", b"\x12\x05ab", b"\x19\x00\x00", b"\x0b", b"\x08" + b"\xff" * 11],
)
def test_iter_fields_refuses_truncated_or_malformed_input(bad):
    with pytest.raises(ValueError):
        list(pb.iter_fields(bad))


def _packed_sint64_class():
    """A proto3 message with one repeated sint64 field (proto3 packs it)."""
    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="dyn_metrics_test_sint.proto", package="sinttest", syntax="proto3"
    )
    m = proto.message_type.add(name="Deltas")
    m.field.add(name="delta", number=13, type=F.TYPE_SINT64, label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("sinttest.Deltas")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


Deltas = _packed_sint64_class()


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_sint_field_is_protobufs_sint32(n):
    # ExponentialHistogramDataPoint.scale is sint32 field 6; proto3 leaves out 0
    assert (pb.sint_field(6, n) if n else b"") == ExponentialHistogramDataPoint(
        scale=n
    ).SerializeToString()


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=30))
def test_packed_sint64_is_protobufs(values):
    assert pb.packed_sint64(13, values) == Deltas(delta=values).SerializeToString()
    assert list(Deltas.FromString(pb.packed_sint64(13, values)).delta) == values
