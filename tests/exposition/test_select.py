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
