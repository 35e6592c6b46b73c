"""Command line: ``python -m dyn_metrics demo|check ...``."""

import sys
from collections.abc import Sequence
from typing import Optional

USAGE = """usage: python -m dyn_metrics COMMAND [ARGS]

commands:
  demo    serve the metrics of a simulated Dynamo worker (--help for options)
  check   validate an exposition: FILE, URL or - (stdin) (--help for options)
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns the exit status (2 for a usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    # Each command is imported only when it runs: the checker pulls in the
    # parser, the demo the HTTP server.
    if command == "demo":
        from .demo import main as demo

        return demo(rest)
    if command == "check":
        from .exposition.check import main as check

        return check(rest)
    sys.stderr.write(f"unknown command {command!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
