"""Command line: ``python -m dyn_metrics demo|check ...``."""

import sys

USAGE = """usage: python -m dyn_metrics COMMAND [ARGS]

commands:
  demo    serve the metrics of a simulated Dynamo worker (--help for options)
  check   validate an exposition: FILE, URL or - (stdin) (--help for options)
"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from .demo import main as run
    elif command == "check":
        from .exposition.check import main as run
    else:
        sys.stderr.write(f"unknown command {command!r}\n{USAGE}")
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
