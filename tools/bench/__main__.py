"""Entry point: ``python -m tools.bench`` or ``python tools/bench`` (see ``cli``).

Run as a directory, this file is ``__main__`` of no package and its own folder
is ``sys.path[0]``; it then puts the repository root there instead and imports
the package by its full name, so the modules load exactly as under ``-m``.
"""

import os
import sys

if __package__:
    from .cli import main
else:
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
        del sys.path[0]  # the folder itself: its modules are not top-level ones
    sys.path.insert(0, os.path.dirname(os.path.dirname(_here)))
    from tools.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
