"""The protobuf exposition, read back by the protobuf package from a descriptor built here.

The descriptor carries io.prometheus.client's field numbers (client_model's metrics.proto),
written out independently of our encoder; the delimited stream is split by hand.
"""

import math

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

import dyn_metrics as dm
from dyn_metrics import testing
from dyn_metrics.errors import InvalidValueError
from dyn_metrics.exposition import protobuf
from dyn_metrics.exposition.protobuf import CONTENT_TYPE, encode, encode_family, spans_and_deltas
from dyn_metrics.model import Exemplar, Family, NativeHistogram, Sample

F = descriptor_pb2.FieldDescriptorProto
ONE, MANY = F.LABEL_OPTIONAL, F.LABEL_REPEATED
P = ".io.prometheus.client."
TS = ".google.protobuf.Timestamp"


def _metric_family_class():
    proto = descriptor_pb2.FileDescriptorProto(
        name="dyn_metrics_test_metrics.proto",
        package="io.prometheus.client",
        syntax="proto2",
        dependency=["google/protobuf/timestamp.proto"],
    )

    def message(name, *fields):
        m = proto.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
        return m

    pair = P + "LabelPair"
    message("LabelPair", ("name", 1, F.TYPE_STRING, ONE, ""), ("value", 2, F.TYPE_STRING, ONE, ""))
    message("Gauge", ("value", 1, F.TYPE_DOUBLE, ONE, ""))
    message("Untyped", ("value", 1, F.TYPE_DOUBLE, ONE, ""))
    message(
        "Exemplar",
        ("label", 1, F.TYPE_MESSAGE, MANY, pair),
        ("value", 2, F.TYPE_DOUBLE, ONE, ""),
        ("timestamp", 3, F.TYPE_MESSAGE, ONE, TS),
    )
    message(
        "Counter",
        ("value", 1, F.TYPE_DOUBLE, ONE, ""),
        ("exemplar", 2, F.TYPE_MESSAGE, ONE, P + "Exemplar"),
        ("created_timestamp", 3, F.TYPE_MESSAGE, ONE, TS),
    )
    message(
        "Quantile", ("quantile", 1, F.TYPE_DOUBLE, ONE, ""), ("value", 2, F.TYPE_DOUBLE, ONE, "")
    )
    message(
        "Summary",
        ("sample_count", 1, F.TYPE_UINT64, ONE, ""),
        ("sample_sum", 2, F.TYPE_DOUBLE, ONE, ""),
        ("quantile", 3, F.TYPE_MESSAGE, MANY, P + "Quantile"),
        ("created_timestamp", 4, F.TYPE_MESSAGE, ONE, TS),
    )
    message(
        "Bucket",
        ("cumulative_count", 1, F.TYPE_UINT64, ONE, ""),
        ("upper_bound", 2, F.TYPE_DOUBLE, ONE, ""),
        ("exemplar", 3, F.TYPE_MESSAGE, ONE, P + "Exemplar"),
        ("cumulative_count_float", 4, F.TYPE_DOUBLE, ONE, ""),
    )
    message(
        "BucketSpan", ("offset", 1, F.TYPE_SINT32, ONE, ""), ("length", 2, F.TYPE_UINT32, ONE, "")
    )
    message(
        "Histogram",
        ("sample_count", 1, F.TYPE_UINT64, ONE, ""),
        ("sample_sum", 2, F.TYPE_DOUBLE, ONE, ""),
        ("bucket", 3, F.TYPE_MESSAGE, MANY, P + "Bucket"),
        ("sample_count_float", 4, F.TYPE_DOUBLE, ONE, ""),
        ("schema", 5, F.TYPE_SINT32, ONE, ""),
        ("zero_threshold", 6, F.TYPE_DOUBLE, ONE, ""),
        ("zero_count", 7, F.TYPE_UINT64, ONE, ""),
        ("zero_count_float", 8, F.TYPE_DOUBLE, ONE, ""),
        ("negative_span", 9, F.TYPE_MESSAGE, MANY, P + "BucketSpan"),
        ("negative_delta", 10, F.TYPE_SINT64, MANY, ""),  # proto2: unpacked, yet packed is read
        ("negative_count", 11, F.TYPE_DOUBLE, MANY, ""),
        ("positive_span", 12, F.TYPE_MESSAGE, MANY, P + "BucketSpan"),
        ("positive_delta", 13, F.TYPE_SINT64, MANY, ""),
        ("positive_count", 14, F.TYPE_DOUBLE, MANY, ""),
        ("created_timestamp", 15, F.TYPE_MESSAGE, ONE, TS),
        ("exemplars", 16, F.TYPE_MESSAGE, MANY, P + "Exemplar"),
    )
    message(
        "Metric",
        ("label", 1, F.TYPE_MESSAGE, MANY, pair),
        ("gauge", 2, F.TYPE_MESSAGE, ONE, P + "Gauge"),
        ("counter", 3, F.TYPE_MESSAGE, ONE, P + "Counter"),
        ("summary", 4, F.TYPE_MESSAGE, ONE, P + "Summary"),
        ("untyped", 5, F.TYPE_MESSAGE, ONE, P + "Untyped"),
        ("timestamp_ms", 6, F.TYPE_INT64, ONE, ""),
        ("histogram", 7, F.TYPE_MESSAGE, ONE, P + "Histogram"),
    )
    mf = message(
        "MetricFamily",
        ("name", 1, F.TYPE_STRING, ONE, ""),
        ("help", 2, F.TYPE_STRING, ONE, ""),
        ("type", 3, F.TYPE_ENUM, ONE, P + "MetricType"),
        ("metric", 4, F.TYPE_MESSAGE, MANY, P + "Metric"),
        ("unit", 5, F.TYPE_STRING, ONE, ""),
    )
    del mf
    kinds = proto.enum_type.add(name="MetricType")
    for number, word in enumerate(
        "COUNTER GAUGE SUMMARY UNTYPED HISTOGRAM GAUGE_HISTOGRAM".split()
    ):
        kinds.value.add(name=word, number=number)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("io.prometheus.client.MetricFamily")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


