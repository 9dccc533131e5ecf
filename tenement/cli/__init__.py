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
    import atexit
    import gc

    # Start-up makes tens of thousands of tracked objects (click, typing, the config
    # classes...), next to none of them garbage, and the cyclic collector scanned them
    # again and again while they were made, and all once more at exit: ~15 ms of CPU of
    # a 70 ms command. So it is off until the command is parsed (LazyCommand.make_context
    # in commands.py turns it on, the objects so far frozen out of its way), and at exit
    # everything still alive is frozen: the process is ending, files are closed by their
    # `with` blocks, and the atexit handlers registered after this one (logging's flush)
    # have run by then.
    gc.disable()
    atexit.register(gc.freeze)
    from tenement.cli.root import main as run

    run()


def __getattr__(name: str) -> object:
    if name == "ten":
        from tenement.cli.root import ten as group

        return group
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
