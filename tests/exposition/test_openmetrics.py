"""OpenMetrics 1.0 encoder: number spelling, naming, metadata, exact text."""

import math

import pytest

from dyn_metrics.exposition import openmetrics
from dyn_metrics.exposition.check import check
from dyn_metrics.model import Exemplar, Family, Sample


def S(name, value, labels=(), **kw):
    return Sample(name, tuple(labels), value, **kw)


# -- numbers ------------------------------------------------------------------

FORMAT_VALUE = [
    # ints print their digits, however large
    (0, "0"),
    (42, "42"),
    (-7, "-7"),
    (2**70, "1180591620717411303424"),
    # floats always show a point or an exponent
    (0.0, "0.0"),
    (-0.0, "-0.0"),
    (1.0, "1.0"),
    (1.5, "1.5"),
    (0.1, "0.1"),
    (1e-07, "1e-07"),
    (1e21, "1e+21"),
    (123456789.0, "123456789.0"),
    (1.7e9, "1700000000.0"),
    # non-finite
    (math.nan, "NaN"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
]


@pytest.mark.parametrize("value, expected", FORMAT_VALUE)
def test_openmetrics_format_value_table(value, expected):
    assert openmetrics.format_value(value) == expected


# The spec's canonical-number examples (section "Considerations: Canonical
# Numbers") plus Go %g's switch points.
FORMAT_CANONICAL = [
    (0, "0.0"),
    (0.001, "0.001"),
    (0.002, "0.002"),
    (0.01, "0.01"),
    (0.1, "0.1"),
    (0.9, "0.9"),
    (0.95, "0.95"),
    (0.99, "0.99"),
    (0.999, "0.999"),
    (1, "1.0"),
    (1.7, "1.7"),
    (10, "10.0"),
    (1e-10, "1e-10"),
    (1e-09, "1e-09"),
    (1e-05, "1e-05"),
    (0.0001, "0.0001"),
    (100000, "100000.0"),
    (1e6, "1e+06"),
    (1e10, "1e+10"),
    (1e23, "1e+23"),
    (1.1e23, "1.1e+23"),
    (1234567, "1.234567e+06"),
    (123456, "123456.0"),
    (0.005, "0.005"),
    (2.5, "2.5"),
    (-0.0, "-0.0"),
    (-1.5, "-1.5"),
    (5e-324, "5e-324"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
]


@pytest.mark.parametrize("value, expected", FORMAT_CANONICAL)
def test_openmetrics_format_canonical_table(value, expected):
    assert openmetrics.format_canonical(value) == expected


ESCAPE_HELP = [
    ("plain", "plain"),
    ('say "hi"', 'say \\"hi\\"'),
    ("C:\\dir", "C:\\\\dir"),
    ("two\nlines", "two\\nlines"),
    ('\\"\n', '\\\\\\"\\n'),
]


@pytest.mark.parametrize("text, expected", ESCAPE_HELP)
def test_openmetrics_escape_help_table(text, expected):
    assert openmetrics.escape_help(text) == expected


def test_openmetrics_content_type_is_openmetrics_1_0():
    assert openmetrics.CONTENT_TYPE == "application/openmetrics-text; version=1.0.0; charset=utf-8"


# -- whole expositions -----------------------------------------------------------


def test_openmetrics_counter_with_total_loses_it_on_the_family():
    fam = Family("requests_total", "counter", "Total requests", (S("requests_total", 5),))
    assert openmetrics.encode_to_string([fam]) == (
        "# TYPE requests counter\n# HELP requests Total requests\nrequests_total 5\n# EOF\n"
    )


def test_openmetrics_dynamo_counter_without_total_gains_it_on_the_sample():
    fam = Family(
        "dynamo_component_testcounter",
        "counter",
        "A test counter",
        (
            S(
                "dynamo_component_testcounter",
                123.456789,
                [
                    ("dynamo_component", "comp345"),
                    ("dynamo_endpoint", "ep345"),
                    ("dynamo_namespace", "ns345"),
                ],
            ),
        ),
    )
    assert openmetrics.encode_to_string([fam]) == (
        "# TYPE dynamo_component_testcounter counter\n"
        "# HELP dynamo_component_testcounter A test counter\n"
        'dynamo_component_testcounter_total{dynamo_component="comp345",dynamo_endpoint="ep345",'
        'dynamo_namespace="ns345"} 123.456789\n'
        "# EOF\n"
    )


def test_openmetrics_created_samples_are_written_as_given():
    fam = Family(
        "jobs_total",
        "counter",
        "Jobs",
        (
            S("jobs_total", 3, [("q", "a")]),
            S("jobs_created", 1700000000.5, [("q", "a")]),
        ),
    )
    assert openmetrics.encode_to_string([fam]) == (
        "# TYPE jobs counter\n"
        "# HELP jobs Jobs\n"
        'jobs_total{q="a"} 3\n'
        'jobs_created{q="a"} 1700000000.5\n'
        "# EOF\n"
    )


def test_openmetrics_histogram_le_is_canonical_and_metadata_ordered():
    fam = Family(
        "lat_seconds",
        "histogram",
        'Latency "p"',
        (
            S("lat_seconds_bucket", 0, [("route", "a"), ("le", "0.005")]),
            S("lat_seconds_bucket", 1, [("route", "a"), ("le", "1")]),
            S("lat_seconds_bucket", 2, [("route", "a"), ("le", "1000000")]),
            S("lat_seconds_bucket", 3, [("route", "a"), ("le", "+Inf")]),
            S("lat_seconds_sum", 7.5, [("route", "a")]),
            S("lat_seconds_count", 3, [("route", "a")]),
        ),
        unit="seconds",
    )
    assert openmetrics.encode_to_string([fam]) == (
        "# TYPE lat_seconds histogram\n"
        "# UNIT lat_seconds seconds\n"
        '# HELP lat_seconds Latency \\"p\\"\n'
        'lat_seconds_bucket{route="a",le="0.005"} 0\n'
        'lat_seconds_bucket{route="a",le="1.0"} 1\n'
        'lat_seconds_bucket{route="a",le="1e+06"} 2\n'
        'lat_seconds_bucket{route="a",le="+Inf"} 3\n'
        'lat_seconds_sum{route="a"} 7.5\n'
        'lat_seconds_count{route="a"} 3\n'
        "# EOF\n"
    )


def test_openmetrics_summary_quantile_is_canonical():
    fam = Family(
        "rpc_seconds",
        "summary",
        "RPC",
        (
            S("rpc_seconds", 0.1, [("quantile", "0")]),
            S("rpc_seconds", math.nan, [("quantile", "1")]),
            S("rpc_seconds_sum", 2.0),
            S("rpc_seconds_count", 4),
        ),
    )
    assert openmetrics.encode_to_string([fam]) == (
        "# TYPE rpc_seconds summary\n"
        "# HELP rpc_seconds RPC\n"
        'rpc_seconds{quantile="0.0"} 0.1\n'
        'rpc_seconds{quantile="1.0"} NaN\n'
        "rpc_seconds_sum 2.0\n"
        "rpc_seconds_count 4\n"
        "# EOF\n"
    )


def test_openmetrics_untyped_becomes_unknown_and_empty_help_is_omitted():
    fam = Family("raw", "untyped", "", (S("raw", -0.0),))
    assert openmetrics.encode_to_string([fam]) == "# TYPE raw unknown\nraw -0.0\n# EOF\n"


def test_openmetrics_label_values_escape_quote_backslash_newline():
    fam = Family("g", "gauge", "G", (S("g", 1, [("a", 'x"y\\z\n\t')]),))
    assert 'g{a="x\\"y\\\\z\\n\t"} 1\n' in openmetrics.encode_to_string([fam])


def test_openmetrics_timestamps_and_exemplars_in_seconds():
    fams = [
        Family("g", "gauge", "G", (S("g", 1, timestamp=1520879607.789),)),
        Family(
            "c_total",
            "counter",
            "C",
            (
                S(
                    "c_total",
                    17,
                    exemplar=Exemplar((("trace_id", "KOO5S4vxi0o"),), 0.67, 1520879607.789),
                ),
            ),
        ),
        Family(
            "h",
            "histogram",
            "H",
            (
                S("h_bucket", 1, [("le", "+Inf")], exemplar=Exemplar((), 0.054)),
                S("h_sum", 0.054),
                S("h_count", 1),
            ),
        ),
    ]
    text = openmetrics.encode_to_string(fams)
    assert "g 1 1520879607.789\n" in text
    assert 'c_total 17 # {trace_id="KOO5S4vxi0o"} 0.67 1520879607.789\n' in text
    assert 'h_bucket{le="+Inf"} 1 # {} 0.054\n' in text


def test_openmetrics_openmetrics_only_types_pass_through():
    fams = [
        Family("build", "info", "Build", (S("build_info", 1, [("version", "1.2")]),)),
        Family(
            "mode",
            "stateset",
            "Mode",
            (S("mode", 1, [("mode", "a")]), S("mode", 0, [("mode", "b")])),
        ),
        Family(
            "queue_bytes",
            "gaugehistogram",
            "Q",
            (
                S("queue_bytes_bucket", 2, [("le", "1024")]),
                S("queue_bytes_bucket", 3, [("le", "+Inf")]),
                S("queue_bytes_gcount", 3),
                S("queue_bytes_gsum", 100.0),
            ),
            unit="bytes",
        ),
    ]
    text = openmetrics.encode_to_string(fams)
    assert "# TYPE build info\n" in text and 'build_info{version="1.2"} 1\n' in text
    assert "# TYPE mode stateset\n" in text
    assert 'queue_bytes_bucket{le="1024.0"} 2\n' in text
    assert check(text, "openmetrics").errors == []


def test_openmetrics_empty_families_are_skipped_and_eof_always_ends():
    assert openmetrics.encode_to_string([]) == "# EOF\n"
    assert openmetrics.encode_to_string([Family("x", "gauge", "X", ())]) == "# EOF\n"


def test_openmetrics_write_families_streams_through_any_callable():
    parts = []
    openmetrics.write_families(parts.append, [Family("x", "gauge", "X", (S("x", 1),))])
    assert "".join(parts) == openmetrics.encode_to_string([Family("x", "gauge", "X", (S("x", 1),))])
    assert len(parts) > 1


def test_openmetrics_family_name_strips_one_total_from_counters_only():
    assert openmetrics.family_name(Family("a_total", "counter", "", ())) == "a"
    assert openmetrics.family_name(Family("a_total_total", "counter", "", ())) == "a_total"
    assert openmetrics.family_name(Family("a_total", "gauge", "", ())) == "a_total"


def test_openmetrics_output_of_dynamo_families_checks_clean():
    fams = [
        Family(
            "dynamo_component_requests_total",
            "counter",
            "Total requests",
            (
                S("dynamo_component_requests_total", 100, [("dynamo_endpoint", "ep1")]),
                S("dynamo_component_requests_total", 200, [("dynamo_endpoint", "ep2")]),
            ),
        ),
        Family(
            "dynamo_component_uptime_seconds",
            "gauge",
            "Uptime",
            (S("dynamo_component_uptime_seconds", 12.5),),
        ),
    ]
    result = check(openmetrics.encode_to_string(fams), "openmetrics")
    assert result.errors == [] and result.warnings == []


def test_openmetrics_histogram_with_negative_threshold_has_no_sum_or_count():
    import dyn_metrics as dm

    reg = dm.Registry()
    reg.register(dm.Histogram("lat", "L", buckets=[-1, 1])).observe(-2)
    text = reg.openmetrics_expfmt()
    assert "lat_sum" not in text and "lat_count" not in text
    assert 'lat_bucket{le="+Inf"} 1\n' in text
    assert check(text, "openmetrics").errors == []


def test_openmetrics_negative_sum_drops_only_that_series_sum_and_count():
    import dyn_metrics as dm

    reg = dm.Registry()
    vec = reg.register(dm.HistogramVec("lat", "L", ["a"], buckets=[1]))
    vec.with_label_values("neg").observe(-2)
    vec.with_label_values("pos").observe(0.5)
    text = reg.openmetrics_expfmt()
    assert 'lat_sum{a="neg"}' not in text and 'lat_count{a="neg"}' not in text
    assert 'lat_sum{a="pos"} 0.5\n' in text and 'lat_count{a="pos"} 1\n' in text
    assert check(text, "openmetrics").errors == []


@pytest.mark.parametrize(
    "kind, count, total", [("histogram", "_count", "_sum"), ("gaugehistogram", "_gcount", "_gsum")]
)
def test_openmetrics_count_without_sum_drops_that_series_count(kind, count, total):
    """Both or neither: text 0.0.4 allows a histogram without _sum, OpenMetrics does not."""
    inf = ("le", "+Inf")
    fams = [
        Family(
            "x",
            kind,
            "",
            (
                S("x_bucket", 2, [("a", "1"), inf]),
                S("x" + count, 2, [("a", "1")]),
                S("x" + total, 3, [("a", "1")]),
                S("x_bucket", 2, [("a", "2"), inf]),
                S("x" + count, 2, [("a", "2")]),
            ),
        )
    ]
    text = openmetrics.encode_to_string(fams)
    assert f'x{count}{{a="1"}} 2\n' in text and f'x{total}{{a="1"}} 3\n' in text
    assert f'x{count}{{a="2"}}' not in text and 'x_bucket{a="2",le="+Inf"} 2\n' in text
    assert check(text, "openmetrics").errors == []