MetricFamily = _metric_family_class()
COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM = range(6)


def _uvarint(data, pos):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def decode(body):
    """The MetricFamily messages of a delimited stream."""
    out, pos = [], 0
    while pos < len(body):
        size, pos = _uvarint(body, pos)
        assert pos + size <= len(body), "truncated message"
        out.append(MetricFamily.FromString(body[pos : pos + size]))
        pos += size
    return out


def one(family):
    (mf,) = decode(encode([family]))
    assert (
        mf.SerializeToString() == MetricFamily.FromString(encode_family(family)).SerializeToString()
    )
    return mf


def labels(metric):
    return [(p.name, p.value) for p in metric.label]


def ts_seconds(ts):
    return ts.seconds + ts.nanos / 1e9


def S(name, value, labels=(), **kw):
    return Sample(name, tuple(labels), value, **kw)


def native_buckets(spans, deltas):
    """Absolute ``(index, count)`` pairs (zeros dropped) from spans and deltas, checking them."""
    assert sum(s.length for s in spans) == len(deltas)
    assert all(s.offset >= 0 for s in spans[1:])
    out, index, count, i = [], 0, 0, 0
    for span in spans:
        index += span.offset  # the first: absolute; later ones: indices skipped
        for _ in range(span.length):
            count += deltas[i]
            i += 1
            assert count >= 0
            if count:
                out.append((index, count))
            index += 1
    return out


# -- the golden body -----------------------------------------------------------------------------

GOLDEN = bytes.fromhex(
    "1a0a07615f746f74616c12001800220b1a0909000000000000f03f"
    "2e0a0168120018042225"
    "3a230802110000000000001040280031000000000000f03738006204080010036a03020102"
)


def test_golden_body_verified_on_prometheus_2_42():
    families = [
        Family("a_total", "counter", "", (S("a_total", 1.0),)),
        Family(
            "h",
            "histogram",
            "",
            (
                S("h_bucket", 2, [("le", "+Inf")]),
                S("h_sum", 4.0),
                S("h_count", 2, native=NativeHistogram(0, 2**-128, 0, ((0, 1), (2, 1)))),
            ),
        ),
    ]
    body = encode(families)
    assert len(body) == 74
    assert body == GOLDEN
    h = decode(body)[1].metric[0].histogram
    assert native_buckets(h.positive_span, h.positive_delta) == [(0, 1), (2, 1)]
    assert CONTENT_TYPE == (
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited"
    )


# -- spans and deltas ----------------------------------------------------------------------------

