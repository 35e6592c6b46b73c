"""Which family each line belongs to, and the rules that follow from it.

A :class:`Grouper` takes the tokens of an exposition in order and files them
into :class:`FamilyDraft` records, reporting what breaks the grouping: a
second or late HELP/TYPE/UNIT line, duplicate series, interleaved families
(and, in OpenMetrics, interleaved metrics within a family), sample names that
do not fit their family's type, and OpenMetrics families whose sample names
clash. Problems go to a :class:`~dyn_metrics.exposition.parse.tokens.Report`.
Not thread-safe: one grouper per input.
"""

from collections.abc import Sequence
from typing import Optional

from ...model import (
    ALL_SUFFIXES,
    GAUGEHISTOGRAM,
    HISTOGRAM,
    OPENMETRICS_SUFFIXES,
    STATESET,
    SUMMARY,
    TEXT_SUFFIXES,
    UNKNOWN,
    UNTYPED,
    Labels,
    Sample,
)
from .tokens import Report

# A series (one sample name and label set) and a metric (the label set a
# family's samples share) as hashable keys; empty label values count as absent.
SeriesKey = tuple[str, frozenset[tuple[str, str]]]
MetricKey = frozenset[tuple[str, str]]


def labels_text(labels: Sequence[tuple[str, str]]) -> str:
    """``{k="v",...}`` for messages (values not re-escaped); empty for no labels."""
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else ""


def _series_key(name: str, labels: Labels) -> SeriesKey:
    # Empty label values count as absent: Prometheus drops them on ingestion.
    return name, frozenset(p for p in labels if p[1] != "")


class FamilyDraft:
    """A family while it is being read."""

    __slots__ = (
        "name",
        "type",
        "help",
        "unit",
        "line",
        "seen",
        "samples",
        "unit_line",
        "last_metric",
        "done_metrics",
        "alias",
    )

    def __init__(self, name: str, line: int) -> None:
        self.name = name
        self.type: Optional[str] = None
        self.help: Optional[str] = None
        self.unit: Optional[str] = None
        self.line = line
        self.seen: list[str] = []  # metadata kinds in the order they came
        self.samples: list[tuple[Sample, int]] = []  # (sample, its line)
        self.unit_line = line
        self.last_metric: Optional[MetricKey] = None
        self.done_metrics: set[MetricKey] = set()
        self.alias: Optional[str] = None  # OpenMetrics "a_b" for a colon family "a:b"


