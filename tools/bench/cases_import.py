"""Import time: ``import <library>`` in a fresh interpreter, minus a bare start.

Each sample is paired: the wall time of the import run minus the mean of two
``pass`` runs taken just before and after it in the same repeat, so interpreter
start-up and its drift cancel. The ``-X importtime`` cumulative figure of the
top-level module is reported beside it.
"""

import functools
import os
import statistics
import subprocess
import sys
from time import perf_counter_ns

from .harness import ROOT, Bench, fmt_ms
from .sides import Side


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    """Wall ms of one run of cmd."""
    t0 = perf_counter_ns()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t1 = perf_counter_ns()
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode(errors="replace").strip()[-300:])
    return (t1 - t0) / 1e6


def _importtime(cmd: list[str], env: dict[str, str], module: str) -> float:
    """Cumulative ms that ``-X importtime`` reports for module."""
    p = subprocess.run(
        [cmd[0], "-X", "importtime"] + cmd[1:],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode(errors="replace").strip()[-300:])
    for line in p.stderr.decode().splitlines():
        parts = [x.strip() for x in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000.0
    raise RuntimeError("no importtime line for " + module)


def run(bench: Bench) -> None:
    reps = bench.args.import_repeat
    bench.log(f"import time: {reps} fresh interpreters per side")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    prologue = f"import sys; sys.path.insert(0, {ROOT!r})"
    cmds = {"pass": [sys.executable, "-c", prologue]}
    for side in bench.sides:
        cmds[side.name] = [sys.executable, "-c", prologue + "; import " + side.module_name]
    row = bench.row(
        "import_time",
        "import in a fresh interpreter (minus `pass`)",
        "ms",
        0.5,
        fmt=fmt_ms,
        group="import",
    )
    it_row = bench.row(
        "import_time_x", "  -X importtime cumulative", "ms", fmt=fmt_ms, group="import"
    )
    row.note = "prometheus_client's import registers its default collectors"

    def wall_of(side: Side) -> float:
        return _wall(cmds[side.name], env)

    def importtime_of(side: Side) -> float:
        return _importtime(cmds[side.name], env, side.module_name)

    # byte-compile and warm the page cache first
    for side in bench.sides:
        bench.guarded(row, side, functools.partial(wall_of, side))
    # Paired: each sample is (import run) - (`pass` run) of the same repeat.
    base: list[float] = []
    for rep in range(reps):
        order = bench.order(rep)
        b0 = _wall(cmds["pass"], env)
        runs: dict[str, float] = {}
        for side in order:
            v = bench.guarded(row, side, functools.partial(wall_of, side))
            if v is not None:
                runs[side.name] = v
        b1 = _wall(cmds["pass"], env)
        b = (b0 + b1) / 2
        base.append(b)
        for name, v in runs.items():
            row.add(name, v - b)
        for side in order:
            v = bench.guarded(it_row, side, functools.partial(importtime_of, side))
            if v is not None:
                it_row.add(side.name, v)
    bench.info["interpreter_start_ms"] = statistics.median(base)