SPANS = [
    # (buckets, spans, deltas)
    ([(-2, 3), (-1, 5), (2, 1), (4, 3), (5, 2)], [(-2, 8)], [3, 2, -5, 0, 1, -1, 3, -1]),
    ([], [], []),
    ([(7, 4)], [(7, 1)], [4]),
    ([(0, 1), (3, 1)], [(0, 4)], [1, -1, 0, 1]),  # a gap of 2: filled
    ([(0, 1), (4, 1)], [(0, 1), (3, 1)], [1, 0]),  # a gap of 3: a new span
    ([(-10, 2), (-9, 2), (100, 5)], [(-10, 2), (108, 1)], [2, 0, 3]),
]


@pytest.mark.parametrize("buckets, spans, deltas", SPANS)
def test_spans_and_deltas_table(buckets, spans, deltas):
    assert spans_and_deltas(buckets) == (spans, deltas)


# -- every type ----------------------------------------------------------------------------------


def test_counter_value_exemplar_created_and_timestamp():
    ex = Exemplar((("trace_id", "abc"),), 2.0, 1700000000.25)
    fam = Family(
        "req_total",
        "counter",
        "Requests.",
        (
            S("req_total", 3.0, [("code", "200")], exemplar=ex, timestamp=1700000001.5),
            S("req_created", 1699999999.125, [("code", "200")]),
            S("req_total", 1.0, [("code", "500")]),
        ),
    )
    mf = one(fam)
    assert (mf.name, mf.help, mf.type) == ("req_total", "Requests.", COUNTER)
    assert mf.HasField("type") and mf.HasField("help")
    m0, m1 = mf.metric
    assert labels(m0) == [("code", "200")] and labels(m1) == [("code", "500")]
    assert m0.counter.value == 3.0 and m1.counter.value == 1.0
    assert m0.timestamp_ms == 1700000001500 and not m1.HasField("timestamp_ms")
    assert ts_seconds(m0.counter.created_timestamp) == 1699999999.125
    assert not m1.counter.HasField("created_timestamp")
    e = m0.counter.exemplar
    assert (labels(e), e.value) == ([("trace_id", "abc")], 2.0)
    assert (e.timestamp.seconds, e.timestamp.nanos) == (1700000000, 250000000)
    assert not m1.counter.HasField("exemplar")


def test_counter_without_total_keeps_its_name():
    mf = one(
        Family("dynamo_component_requests", "counter", "h", (S("dynamo_component_requests", 4),))
    )
    assert mf.name == "dynamo_component_requests" and mf.metric[0].counter.value == 4.0


def test_gauge_untyped_unknown_and_units():
    for type_word, code in (("gauge", GAUGE), ("untyped", UNTYPED), ("unknown", UNTYPED)):
        fam = Family("temp_celsius", type_word, "T", (S("temp_celsius", -1.5, [("room", "ä€😀")]),))
        mf = one(fam._replace(unit="celsius"))
        assert (mf.type, mf.unit) == (code, "celsius")
        (m,) = mf.metric
        assert labels(m) == [("room", "ä€😀")]
        value = m.gauge.value if code == GAUGE else m.untyped.value
        assert value == -1.5 and m.HasField("gauge") == (code == GAUGE)
    assert not one(Family("g", "gauge", "", (S("g", 1),))).HasField("unit")


@pytest.mark.parametrize("value", [math.inf, -math.inf, -0.0, 2**70, 1e-300])
def test_gauge_values_are_doubles(value):
    (m,) = one(Family("g", "gauge", "", (S("g", value),))).metric
    assert m.gauge.value == float(value)
    assert math.copysign(1.0, m.gauge.value) == math.copysign(1.0, value)


def test_nan_gauge():
    (m,) = one(Family("g", "gauge", "", (S("g", math.nan),))).metric
    assert math.isnan(m.gauge.value)


@pytest.mark.parametrize(
    "ts, expected",
    [
        (None, None),
        (0.0, None),
        (0.0001, None),
        (1.0, 1000),
        (-1.5, -1500),
        (1700000000.123, 1700000000123),
    ],
)
def test_timestamps_in_milliseconds_zero_means_none(ts, expected):
    (m,) = one(Family("g", "gauge", "", (S("g", 1, timestamp=ts),))).metric
    assert (m.timestamp_ms if m.HasField("timestamp_ms") else None) == expected


