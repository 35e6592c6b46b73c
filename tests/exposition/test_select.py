"""``name[]`` selection on rendered text: the family-block filter's tables."""

import pytest

from dyn_metrics.exposition.select import filter_text

EXPOSITION = """\
# HELP a_total A counter
# TYPE a_total counter
a_total 1
# HELP h Latency
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 1
h_sum 0.5
h_count 1
# HELP c A gauge
# TYPE c gauge
c{x="1"} 3
"""

FILTER_TABLE = [
    # (names, what is kept of EXPOSITION)
    (["a_total"], "# HELP a_total A counter\n# TYPE a_total counter\na_total 1\n"),
    (["c"], '# HELP c A gauge\n# TYPE c gauge\nc{x="1"} 3\n'),
    (["h_bucket"], EXPOSITION.split("# HELP c")[0].split("a_total 1\n")[1]),  # a sample name
    (["h_count", "c"], EXPOSITION.split("a_total 1\n")[1]),
    (["nope"], ""),
    ([""], ""),
    (["a_total", "h", "c"], EXPOSITION),
]


@pytest.mark.parametrize("names, expected", FILTER_TABLE)
def test_filter_text_table(names, expected):
    assert filter_text(EXPOSITION, names) == expected


def test_filter_text_openmetrics_keeps_eof_and_unit():
    text = (
        "# TYPE a counter\n# UNIT a seconds\n# HELP a x\na_total 1\na_created 2\n"
        "# TYPE b gauge\nb 1\n# EOF\n"
    )
    assert filter_text(text, ["a"]) == (
        "# TYPE a counter\n# UNIT a seconds\n# HELP a x\na_total 1\na_created 2\n# EOF\n"
    )
    assert filter_text(text, ["b"]) == "# TYPE b gauge\nb 1\n# EOF\n"


def test_filter_text_untyped_samples_form_their_own_blocks():
    text = 'x 1\ny{a="b"} 2\ny{a="c"} 3\n# TYPE z gauge\nz 4\n'
    assert filter_text(text, ["y"]) == 'y{a="b"} 2\ny{a="c"} 3\n'
    assert filter_text(text, ["x", "z"]) == "x 1\n# TYPE z gauge\nz 4\n"


LINE_END_TABLE = [
    # (text, names, expected): lines end at "\n" only, whatever a label value holds
    ('a{x="\u2028"} 1\n# TYPE b gauge\nb 2\n', ["a"], 'a{x="\u2028"} 1\n'),
    ('a{x="\x0c\x1c\x85"} 1\nb 2\n', ["b"], "b 2\n"),
    ("a 1\nb 2", ["b"], "b 2"),  # no final newline: none is invented
    # Prometheus 3's quoted UTF-8 names
    ('{"my.metric",l="v"} 1\nz 2\n', ["my.metric"], '{"my.metric",l="v"} 1\n'),
    ('{"my.metric"} 1\nz 2\n', ["z"], "z 2\n"),
    ("{} 1\nz 2\n", ["z"], "z 2\n"),  # malformed: never raises
]


@pytest.mark.parametrize("text, names, expected", LINE_END_TABLE)
def test_filter_text_line_ends_and_quoted_names(text, names, expected):
    assert filter_text(text, names) == expected
