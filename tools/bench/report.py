"""The printed report: the table, the floors, notes, errors, the busy-machine warning."""

import os
import statistics
from typing import Any, Optional

from .harness import Row

HEAD = ["case", "dyn_metrics", "prometheus_client", "ratio", "target", "result"]


def render_table(rows: list[Row], floors: list[Row]) -> str:
    """The table (a blank line between groups), then floors, notes and errors."""
    body = []
    for r in rows:
        ratio = r.ratio()
        body.append(
            [
                r.title,
                r.cell("dyn_metrics"),
                r.cell("prometheus_client"),
                f"{ratio:.3f}" if ratio is not None else "-",
                r.target_text(),
                r.result(),
            ]
        )
    widths = [max(len(x[i]) for x in [HEAD] + body) for i in range(len(HEAD))]
    lines = []

    def fmt_line(cells: list[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if i in (0, 5) else c.rjust(widths[i]))
        return " | ".join(out).rstrip()

    lines.append(fmt_line(HEAD))
    lines.append("-+-".join("-" * w for w in widths))
    group = None
    for r, cells in zip(rows, body):
        if group is not None and r.group != group:
            lines.append("")
        group = r.group
        lines.append(fmt_line(cells))
    lines.append("")
    if floors:
        lines.append("Floors measured in the same run (median [min..max]):")
        fw = max(len(f.title) for f in floors)
        for f in floors:
            lines.append(f"  {f.title.ljust(fw)}  {f.cell('dyn_metrics')}")
    notes = [(r.title.strip(), r.note) for r in rows if r.note]
    errs = [(r.title.strip(), side, e) for r in rows for side, e in r.errors.items()]
    if notes:
        lines.append("")
        lines.append("Notes:")
        for t, n in notes:
            lines.append(f"  {t}: {n}")
    if errs:
        lines.append("")
        lines.append("Errors:")
        for t, side, e in errs:
            lines.append(f"  {t} [{side}]: {e}")
    return "\n".join(lines)


def loadavg() -> Optional[str]:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return None


def noise_warning(floors: list[Row], info: dict[str, Any]) -> str:
    """A warning when the machine was busy: the floors moved during the run.

    Busy means some floor's median was 1.25x its minimum or more; "" otherwise.
    """
    spreads = []
    for f in floors:
        s = f.samples["dyn_metrics"]
        if len(s) > 1 and min(s) > 0:
            spreads.append((statistics.median(s) / min(s), f.title))
    if not spreads:
        return ""
    worst, title = max(spreads)
    if worst < 1.25:
        return ""
    return (
        f"WARNING: the machine was busy during this run (median of floor {title} was "
        f"{worst:.1f}x its minimum; load average {info.get('loadavg_start') or '?'} -> "
        f"{info.get('loadavg_end') or '?'}). Absolute times are inflated "
        "and the absolute targets may fail for that reason; the interleaved "
        "ratios are less affected. Re-run on an idle machine."
    )
