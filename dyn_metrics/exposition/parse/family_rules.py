"""Per-family rules, checked once the whole input is read.

:func:`check_family` looks at one grouped family (a
:class:`~dyn_metrics.exposition.parse.families.FamilyDraft`) as a whole:
histogram buckets (``le``, order, cumulative counts, ``+Inf``,
``_count``/``_sum``), summary quantiles, counter, info and stateset values,
and in OpenMetrics units and which samples may carry exemplars. Problems go
to a :class:`~dyn_metrics.exposition.parse.tokens.Report`.
"""

import math
from typing import Optional, TypedDict

from ...model import COUNTER, GAUGEHISTOGRAM, HISTOGRAM, INFO, STATESET, SUMMARY, Number, Sample
from .families import FamilyDraft, MetricKey, labels_text
from .numbers import float_or_nan, looks_like_ms, non_canonical
from .tokens import Report


class _Histogram(TypedDict):
    """One labelled histogram of a family while its rules are checked."""

    buckets: list[tuple[float, Sample, int, str]]  # (bound, sample, line, le as written)
    count: Optional[tuple[Sample, int]]
    sum: Optional[tuple[Sample, int]]
    line: int  # where its first sample is
    negative_sum: bool  # an OpenMetrics _gsum below zero


def check_family(report: Report, fam: FamilyDraft, t: str, om: bool) -> None:
    """Report what is wrong with the shape of ``fam``, whose type word is ``t``."""
    if t in (HISTOGRAM, GAUGEHISTOGRAM):
        _check_histogram(report, fam, t, om)
    elif t == SUMMARY:
        _check_summary(report, fam, om)
    elif t == COUNTER:
        for s, line in fam.samples:
            if s.name.endswith("_created") and s.name != fam.name:
                _check_created(report, s, line, om)
                continue
            v = s.value
            if v != v or v < 0:
                what = "NaN" if v != v else "negative"
                if om:
                    report.error(line, "counter-value", f"counter {s.name!r} is {what}")
                else:
                    report.warn(line, "counter-value", f"counter {s.name!r} is {what}")
    elif t == INFO:
        for s, line in fam.samples:
            if s.value != 1:
                report.error(
                    line,
                    "info-value",
                    f"info sample {s.name!r} must have the value 1, got {s.value!r}",
                )
    elif t == STATESET:
        for s, line in fam.samples:
            # (a colon family's state label is its alias: label names have no ':')
            if not any(k in (fam.name, fam.alias) for k, _ in s.labels):
                report.error(
                    line,
                    "stateset-label",
                    f"stateset sample needs a label named {fam.name!r} holding the state",
                )
            if s.value not in (0, 1):
                report.error(
                    line,
                    "stateset-value",
                    f"stateset sample values must be 0 or 1, got {s.value!r}",
                )
    if om:
        if fam.unit:
            if t in (INFO, STATESET):
                report.error(fam.unit_line, "unit", f"{t} family {fam.name!r} must not have a unit")
            elif not fam.name.endswith("_" + fam.unit):
                report.error(
                    fam.unit_line,
                    "unit",
                    f"unit {fam.unit!r} is not a suffix of the family name {fam.name!r}",
                )
        for s, line in fam.samples:
            if s.exemplar is not None and not (
                (t == COUNTER and s.name.endswith("_total"))
                or (t in (HISTOGRAM, GAUGEHISTOGRAM) and s.name.endswith("_bucket"))
            ):
                report.error(
                    line,
                    "exemplar",
                    f"{s.name!r} cannot carry an exemplar (only counter _total and "
                    "histogram _bucket samples can)",
                )


def _check_created(report: Report, sample: Sample, line: int, om: bool) -> None:
    if om and looks_like_ms(sample.value):
        report.warn(
            line,
            "created-milliseconds",
            f"{sample.name} = {sample.value!r} looks like milliseconds; _created holds seconds",
        )


def _counterlike(
    report: Report, sample: Sample, line: int, what: str, integer: bool, om: bool
) -> None:
    v = sample.value
    if v != v or v < 0:
        report.error(
            line,
            "counter-value",
            f"{what} {sample.name!r} must not be {'NaN' if v != v else 'negative'}",
        )
    elif integer and om and not float(v).is_integer():
        report.error(line, "non-integer", f"{what} {sample.name!r} must be an integer, got {v!r}")


