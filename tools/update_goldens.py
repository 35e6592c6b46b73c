"""Regenerate tests/golden/*.prom from the scenarios the tests define.

Usage:
    python tools/update_goldens.py            rewrite every golden file
    python tools/update_goldens.py NAME ...   rewrite only these scenarios
    python tools/update_goldens.py --check    report differences, write nothing (exit 1 if any)

The scenarios are the ``GOLDEN_SCENARIOS`` mappings of tests/test_hierarchy.py
and tests/test_registry.py (name -> function returning the exposition text).
The tests only read the files; this script is the one place that writes them,
and its output is meant to be reviewed as a diff.
"""

import argparse
import importlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
GOLDEN_DIR = TESTS / "golden"
SCENARIO_MODULES = ("test_hierarchy", "test_registry")


def load_scenarios():
    """``{name: function}`` over every scenario module; names must be unique."""
    sys.path[:0] = [str(ROOT), str(TESTS)]
    scenarios = {}
    for module_name in SCENARIO_MODULES:
        module = importlib.import_module(module_name)
        for name, build in module.GOLDEN_SCENARIOS.items():
            if name in scenarios:
                raise SystemExit(f"scenario {name!r} is defined twice ({module_name})")
            scenarios[name] = build
    return scenarios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios to regenerate (default: all)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare only; exit 1 when a file differs or is missing",
    )
    args = parser.parse_args(argv)

    scenarios = load_scenarios()
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
