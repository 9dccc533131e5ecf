"""The list of `ten` commands, one module per command group."""

from __future__ import annotations

import click


def all_commands() -> list[click.Command]:
    from tenement.cli import caddy, deploy, init, instances, logs

    commands: list[click.Command] = []
    commands += [*instances.COMMANDS, *deploy.COMMANDS, logs.logs, init.init, caddy.caddy]
    from tenement.cli.config import config

    commands.append(config)
    from tenement.cli import db, tokens

    commands += [db.db, *tokens.COMMANDS]
    return commands
