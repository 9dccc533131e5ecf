"""The list of `ten` commands, one module per command group."""

from __future__ import annotations

import click


def all_commands() -> list[click.Command]:
    return []
