"""Per-family rules: histogram buckets, quantiles, counter and info values, units, exemplars."""

import pytest

from tests.exposition.parse.scenarios import assert_parse_error

ERRORS = [
    # (input, format, line, message prefix)
    (
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
        "text",
        2,
        'histogram h has no le="+Inf" bucket',
    ),
    (
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "text",
        3,
        "bucket counts of h are not cumulative",
    ),
    (
        '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
        "text",
        4,
        "h_count = 1 differs from the +Inf bucket 2",
    ),
    (
        '# TYPE s summary\ns{quantile="0.9"} 1\ns{quantile="0.1"} 1\n',
        "text",
        3,
        "quantiles of s are not in increasing order",
    ),
    ('# TYPE s summary\ns{quantile="2"} 1\n', "text", 2, "invalid quantile '2'"),
    # OpenMetrics
    ("# TYPE c counter\nc_total -1\n# EOF\n", "openmetrics", 2, "counter 'c_total' is negative"),
    (
        "# TYPE x gauge\n# UNIT x seconds\nx 1\n# EOF\n",
        "openmetrics",
        2,
        "unit 'seconds' is not a suffix",
    ),
    (
        "# TYPE i info\ni_info 2\n# EOF\n",
        "openmetrics",
        2,
        "info sample 'i_info' must have the value 1",
    ),
    ("# TYPE x gauge\nx 1 # {} 1\n# EOF\n", "openmetrics", 2, "'x' cannot carry an exemplar"),
    (
        '# TYPE h histogram\nh_bucket{le="+Inf"} 1.5\n# EOF\n',
        "openmetrics",
        2,
        "bucket 'h_bucket' must be an integer",
    ),
]


@pytest.mark.parametrize("text, fmt, line, prefix", ERRORS)
def test_family_rules_error_scenarios(text, fmt, line, prefix):
    assert_parse_error(text, fmt, line, prefix)
