"""Command line: ``python -m tools.bench [--quick] [--json FILE] [--check] ...``.

Runs the chosen phases in order, prints the header, the table and the summary
line, writes every number to ``--json FILE``, and with ``--check`` exits 1 when
any target fails or a case raised (2 when a library cannot be imported).
"""

import argparse
import json
import os
import platform
import sys
import time
import types
from typing import Callable, Optional

from . import (
    cases_churn,
    cases_engine,
    cases_export,
    cases_hot,
    cases_http,
    cases_import,
    cases_memory,
    cases_multiprocess,
    cases_native,
    cases_scrape,
    cases_threads,
    cases_types,
    cases_web,
)
from .harness import ROOT, Bench
from .report import loadavg, noise_warning, render_table
from .sides import DynMetricsSide, PrometheusClientSide, Side

# phase name -> runner, in the order they run and appear in the table
PHASES: dict[str, Callable[[Bench], None]] = {
    "import": cases_import.run,
    "hot": cases_hot.run,
    "types": cases_types.run,
    "native": cases_native.run,
    "multiprocess": cases_multiprocess.run,
    "threads": cases_threads.run,
    "memory": cases_memory.run,
    "scrape": cases_scrape.run,
    "churn": cases_churn.run,
    "http": cases_http.run,
    "web": cases_web.run,
    "engine": cases_engine.run,
    "export": cases_export.run,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The flags, plus the derived sizes and repeats of every phase."""
    p = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="Benchmark dyn_metrics against prometheus_client side by side.",
    )
    p.add_argument(
        "--quick", action="store_true", help="fewer repeats, shorter loops, no 100k-series scrape"
    )
    p.add_argument(
        "--repeat", type=int, default=None, help="repeats per case (default 9, --quick 3)"
    )
    p.add_argument("--json", metavar="FILE", help="write every number to FILE")
    p.add_argument(
        "--check", action="store_true", help="exit 1 if any target fails or a case raises"
    )
    p.add_argument(
        "--only", metavar="PHASES", help="comma-separated subset of: " + ",".join(PHASES)
    )
    p.add_argument(
        "--loops",
        type=int,
        default=None,
        help="calls per hot-path sample (default 200000, --quick 100000)",
    )
    args = p.parse_args(argv)
    q = args.quick
    if args.repeat is None:
        args.repeat = 3 if q else 9
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.loops is None:
        args.loops = 100_000 if q else 200_000
    args.thread_ops = 50_000 if q else 200_000
    args.thread_repeat = min(args.repeat, 5)
    args.mem_children = 5000
    args.mem_repeat = 1 if q else 3
    args.mem_scrape_children = 500  # per scrape, traced: ~6x slower for prometheus_client
    args.sizes = [1000, 10_000] if q else [1000, 10_000, 100_000]
    args.big_repeat = max(1, min(args.repeat, 3 if q else 5))
    args.import_repeat = 5 if q else max(9, args.repeat)
    args.http_series = 10_000
    args.http_requests = 7 if q else 21
    args.http_per_thread = 2 if q else 4
    args.http_rounds = 1 if q else 3
    if args.only:
        chosen = [x.strip() for x in args.only.split(",") if x.strip()]
        bad = [x for x in chosen if x not in PHASES]
        if bad:
            p.error("unknown phase(s): " + ", ".join(bad))
        args.phases = [x for x in PHASES if x in chosen]
    else:
        args.phases = list(PHASES)
    return args


def load_libraries() -> tuple[types.ModuleType, types.ModuleType]:
    """(dyn_metrics from this checkout, prometheus_client); exit 2 if either is missing."""
    sys.path.insert(0, ROOT)  # this checkout's dyn_metrics wins over an installed one
    try:
        import prometheus_client
    except ImportError:
        sys.stderr.write(
            "python -m tools.bench needs prometheus_client to compare against.\n"
            "Install it with:  pip install -e '.[bench]'   (from the repository root)\n"
        )
        sys.exit(2)
    try:
        import dyn_metrics
    except Exception as exc:
        sys.stderr.write(f"dyn_metrics failed to import from {ROOT}: {type(exc).__name__}: {exc}\n")
        sys.exit(2)
    return dyn_metrics, prometheus_client


def _log(msg: str) -> None:
    sys.stderr.write(f"[bench] {msg}\n")
    sys.stderr.flush()


def _print_header(bench: Bench, elapsed: float) -> None:
    info, args = bench.info, bench.args
    print(
        f"dyn_metrics {info['dyn_metrics']} vs prometheus_client {info['prometheus_client']} "
        f"| Python {info['python']} ({info['implementation']}) | {info['platform']} "
        f"| {info['cpus']} CPUs"
    )
    print(
        f"repeats {args.repeat}, {args.loops} calls per hot-path sample, interleaved; ratio = "
        f"dyn_metrics / prometheus_client (lower is better); {elapsed:.0f} s total; "
        f"load average {info['loadavg_start'] or '?'} at start, "
        f"{info['loadavg_end'] or '?'} at end"
    )


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    dm, pc = load_libraries()
    sides: list[Side] = [DynMetricsSide(dm), PrometheusClientSide(pc)]
    bench = Bench(args, sides, _log)
    bench.info.update(
        {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "dyn_metrics": sides[0].version(),
            "prometheus_client": sides[1].version(),
            "args": dict(vars(args)),
        }
    )
    bench.info["loadavg_start"] = loadavg()
    t_start = time.monotonic()
    phase_s: dict[str, float] = {}
    for phase in args.phases:
        t_phase = time.monotonic()
        PHASES[phase](bench)
        phase_s[phase] = round(time.monotonic() - t_phase, 1)
        _log(f"{phase}: {phase_s[phase]:.0f} s")
    bench.info["phase_seconds"] = phase_s
    elapsed = time.monotonic() - t_start
    bench.info["loadavg_end"] = loadavg()

    _print_header(bench, elapsed)
    print()
    print(render_table(bench.rows, bench.floor_rows))

    warning = noise_warning(bench.floor_rows, bench.info)
    if warning:
        print()
        print(warning)

    failed = [r for r in bench.rows if r.result() in ("FAIL", "ERROR")]
    print()
    targets = [r for r in bench.rows if r.target is not None]
    passed = sum(1 for r in targets if r.result() == "PASS")
    failing = "" if not failed else "; failing: " + ", ".join(r.key for r in failed)
    print(f"{passed} of {len(targets)} targets pass{failing}")

    if args.json:
        doc = {
            "info": bench.info,
            "elapsed_s": elapsed,
            "floors": [f.to_json() for f in bench.floor_rows],
            "cases": [r.to_json() for r in bench.rows],
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2, default=str)
            fh.write("\n")
    if args.check and failed:
        return 1
    return 0
