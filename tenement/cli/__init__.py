"""`ten`: the command line (the root group is in :mod:`tenement.cli.root`).

This module imports nothing but the standard library's ``sys``: ``ten --version`` and
``ten -V`` are answered here, without click (~30 ms to import), and everything else goes
to the click group. ``from tenement.cli import ten`` still gives the group.
"""

from __future__ import annotations

import sys

#: typing itself costs a few ms at start; type checkers treat this name as True
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tenement.cli.root import ten

__all__ = ["main", "ten"]


def main() -> None:
    """The ``ten`` entry point."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        # what click's version option prints, as the reference does
        from tenement._version import __version__

        sys.stdout.write(f"tenement {__version__}\n")
        return
    from tenement.cli.root import main as run

    run()


def __getattr__(name: str) -> object:
    if name == "ten":
        from tenement.cli.root import ten as group

        return group
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