class Grouper:
    """Files metadata and samples into families, in input order; ``fams`` holds the result."""

    def __init__(self, report: Report, om: bool) -> None:
        self.error = report.error
        self.warn = report.warn
        self.om = om
        self.suffixes = OPENMETRICS_SUFFIXES if om else TEXT_SUFFIXES
        self.fams: list[FamilyDraft] = []
        self.by_name: dict[str, FamilyDraft] = {}
        self.by_alias: dict[str, FamilyDraft] = {}
        self.cur: Optional[FamilyDraft] = None
        self.series: dict[SeriesKey, tuple[int, Optional[float]]] = {}  # first line, timestamp

    def type_of(self, fam: FamilyDraft) -> str:
        """The family's type word; ``unknown`` (OpenMetrics) or ``untyped`` without a TYPE line."""
        if fam.type:
            return fam.type
        return UNKNOWN if self.om else UNTYPED

    def metadata(self, number: int, kind: str, name: str, value: Optional[str]) -> None:
        """Attach a HELP, TYPE or UNIT line to its family, starting one if needed."""
        fam = self.by_name.get(name)
        if fam is None:
            fam = self._new_family(name, number)
        elif fam is not self.cur:
            if kind in fam.seen:
                self.error(number, "dup-metadata", f"second {kind} line for {name!r}")
            else:
                self.error(
                    number,
                    "interleaved-family",
                    f"{kind} line for {name!r} after its family ended (families must not "
                    "be interleaved)",
                )
            return
        elif kind in fam.seen:
            self.error(number, "dup-metadata", f"second {kind} line for {name!r}")
            return
        elif fam.samples:
            self.error(
                number, "metadata-after-samples", f"{kind} line for {name!r} after its samples"
            )
            return
        if self.om and fam.seen:
            order = ("TYPE", "UNIT", "HELP")
            if any(order.index(k) > order.index(kind) for k in fam.seen):
                self.warn(
                    number,
                    "metadata-order",
                    f"metadata of {name!r} should be in the order TYPE, UNIT, HELP",
                )
        fam.seen.append(kind)
        if kind == "TYPE":
            fam.type = value
        elif kind == "HELP":
            fam.help = value
        else:
            fam.unit = value
            fam.unit_line = number

    def sample(self, number: int, sample: Sample) -> None:
        """Add a sample to the family that owns its name; a sample no family can take is dropped."""
        fam = self._family_for(number, sample.name)
        if fam is None:
            return
        if fam.alias is not None and not sample.name.startswith(fam.name):
            self.warn(
                number,
                "colon-mangled",
                f"sample {sample.name!r} of family {fam.name!r} is spelled with '_' for ':' "
                "(prometheus_client's OpenMetrics escaping); read as the family's",
            )
            sample = sample._replace(name=fam.name + sample.name[len(fam.alias) :])
        key = _series_key(sample.name, sample.labels)
        seen = self.series.get(key)
        if seen is not None:
            first, ts = seen
            if not (
                self.om
                and ts is not None
                and sample.timestamp is not None
                and sample.timestamp >= ts
            ):
                self.error(
                    number,
                    "dup-series",
                    f"duplicate series {sample.name}{labels_text(sample.labels)} (first "
                    f"on line {first})",
                )
        self.series[key] = (seen[0] if seen else number, sample.timestamp)
        if self.om:
            metric = self._metric_key(fam, sample.labels)
            if metric != fam.last_metric:
                if metric in fam.done_metrics:
                    self.error(
                        number,
                        "interleaved-metric",
                        f"metric {fam.name}{labels_text(sorted(metric))} is interleaved "
                        "with other metrics of the family",
                    )
                if fam.last_metric is not None:
                    fam.done_metrics.add(fam.last_metric)
                fam.last_metric = metric
        fam.samples.append((sample, number))

    def check_clashes(self) -> None:
        """OpenMetrics: report families that could both have samples of the same name."""
        claimed: dict[str, FamilyDraft] = {}
        for fam in self.fams:
            for suffix in OPENMETRICS_SUFFIXES[self.type_of(fam)]:
                name = fam.name + suffix
                other = claimed.get(name)
                if other is not None and other is not fam:
                    self.error(
                        fam.line,
                        "name-clash",
                        f"family {fam.name!r} clashes with family {other.name!r}: both "
                        f"can have samples named {name!r}",
                    )
                    break
                claimed[name] = fam

    def _metric_key(self, fam: FamilyDraft, labels: Labels) -> MetricKey:
        t = self.type_of(fam)
        drop = {HISTOGRAM: "le", GAUGEHISTOGRAM: "le", SUMMARY: "quantile", STATESET: fam.name}.get(
            t
        )
        alias = fam.alias if t == STATESET else None
        return frozenset(p for p in labels if p[0] not in (drop, alias) and p[1] != "")

    def _new_family(self, name: str, number: int) -> FamilyDraft:
        if self.om and name.startswith("_"):
            self.error(
                number,
                "reserved-name",
                f"metric family names starting with '_' are reserved in OpenMetrics: {name!r}",
            )
        fam = FamilyDraft(name, number)
        if self.om and ":" in name:
            # prometheus_client writes the metadata of an OpenMetrics family
            # "a:b" under that name and its samples as "a_b...".
            fam.alias = name.replace(":", "_")
            self.by_alias.setdefault(fam.alias, fam)
        self.fams.append(fam)
        self.by_name[name] = fam
        self.cur = fam
        return fam

    def _owns(self, fam: FamilyDraft, name: str) -> bool:
        suffixes = self.suffixes[self.type_of(fam)]
        for base in (fam.name, fam.alias):
            if base is not None and name.startswith(base) and name[len(base) :] in suffixes:
                return True
        return False

    def _owner(self, name: str) -> Optional[FamilyDraft]:
        bases = [name] + [name[: -len(s)] for s in ALL_SUFFIXES if name.endswith(s)]
        for base in bases:
            # A family of that very name shadows a colon family's alias.
            fam = self.by_name.get(base)
            if fam is None:
                fam = self.by_alias.get(base)
            if fam is not None and self._owns(fam, name):
                return fam
        return None

    def _family_for(self, number: int, name: str) -> Optional[FamilyDraft]:
        cur = self.cur
        if cur is not None and self._owns(cur, name):
            return cur
        fam = self._owner(name)
        if fam is not None:
            if fam.samples:
                self.error(
                    number,
                    "interleaved-family",
                    f"samples of {fam.name!r} are interleaved with another family (one "
                    "uninterrupted group required)",
                )
            else:
                self.error(
                    number,
                    "interleaved-family",
                    f"metadata of {fam.name!r} is separated from its samples by another family",
                )
            self.cur = fam
            return fam
        if cur is not None and name == cur.name:
            expected = " or ".join(repr(cur.name + s) for s in self.suffixes[self.type_of(cur)])
            self.error(
                number,
                "sample-name",
                f"sample name {name!r} does not fit {self.type_of(cur)} family "
                f"{cur.name!r} (expected {expected})",
            )
            return None
        fam = self.by_name.get(name)
        if fam is not None:
            self.error(
                number,
                "sample-name",
                f"sample {name!r} does not fit the {self.type_of(fam)} family of the same name",
            )
            return None
        if cur is not None and not cur.samples and not self.om and name.startswith(cur.name):
            self.warn(
                cur.line,
                "metadata-no-samples",
                f"metadata for {cur.name!r} has no samples; the samples that follow are "
                f"named {name!r}",
            )
        return self._new_family(name, number)