def test_info_is_a_gauge_named_like_its_samples():
    for family_name in ("build_info", "build"):  # live metrics' name, the OpenMetrics parser's
        mf = one(Family(family_name, "info", "B", (S("build_info", 1, [("version", "1.2")]),)))
        assert (mf.name, mf.type) == ("build_info", GAUGE)
        assert labels(mf.metric[0]) == [("version", "1.2")] and mf.metric[0].gauge.value == 1.0


def test_stateset_is_a_gauge_with_one_metric_per_state():
    fam = Family("st", "stateset", "", (S("st", 1, [("st", "a")]), S("st", 0, [("st", "b")])))
    mf = one(fam)
    assert mf.type == GAUGE
    assert [(labels(m), m.gauge.value) for m in mf.metric] == [
        ([("st", "a")], 1.0),
        ([("st", "b")], 0.0),
    ]


def test_summary_quantiles_sum_count_created():
    fam = Family(
        "rpc_seconds",
        "summary",
        "",
        (
            S("rpc_seconds", 0.1, [("m", "get"), ("quantile", "0.5")]),
            S("rpc_seconds", 0.9, [("m", "get"), ("quantile", "0.99")]),
            S("rpc_seconds_sum", 12.5, [("m", "get")]),
            S("rpc_seconds_count", 40, [("m", "get")]),
            S("rpc_seconds_created", 1600000000.5, [("m", "get")]),
            S("rpc_seconds_sum", 0.0, [("m", "put")]),
            S("rpc_seconds_count", 0, [("m", "put")]),
        ),
    )
    mf = one(fam)
    assert mf.type == SUMMARY
    get, put = mf.metric
    assert labels(get) == [("m", "get")] and labels(put) == [("m", "put")]
    s = get.summary
    assert [(q.quantile, q.value) for q in s.quantile] == [(0.5, 0.1), (0.99, 0.9)]
    assert (s.sample_count, s.sample_sum) == (40, 12.5)
    assert ts_seconds(s.created_timestamp) == 1600000000.5
    assert put.summary.HasField("sample_count") and not put.summary.quantile


def _classic(name="lat", type_word="histogram", inf_exemplar=None):
    ex = Exemplar((("trace_id", "t1"),), 0.3, 1700000000.0)
    count, total = ("_gcount", "_gsum") if type_word == "gaugehistogram" else ("_count", "_sum")
    lab = [("path", "/")]
    return Family(
        name,
        type_word,
        "Latency.",
        (
            S(name + "_bucket", 1, lab + [("le", "0.1")]),
            S(name + "_bucket", 3, lab + [("le", "0.5")], exemplar=ex),
            S(name + "_bucket", 4, lab + [("le", "+Inf")], exemplar=inf_exemplar),
            S(name + count, 4, lab),
            S(name + total, 2.5, lab),
            *((S(name + "_created", 1500000000.0, lab),) if type_word == "histogram" else ()),
        ),
    )


def test_classic_histogram_buckets_exemplars_created():
    mf = one(_classic())
    assert mf.type == HISTOGRAM
    (m,) = mf.metric
    assert labels(m) == [("path", "/")]
    h = m.histogram
    assert (h.sample_count, h.sample_sum) == (4, 2.5)
    # the +Inf bucket is left out (client_golang's rule; Prometheus rebuilds it from the count)
    assert [(b.cumulative_count, b.upper_bound) for b in h.bucket] == [(1, 0.1), (3, 0.5)]
    assert not h.bucket[0].HasField("exemplar")
    e = h.bucket[1].exemplar
    assert (labels(e), e.value, ts_seconds(e.timestamp)) == ([("trace_id", "t1")], 0.3, 1.7e9)
    assert ts_seconds(h.created_timestamp) == 1500000000.0
    # classic histograms write no native field (2.42 would take them for native ones)
    assert not h.HasField("zero_threshold") and not h.positive_span and not h.exemplars
    assert not h.HasField("schema")


def test_inf_bucket_with_an_exemplar_is_written():
    ex = Exemplar((), 99.0)
    h = one(_classic(inf_exemplar=ex)).metric[0].histogram
    assert [(b.cumulative_count, b.upper_bound) for b in h.bucket][-1] == (4, math.inf)
    assert h.bucket[-1].exemplar.value == 99.0 and not h.bucket[-1].exemplar.HasField("timestamp")


