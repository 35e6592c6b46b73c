"""Regenerate tests/golden/*.prom from the golden scenarios (tests/goldens.py).

Usage, from the repository root:
    python -m tools.update_goldens            rewrite every golden file
    python -m tools.update_goldens NAME ...   rewrite only these scenarios
    python -m tools.update_goldens --check    report differences, write nothing (exit 1 if any)

The tests only read the files; this script is the one place that writes them,
and its output is meant to be reviewed as a diff.
"""

import argparse
import sys

from tests.goldens import GOLDEN_DIR, SCENARIOS

ROOT = GOLDEN_DIR.parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios to regenerate (default: all)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare only; exit 1 when a file differs or is missing",
    )
    args = parser.parse_args(argv)

    scenarios = SCENARIOS
    unknown = sorted(set(args.names) - set(scenarios))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(scenarios)}")
    names = args.names or sorted(scenarios)

    GOLDEN_DIR.mkdir(exist_ok=True)
    differ = []
    for name in names:
        data = scenarios[name]().encode("utf-8")
        path = GOLDEN_DIR / f"{name}.prom"
        old = path.read_bytes() if path.exists() else None
        if old == data:
            continue
        differ.append(name)
        if args.check:
            print(f"{path.relative_to(ROOT)}: {'differs' if old is not None else 'missing'}")
        else:
            path.write_bytes(data)
            print(f"{path.relative_to(ROOT)}: {'updated' if old is not None else 'created'}")

    orphans = sorted(p.name for p in GOLDEN_DIR.glob("*.prom") if p.stem not in scenarios)
    for orphan in orphans:
        print(f"tests/golden/{orphan}: no scenario produces this file")
    if args.check:
        return 1 if differ or orphans else 0
    if not differ:
        print("golden files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
