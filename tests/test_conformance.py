"""Conformance with the official OpenMetrics parser test suite.

``tests/data/openmetrics-suite/parsers`` holds the cases of
prometheus/OpenMetrics' ``tests/testdata/parsers`` (data only; see the
README and LICENSE there): an exposition and a ``test.json`` whose
``shouldParse`` is the verdict. Where the ABNF and the suite disagree the
suite is the judge, so both ``dm.check`` and ``dm.parse`` must agree with
every case.
"""

import json
import os

import pytest

import dyn_metrics as dm

SUITE = os.path.join(os.path.dirname(__file__), "data", "openmetrics-suite", "parsers")
CASES = sorted(os.listdir(SUITE))


def _case(name):
    with open(os.path.join(SUITE, name, "test.json"), encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["type"] == "text"
    with open(os.path.join(SUITE, name, meta["file"]), "rb") as f:
        return f.read(), meta["shouldParse"]


def test_conformance_suite_is_complete():
    assert len(CASES) == 211
    verdicts = [_case(name)[1] for name in CASES]
    assert verdicts.count(True) == 44 and verdicts.count(False) == 167


@pytest.mark.parametrize("name", CASES)
def test_conformance_openmetrics_suite_case(name):
    data, should_parse = _case(name)
    result = dm.check(data, "openmetrics")
    assert result.ok == should_parse, result.errors
    try:
        dm.parse(data.decode("utf-8"), "openmetrics")
    except (dm.ParseError, UnicodeDecodeError):
        parsed = False
    else:
        parsed = True
    assert parsed == should_parse


# The cases where the suite overruled the checker's earlier reading of the ABNF.
@pytest.mark.parametrize(
    "name, code",
    [
        ("bad_histograms_12", "le-canonical"),  # le="+INF": +Inf must be spelled +Inf
        ("bad_histograms_7", "negative-sum"),  # _gsum -1 without a negative bucket
    ],
)
def test_conformance_rejections_name_their_rule(name, code):
    data, _ = _case(name)
    assert [p.code for p in dm.check(data, "openmetrics").errors] == [code]


@pytest.mark.parametrize(
    "name, warning",
    [
        ("duplicate_timestamps_1", None),  # equal timestamps: a later sample of the same time
        ("help_escaping", "help-quote"),  # a bare " in HELP: accepted, a lint at most
        ("histogram_noncanonical", "le-canonical"),  # finite non-canonical le: valid, lint
    ],
)
def test_conformance_acceptances_lint_at_most(name, warning):
    data, _ = _case(name)
    result = dm.check(data, "openmetrics", enable=("all",))
    assert result.ok
    if warning is not None:
        assert warning in {p.code for p in result.warnings}