def test_gauge_histogram():
    mf = one(_classic("q", "gaugehistogram"))
    assert mf.type == GAUGE_HISTOGRAM
    h = mf.metric[0].histogram
    assert (h.sample_count, h.sample_sum, len(h.bucket)) == (4, 2.5, 2)


def test_families_without_metrics_are_skipped():
    assert encode([Family("g", "gauge", "", ()), Family("c_total", "counter", "", ())]) == b""
    body = encode([Family("g", "gauge", "", ()), Family("x", "gauge", "", (S("x", 1),))])
    assert [mf.name for mf in decode(body)] == ["x"]


def test_a_count_that_is_not_an_integer_is_refused():
    fam = Family("h", "histogram", "", (S("h_bucket", 1.5, [("le", "+Inf")]), S("h_count", 1.5)))
    with pytest.raises(InvalidValueError, match="1.5"):
        encode([fam])


# -- native histograms ---------------------------------------------------------------------------


def _native(nh, count, total=1.0, classic=(), exemplars=(None, None)):
    samples = [S("n_bucket", c, [("a", "x"), ("le", le)]) for le, c in classic]
    samples.append(S("n_bucket", count, [("a", "x"), ("le", "+Inf")], exemplar=exemplars[0]))
    samples.append(S("n_sum", total, [("a", "x")]))
    samples.append(S("n_count", count, [("a", "x")], native=nh, exemplar=exemplars[1]))
    return Family("n", "histogram", "", tuple(samples))


side = st.dictionaries(
    st.integers(min_value=-300, max_value=300),
    st.integers(min_value=1, max_value=2**40),
    max_size=40,
).map(lambda d: tuple(sorted(d.items())))


@settings(max_examples=150, deadline=None)
@given(side, side, st.integers(min_value=0, max_value=5), st.integers(min_value=-4, max_value=8))
def test_native_buckets_round_trip(positive, negative, zero_count, schema):
    total = sum(c for _, c in positive) + sum(c for _, c in negative) + zero_count
    nh = NativeHistogram(schema, 2**-128, zero_count, positive, negative)
    h = one(_native(nh, total)).metric[0].histogram
    assert (h.schema, h.zero_threshold, h.zero_count, h.sample_count) == (
        schema,
        2**-128,
        zero_count,
        total,
    )
    assert tuple(native_buckets(h.positive_span, h.positive_delta)) == positive
    assert tuple(native_buckets(h.negative_span, h.negative_delta)) == negative
    assert not h.bucket  # native-only: no classic bucket, not even +Inf
    assert not h.positive_count and not h.HasField("sample_count_float")  # integer histograms


def test_native_deltas_are_packed():
    body = encode_family(_native(NativeHistogram(0, 2**-128, 0, ((0, 1), (1, 2))), 3))
    assert b"\x6a\x02\x02\x02" in body  # field 13, wire type 2, two zigzag varints


def test_empty_native_histogram_with_a_threshold_has_no_span():
    h = one(_native(NativeHistogram(3, 2**-128, 0), 0)).metric[0].histogram
    assert h.zero_threshold == 2**-128 and not h.positive_span and not h.positive_delta
    assert h.HasField("schema") and h.HasField("zero_count") and h.HasField("sample_count")


def test_empty_native_histogram_without_a_threshold_gets_one_empty_bucket():
    # Prometheus 2.42 needs a delta to see a native histogram (a family is judged by
    # its first metric), so the empty one carries a zero bucket, not a no-op span.
    h = one(_native(NativeHistogram(3, 0.0, 0), 0)).metric[0].histogram
    assert [(s.offset, s.length) for s in h.positive_span] == [(0, 1)]
    assert list(h.positive_delta) == [0] and not h.negative_span
    assert native_buckets(h.positive_span, h.positive_delta) == []
    # with anything counted there is no extra span
    h = one(_native(NativeHistogram(3, 0.0, 2), 2)).metric[0].histogram
    assert not h.positive_span


