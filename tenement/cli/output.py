"""Writing a command's output: in one piece, and quietly when the reader has gone.

``ten spawn X | head -1`` reads one line and exits. A command that wrote its lines one
by one could find the pipe closed between two of them; one write per command (the
usual case: a few lines) lets the reader take all of it. A reader that closes the pipe
anyway has all it wanted, so that ends the command with exit 0 and no message, as
``set -o pipefail`` scripts expect (``yes | head -1`` style).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import click


def echo_lines(lines: Iterable[str]) -> None:
    """Print ``lines`` with one write (nothing for no lines)."""
    text = "\n".join(lines)
    if text:
        click.echo(text)


def discard_stdout() -> None:
    """Point stdout at /dev/null, so the rest (and the flush at exit) cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's buffer): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
