"""Where a family's cells may come from besides the process memory: the cell backend hook.

Metrics never import the multiprocess package; it plugs in here instead
(:func:`install`). A family captures the installed backend when it is
created (``family.py``): a family made while none is installed makes its
cells as always, and pays nothing for the hook on any path; a family made
while one is installed asks it for its cell class once, at creation (which
may refuse the family with a typed error before anything is registered), and
for each new child's cell (then adopting the one that became the child).
"""

from typing import Optional, Protocol


class CellBackend(Protocol):
    """What a family asks of a backend (``family`` is a ``MetricFamily``)."""

    def cell_class(self, family: object) -> Optional[object]:
        """The cell class whose ``_read_many`` reads this family's cells, or None.

        None leaves the family in process memory. Called once, from
        ``MetricFamily.__init__``; may raise to refuse the family.
        """

    def new_cell(self, family: object, key: tuple[str, ...]) -> object:
        """A new cell for the child ``key`` (label values) of ``family``.

        Two threads creating the same child at once both get a new cell; only
        the one that becomes the child is then passed to :meth:`adopt`.
        """

    def adopt(self, cell: object) -> None:
        """``cell`` (from :meth:`new_cell`) is now its family's child."""


_installed: Optional[CellBackend] = None


def install(backend: Optional[CellBackend]) -> None:
    """Make ``backend`` the backend of the families created from now on (None: none)."""
    global _installed
    _installed = backend


def installed() -> Optional[CellBackend]:
    """The backend new families capture, or None."""
    return _installed