def _check_histogram(report: Report, fam: FamilyDraft, t: str, om: bool) -> None:
    gauge = t == GAUGEHISTOGRAM
    count_sfx, sum_sfx = ("_gcount", "_gsum") if gauge else ("_count", "_sum")
    metrics: dict[MetricKey, _Histogram] = {}
    for s, line in fam.samples:
        suffix = s.name[len(fam.name) :]
        key = frozenset(p for p in s.labels if p[0] != "le" and p[1] != "")
        m = metrics.get(key)
        if m is None:
            m = metrics[key] = {
                "buckets": [],
                "count": None,
                "sum": None,
                "line": line,
                "negative_sum": False,
            }
        if suffix == "_bucket":
            le = [v for k, v in s.labels if k == "le"]
            if not le:
                report.error(line, "missing-le", f"histogram bucket {s.name!r} has no 'le' label")
                continue
            bound = float_or_nan(le[0])
            if bound != bound:
                report.error(line, "bad-le", f"invalid 'le' value {le[0]!r}: expected a number")
                continue
            canonical = non_canonical(le[0], bound) if om else None
            if canonical is not None and math.isinf(bound):
                report.error(
                    line,
                    "le-canonical",
                    f"le={le[0]!r} is not canonical; OpenMetrics requires {canonical!r}",
                )
            elif canonical is not None:
                report.warn(
                    line,
                    "le-canonical",
                    f"le={le[0]!r} is not canonical; OpenMetrics spells it {canonical!r}",
                )
            m["buckets"].append((bound, s, line, le[0]))
            _counterlike(report, s, line, "bucket", True, om)
            if s.exemplar is not None and om and float(s.exemplar.value) > bound:
                report.error(
                    line,
                    "exemplar",
                    f"exemplar value {s.exemplar.value!r} is above the bucket's le={le[0]}",
                )
            continue
        if any(k == "le" for k, _ in s.labels):
            report.error(
                line, "bad-le", f"'le' label on {s.name!r}: only _bucket samples may have it"
            )
        if suffix == count_sfx:
            m["count"] = (s, line)
            _counterlike(report, s, line, "count", True, om)
        elif suffix == sum_sfx:
            m["sum"] = (s, line)
            if gauge:
                if s.value != s.value:
                    report.error(line, "nan-sum", f"{s.name!r} must not be NaN")
                elif om and s.value < 0:
                    m["negative_sum"] = True
            elif om:
                _counterlike(report, s, line, "sum", False, om)
        elif suffix == "_created":
            _check_created(report, s, line, om)
    for key, m in metrics.items():
        _check_histogram_metric(
            report, f"{fam.name}{labels_text(sorted(key))}", m, count_sfx, sum_sfx, gauge, om
        )