def test_native_with_classic_buckets_carries_both():
    nh = NativeHistogram(1, 2**-128, 1, ((1, 2),), ((-3, 1),))
    h = one(_native(nh, 4, classic=[("0", 1), ("1", 1), ("10", 4)])).metric[0].histogram
    assert [(b.cumulative_count, b.upper_bound) for b in h.bucket] == [
        (1, 0.0),
        (1, 1.0),
        (4, 10.0),
    ]
    assert native_buckets(h.positive_span, h.positive_delta) == [(1, 2)]
    assert native_buckets(h.negative_span, h.negative_delta) == [(-3, 1)]


def test_native_exemplars_with_a_timestamp_also_go_to_field_16():
    stamped = Exemplar((("trace_id", "a"),), 1.5, 1700000000.5)
    bare = Exemplar((("trace_id", "b"),), 2.5)
    nh = NativeHistogram(0, 2**-128, 0, ((1, 2),))
    h = one(_native(nh, 2, classic=[("1", 0)], exemplars=(stamped, bare))).metric[0].histogram
    assert [(labels(e), e.value, ts_seconds(e.timestamp)) for e in h.exemplars] == [
        ([("trace_id", "a")], 1.5, 1700000000.5)
    ]
    assert h.bucket[-1].upper_bound == math.inf and h.bucket[-1].exemplar.value == 1.5
    # native-only: no classic bucket, the exemplar is in field 16 only
    h = one(_native(nh, 2, exemplars=(stamped, None))).metric[0].histogram
    assert not h.bucket and [e.value for e in h.exemplars] == [1.5]


def test_schema_above_8_is_reduced_by_merging_buckets():
    # at schema 10, indices 1..4 merge into schema-8 bucket 1 and 5 into 2; -4..-1 into -1 and 0
    nh = NativeHistogram(10, 2**-128, 0, ((1, 1), (4, 2), (5, 3)), ((-4, 1), (-3, 1), (0, 2)))
    h = one(_native(nh, 10)).metric[0].histogram
    assert h.schema == 8
    assert native_buckets(h.positive_span, h.positive_delta) == [(1, 3), (2, 3)]
    assert native_buckets(h.negative_span, h.negative_delta) == [(-1, 1), (0, 3)]


@pytest.mark.parametrize("schema", [-5, 2.0, None])
def test_schema_below_minus_4_is_refused(schema):
    with pytest.raises(InvalidValueError, match=repr(schema)):
        encode([_native(NativeHistogram(schema, 2**-128, 0), 0)])


# -- live metrics through the encoder ------------------------------------------------------------


def test_a_registry_scrape_decodes_to_its_text_values():
    reg = dm.Registry()
    c = dm.CounterVec("jobs_total", "Jobs.", ["kind"])
    g = dm.Gauge("depth", "Depth.")
    h = dm.Histogram("lat_seconds", "Latency.", buckets=[0.1, 1.0])
    for m in (c, g, h):
        reg.register(m)
    c.labels("a").inc(2)
    c.labels("é").inc()
    g.set(7)
    h.observe(0.5)
    h.observe(3)
    decoded = {mf.name: mf for mf in decode(encode(reg.collect()))}
    assert decoded["jobs_total"].type == COUNTER
    assert [(labels(m), m.counter.value) for m in decoded["jobs_total"].metric] == [
        ([("kind", "a")], 2.0),
        ([("kind", "é")], 1.0),
    ]
    assert decoded["depth"].metric[0].gauge.value == 7.0
    hist = decoded["lat_seconds"].metric[0].histogram
    assert (hist.sample_count, hist.sample_sum) == (2, 3.5)
    assert [(b.cumulative_count, b.upper_bound) for b in hist.bucket] == [(0, 0.1), (1, 1.0)]


def test_label_pairs_are_encoded_once_per_call_and_reused():
    fam = Family(
        "g", "gauge", "", tuple(S("g", i, [("job", "x"), ("i", str(i))]) for i in range(300))
    )
    mfs = decode(encode([fam, fam._replace(name="h")]))
    assert [labels(m) for m in mfs[1].metric] == [[("job", "x"), ("i", str(i))] for i in range(300)]
    assert protobuf.encode_family(fam) == encode([fam])[2:]  # 2-byte length prefix


