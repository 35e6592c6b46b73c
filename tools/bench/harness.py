"""Rows of results and the state every phase shares.

A ``Row`` is one table line: the samples of both sides, their medians, the ratio
and the verdict against the row's target. ``Bench`` holds the rows and the run's
``info`` and gives the phases their shared moves: a fresh metric name, the side
order of a repeat (A B, then B A) and a guard that turns a raising case into an
ERROR cell instead of stopping the run.
"""

import argparse
import gc
import itertools
import os
import statistics
from typing import Any, Callable, Optional, TypeVar

from .sides import Side

T = TypeVar("T")

# the checkout this benchmark lives in: its dyn_metrics wins over an installed one
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# value formats: (printf number format, unit)
Fmt = tuple[str, str]
fmt_ns: Fmt = ("%.1f", "ns")
fmt_ms: Fmt = ("%.2f", "ms")
fmt_us: Fmt = ("%.3f", "us")
fmt_bytes: Fmt = ("%.0f", "B")
fmt_count: Fmt = ("%d", "")
_fmt_default: Fmt = ("%.1f", "")

SIDE_NAMES = ("dyn_metrics", "prometheus_client")


class Timed:
    """Disable the collector for the timed region; restore it afterwards."""

    def __enter__(self) -> "Timed":
        self.was = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.was:
            gc.enable()


def stats(samples: list[float]) -> Optional[dict[str, float]]:
    if not samples:
        return None
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


class Row:
    """One table line: a measurement for both sides plus its target.

    ``kind`` says how the target is read: "ratio" passes when dyn_metrics /
    prometheus_client <= target, "abs" when the dyn_metrics median <= target,
    "zero" when every dyn_metrics sample is 0. A row without a target only
    reports. A side that raised makes the row ERROR.
    """

    def __init__(
        self,
        key: str,
        title: str,
        unit: str,
        target: Optional[float] = None,
        kind: str = "ratio",
        fmt: Optional[Fmt] = None,
        group: str = "",
    ) -> None:
        self.key = key
        self.title = title
        self.unit = unit
        self.target = target  # number or None (report only)
        self.kind = kind
        self.fmt = fmt
        self.group = group
        self.samples: dict[str, list[float]] = {name: [] for name in SIDE_NAMES}
        self.errors: dict[str, str] = {}
        self.extra: dict[str, str] = {}  # side -> text shown after the value
        self.note = ""

    def add(self, side: str, value: float) -> None:
        self.samples[side].append(value)

    def error(self, side: str, exc: BaseException) -> None:
        self.errors.setdefault(side, f"{type(exc).__name__}: {exc}")

    def median(self, side: str) -> Optional[float]:
        s = self.samples[side]
        return statistics.median(s) if s else None

    def ratio(self) -> Optional[float]:
        d, p = self.median("dyn_metrics"), self.median("prometheus_client")
        if d is None or p is None or self.kind == "zero" or p == 0:
            return None
        return d / p

    def result(self) -> str:
        """PASS, FAIL, ERROR, or "report" for a row without a target."""
        if self.errors.get("dyn_metrics") or (
            self.target is not None
            and self.kind == "ratio"
            and self.errors.get("prometheus_client")
        ):
            return "ERROR"
        if self.target is None:
            return "report" if not self.errors else "ERROR"
        if self.kind == "ratio":
            r = self.ratio()
            if r is None:
                return "ERROR"
            return "PASS" if r <= self.target else "FAIL"
        d = self.median("dyn_metrics")
        if d is None:
            return "ERROR"
        if self.kind == "abs":
            return "PASS" if d <= self.target else "FAIL"
        if self.kind == "zero":
            return "PASS" if max(self.samples["dyn_metrics"]) == 0 else "FAIL"
        return "?"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        if self.kind == "ratio":
            return f"<= {self.target:.2f}"
        if self.kind == "abs":
            num, unit = self.fmt or _fmt_default
            return f"<= {num % self.target} {unit}"
        return "== 0"

    def cell(self, side: str) -> str:
        """``median [min..max] unit`` (``median (max hi)`` for a "zero" row)."""
        if side in self.errors:
            return "ERROR"
        s = self.samples[side]
        if not s:
            return "-"
        num, unit = self.fmt or _fmt_default
        med, lo, hi = statistics.median(s), min(s), max(s)
        text = num % med
        if self.kind == "zero":
            if len(s) > 1:
                text += f" (max {num % hi})"
        else:
            if len(s) > 1:
                text += f" [{num % lo}..{num % hi}]"
            if unit:
                text += " " + unit
        if side in self.extra:
            text += " " + self.extra[side]
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "group": self.group,
            "target": self.target,
            "target_kind": self.kind,
            "ratio": self.ratio(),
            "result": self.result(),
            "note": self.note,
            "errors": self.errors,
            "extra": self.extra,
            "samples": self.samples,
            "stats": {k: stats(v) for k, v in self.samples.items()},
        }


class Bench:
    """What the phases share: settings, sides, rows in table order, run info."""

    def __init__(
        self, args: argparse.Namespace, sides: list[Side], log: Callable[[str], None]
    ) -> None:
        self.args = args
        self.sides = sides  # [DynMetricsSide, PrometheusClientSide]
        self.log = log
        self.rows: list[Row] = []
        self.floor_rows: list[Row] = []
        self.info: dict[str, Any] = {}
        self._uid = itertools.count()

    def uniq(self, base: str) -> str:
        """A fresh metric name; a ``_total`` suffix stays last."""
        n = next(self._uid)
        if base.endswith("_total"):
            return f"{base[: -len('total')]}{n}_total"
        return f"{base}_{n}"

    def row(
        self,
        key: str,
        title: str,
        unit: str,
        target: Optional[float] = None,
        kind: str = "ratio",
        fmt: Optional[Fmt] = None,
        group: str = "",
    ) -> Row:
        """A new row, appended to the table in call order."""
        r = Row(key, title, unit, target, kind=kind, fmt=fmt, group=group)
        self.rows.append(r)
        return r

    def order(self, rep: int) -> list[Side]:
        """A, B on even repeats and B, A on odd ones."""
        return self.sides if rep % 2 == 0 else self.sides[::-1]

    def guarded(self, row: Row, side: Side, fn: Callable[[], T]) -> Optional[T]:
        """fn(), or None once the side has an error on this row (the first is kept)."""
        if side.name in row.errors:
            return None
        try:
            return fn()
        except Exception as exc:  # a broken case must not stop the run
            row.error(side.name, exc)
            return None