def _check_histogram_metric(
    report: Report,
    where: str,
    m: _Histogram,
    count_sfx: str,
    sum_sfx: str,
    gauge: bool,
    om: bool,
) -> None:
    """The rules for one labelled histogram ``where`` across its buckets, count and sum."""
    buckets = m["buckets"]
    if not buckets:
        report.error(
            m["line"],
            "missing-inf",
            f'histogram {where} has no buckets; a le="+Inf" bucket is required',
        )
    else:
        ordered = True
        for (b0, s0, _, _), (b1, s1, line, le) in zip(buckets, buckets[1:]):
            if b1 == b0:
                report.error(line, "dup-bucket", f"duplicate bucket threshold le={le!r} in {where}")
                ordered = False
            elif b1 < b0:
                report.error(
                    line, "bucket-order", f"buckets of {where} are not in increasing 'le' order"
                )
                ordered = False
            elif ordered and s1.value < s0.value:
                report.error(
                    line,
                    "non-cumulative",
                    f"bucket counts of {where} are not cumulative: le={le!r} has "
                    f"{s1.value!r} < {s0.value!r}",
                )
        inf = [s for b, s, _, _ in buckets if b == math.inf]
        if not inf:
            report.error(
                buckets[-1][2], "missing-inf", f'histogram {where} has no le="+Inf" bucket'
            )
        count, total = m["count"], m["sum"]
        if count is not None and inf and not _same(count[0].value, inf[0].value):
            report.error(
                count[1],
                "count-mismatch",
                f"{count[0].name} = {count[0].value!r} differs from the +Inf "
                f"bucket {inf[0].value!r}",
            )
        if m["negative_sum"] and buckets[0][0] >= 0:
            assert total is not None
            report.error(
                total[1],
                "negative-sum",
                f"{total[0].name} = {total[0].value!r} is negative but {where} has no "
                "negative bucket threshold",
            )
        if total is not None and om and not gauge and buckets[0][0] < 0:
            report.error(
                total[1],
                "sum-with-negative-buckets",
                f"histogram {where} has negative bucket thresholds, so it must not have {sum_sfx}",
            )
    count, total = m["count"], m["sum"]
    if om:
        if total is not None and count is None:
            report.error(
                total[1], "missing-count", f"histogram {where} has {sum_sfx} but no {count_sfx}"
            )
        elif count is not None and total is None:
            report.error(
                count[1],
                "count-without-sum",
                f"histogram {where} has {count_sfx} but no {sum_sfx} "
                "(OpenMetrics: both or neither)",
            )
        elif total is None and buckets and buckets[0][0] >= 0:
            report.warn(m["line"], "missing-sum", f"histogram {where} has no {sum_sfx}")
    else:
        if count is None:
            report.error(
                m["line"],
                "missing-count",
                f"histogram {where} has no {count_sfx} (it must equal the +Inf bucket)",
            )
        if total is None and buckets and buckets[0][0] >= 0:
            # prometheus_client leaves _sum out when a bucket is negative, as
            # OpenMetrics requires.
            report.warn(m["line"], "missing-sum", f"histogram {where} has no {sum_sfx}")


def _check_summary(report: Report, fam: FamilyDraft, om: bool) -> None:
    quantiles: dict[MetricKey, list[tuple[float, int]]] = {}  # (quantile, line)
    for s, line in fam.samples:
        suffix = s.name[len(fam.name) :]
        q = [v for k, v in s.labels if k == "quantile"]
        if suffix == "":
            if not q:
                report.error(
                    line, "missing-quantile", f"summary sample {s.name!r} has no 'quantile' label"
                )
                continue
            value = float_or_nan(q[0])
            if not 0 <= value <= 1:
                report.error(
                    line,
                    "bad-quantile",
                    f"invalid quantile {q[0]!r}: expected a number from 0 to 1",
                )
                continue
            if om and s.value < 0:
                report.error(
                    line, "quantile-value", f"quantile value {s.value!r} must not be negative"
                )
            canonical = non_canonical(q[0], value) if om else None
            if canonical is not None:
                report.warn(
                    line,
                    "quantile-canonical",
                    f"quantile={q[0]!r} is not canonical; OpenMetrics spells it {canonical!r}",
                )
            key = frozenset(p for p in s.labels if p[0] != "quantile" and p[1] != "")
            quantiles.setdefault(key, []).append((value, line))
            continue
        if q:
            report.error(
                line,
                "bad-quantile",
                f"'quantile' label on {s.name!r}: only quantile samples may have it",
            )
        if suffix == "_created":
            _check_created(report, s, line, om)
        elif om:
            _counterlike(report, s, line, suffix[1:], suffix == "_count", om)
    for key, qs in quantiles.items():
        where = f"{fam.name}{labels_text(sorted(key))}"
        seen: set[float] = set()
        for i, (value, line) in enumerate(qs):
            if value in seen:
                report.error(line, "dup-quantile", f"duplicate quantile {value!r} in {where}")
            elif not om and i and value < qs[i - 1][0]:
                report.error(
                    line, "quantile-order", f"quantiles of {where} are not in increasing order"
                )
            seen.add(value)


def _same(a: Number, b: Number) -> bool:
    """Equal, with NaN equal to NaN."""
    return a == b or (a != a and b != b)