def test_le_and_quantile_need_not_be_the_last_label():
    hist = Family(
        "h",
        "histogram",
        "",
        (
            S("h_bucket", 1, [("le", "1"), ("a", "x")]),
            S("h_bucket", 2, [("le", "+Inf"), ("a", "x")]),
            S("h_count", 2, [("a", "x")]),
        ),
    )
    (m,) = one(hist).metric
    assert labels(m) == [("a", "x")] and m.histogram.sample_count == 2
    assert [(b.cumulative_count, b.upper_bound) for b in m.histogram.bucket] == [(1, 1.0)]
    summ = Family("s", "summary", "", (S("s", 3.0, [("quantile", "0.9"), ("a", "x")]),))
    (m,) = one(summ).metric
    assert labels(m) == [("a", "x")] and m.summary.quantile[0].quantile == 0.9


label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(label_values, label_values, st.floats(allow_nan=False)),
        max_size=20,
        unique_by=lambda t: t[:2],
    )
)
def test_gauge_series_round_trip(series):
    fam = Family("g", "gauge", "", tuple(S("g", v, [("a", a), ("b", b)]) for a, b, v in series))
    body = encode([fam])
    if not series:
        assert body == b""
        return
    (mf,) = decode(body)
    assert [(labels(m), m.gauge.value) for m in mf.metric] == [
        ([("a", a), ("b", b)], v) for a, b, v in series
    ]


def test_int_metrics_past_the_double_range_are_infinities_not_a_failed_scrape():
    reg = dm.Registry()
    reg.register(dm.IntCounter("big_total", "b")).inc_by(10**400)
    reg.register(dm.IntGauge("neg", "n")).set(-(10**400))
    reg.register(dm.Gauge("fine", "f")).set(2.5)
    assert "big_total 1" + "0" * 400 in reg.prometheus_expfmt()
    families = {f.name: f for f in decode(reg.protobuf_expfmt())}
    assert families["big_total"].metric[0].counter.value == math.inf
    assert families["neg"].metric[0].gauge.value == -math.inf
    assert families["fine"].metric[0].gauge.value == 2.5


@settings(max_examples=60, deadline=None)
@given(testing.registries())
def test_any_registry_scrape_decodes_to_its_model(reg):
    """What protobuf_expfmt serves equals collect(): names, types, labels, values, buckets."""
    families = {f.name: f for f in reg.collect() if f.samples}
    decoded = {mf.name: mf for mf in decode(reg.protobuf_expfmt())}
    assert set(decoded) == set(families)
    for name, family in families.items():
        mf = decoded[name]
        if family.type != "histogram":
            values = sorted(
                (tuple(labels(m)), repr(m.counter.value if mf.type == 0 else m.gauge.value))
                for m in mf.metric
            )
            assert values == sorted((s.labels, repr(float(s.value))) for s in family.samples)
            continue
        counts = {s.labels: s for s in family.samples if s.name == name + "_count"}
        assert len(mf.metric) == len(counts)
        for m in mf.metric:
            want = counts[tuple(labels(m))]
            h = m.histogram
            assert h.sample_count == want.value
            finite = [
                s.value
                for s in family.samples
                if s.name == name + "_bucket" and s.labels[:-1] == want.labels
            ][:-1]
            assert [b.cumulative_count for b in h.bucket] == finite
            nh = want.native
            if nh is None:
                assert not h.positive_span and h.zero_threshold == 0
                continue
            assert (h.schema, h.zero_threshold, h.zero_count) == (
                nh.schema,
                nh.zero_threshold,
                nh.zero_count,
            )
            assert native_buckets(h.positive_span, h.positive_delta) == list(nh.positive)
            assert native_buckets(h.negative_span, h.negative_delta) == list(nh.negative)


def test_served_protobuf_honours_gzip_and_name_selection():
    import gzip
    import urllib.request

    reg = dm.Registry()
    reg.register(dm.Histogram("lat_seconds", "Latency", native=True)).observe(0.5)
    reg.register(dm.Counter("jobs_total", "Jobs")).inc()
    accept = (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
        "encoding=delimited,text/plain;version=0.0.4;q=0.5"
    )
    with dm.start_http_server(reg, port=0, host="127.0.0.1") as server:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/metrics?name[]=lat_seconds",
            headers={"Accept": accept, "Accept-Encoding": "gzip"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == CONTENT_TYPE
            assert response.headers["Content-Encoding"] == "gzip"
            body = gzip.decompress(response.read())
    (family,) = decode(body)
    assert family.name == "lat_seconds"
    assert family.metric[0].histogram.sample_count == 1
    assert body == reg.protobuf_expfmt(names=["lat_seconds"])
