"""dyn_metrics.testing: the strategies reach the awkward cases; the assertion lists problems."""

import math
import subprocess
import sys
import textwrap

import pytest
from hypothesis import Phase, find, given, settings

import dyn_metrics as dm
from dyn_metrics import testing
from dyn_metrics.model import LABEL_NAME_RE, METRIC_NAME_RE
from dyn_metrics.testing import (
    assert_valid_exposition,
    families,
    label_names,
    label_values,
    metric_names,
    registries,
    values,
)


def reaches(strategy, condition):
    """The first generated example meeting ``condition`` (no shrinking: reachability only)."""
    return find(
        strategy,
        condition,
        settings=settings(phases=[Phase.generate], max_examples=1000, database=None),
    )


@given(metric_names(), metric_names("openmetrics"), label_names())
def test_testing_names_are_valid(name, om_name, label):
    assert METRIC_NAME_RE.fullmatch(name)
    assert METRIC_NAME_RE.fullmatch(om_name) and not om_name.startswith("_")
    assert LABEL_NAME_RE.fullmatch(label)
    assert label not in ("le", "quantile") and not label.startswith("_")


@pytest.mark.parametrize("char", ['"', "\\", "\n", "\t", "\r", "\x00", "é"])
def test_testing_label_values_reach_every_awkward_char(char):
    assert char in reaches(label_values(), lambda v: char in v)


def test_testing_label_values_include_empty():
    assert reaches(label_values(), lambda v: v == "") == ""


@pytest.mark.parametrize(
    "wanted",
    [
        lambda v: v != v,
        lambda v: v == math.inf,
        lambda v: v == -math.inf,
        lambda v: v == 0 and math.copysign(1, v) < 0,
        lambda v: v.__class__ is int and v > 2**53,
    ],
)
def test_testing_values_reach_the_special_values(wanted):
    reaches(values(), wanted)


@pytest.mark.parametrize(
    "fmt, type_word",
    [
        ("text", "histogram"),
        ("text", "summary"),
        ("text", "untyped"),
        ("openmetrics", "stateset"),
        ("openmetrics", "info"),
        ("openmetrics", "gaugehistogram"),
    ],
)
def test_testing_families_reach_every_type(fmt, type_word):
    reaches(families(fmt), lambda fs: any(f.type == type_word for f in fs))


def test_testing_openmetrics_families_reach_created_units_and_exemplars():
    reaches(
        families("openmetrics"),
        lambda fs: any(s.name.endswith("_created") for f in fs for s in f.samples),
    )
    reaches(families("openmetrics"), lambda fs: any(f.unit for f in fs))
    reaches(families("openmetrics"), lambda fs: any(s.exemplar for f in fs for s in f.samples))


@given(registries())
def test_testing_registries_build_valid_registries(reg):
    assert isinstance(reg, dm.Registry)
    assert_valid_exposition(reg.prometheus_expfmt())


def test_testing_registries_reach_vecs_with_children():
    reg = reaches(registries(), lambda r: sum(len(f.samples) for f in r.collect()) >= 6)
    assert len(reg.collect()) >= 1


def test_testing_assert_valid_exposition_passes_valid_text():
    assert_valid_exposition("# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n")
    assert_valid_exposition(
        "# TYPE x gauge\n# HELP x X.\nx 1\n# EOF\n", "openmetrics", allow_warnings=False
    )


def test_testing_assert_valid_exposition_lists_every_problem():
    with pytest.raises(AssertionError) as info:
        assert_valid_exposition('x{a="1"} 1\nx{a="1"} 2\ny 1 -5\n')
    message = str(info.value)
    assert message.startswith("invalid text exposition:")
    assert "line 2: duplicate series" in message
    assert "line 3: signed timestamp" in message


def test_testing_assert_valid_exposition_can_fail_on_warnings():
    assert_valid_exposition("# TYPE x counter\nx 1\n")
    with pytest.raises(
        AssertionError, match='line 1: warning: x: counter metrics should have "_total" suffix'
    ):
        assert_valid_exposition("# TYPE x counter\nx 1\n", allow_warnings=False)


def test_testing_all_names_exist():
    for name in testing.__all__:
        assert hasattr(testing, name)


def test_testing_import_without_hypothesis_says_how_to_install():
    code = textwrap.dedent("""
        import sys
        sys.modules["hypothesis"] = None
        try:
            import dyn_metrics.testing
        except ImportError as exc:
            print("IMPORT-ERROR:", exc)
        else:
            print("imported")
        import dyn_metrics
        print("package ok:", dyn_metrics.Registry.__name__)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORT-ERROR:" in proc.stdout
    assert "pip install hypothesis" in proc.stdout
    assert "package ok: Registry" in proc.stdout
