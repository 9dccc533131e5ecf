"""The list of `ten` commands, one module per command group."""

from __future__ import annotations

import click


def all_commands() -> list[click.Command]:
    from tenement.cli import caddy, db, deploy, init, install, instances, logs, serve, tokens
    from tenement.cli.config import config

    return [
        serve.serve,
        *instances.COMMANDS,
        *deploy.COMMANDS,
        logs.logs,
        init.init,
        config,
        *tokens.COMMANDS,
        db.db,
        caddy.caddy,
        *install.COMMANDS,
    ]
