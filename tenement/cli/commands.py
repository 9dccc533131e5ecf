"""The list of `ten` commands, one module per command group.

Commands are registered as :class:`LazyCommand` stand-ins that know only their name and
help text; the module defining the real command is imported the first time the command is
parsed, run or asked for its full help. So ``ten ps`` never imports the server, the store
(SQLAlchemy, alembic) or trio, and ``ten --help`` still lists every command.
"""

from __future__ import annotations

import gc
import importlib
from typing import Any

import click

# name -> (module under tenement.cli, attribute, short help, first help paragraph, hidden)
_TABLE: tuple[tuple[str, str, str, str | None, str, bool], ...] = (
    (
        "serve",
        "serve",
        "serve",
        None,
        "Start the HTTP server with dashboard and reverse proxy.",
        False,
    ),
    (
        "spawn",
        "instances",
        "spawn",
        "Spawn a new process instance (e.g., ten spawn api:prod)",
        "",
        False,
    ),
    ("stop", "instances", "stop", "Stop a running instance (e.g., ten stop api:prod)", "", False),
    (
        "restart",
        "instances",
        "restart",
        "Restart an instance (e.g., ten restart api:prod)",
        "",
        False,
    ),
    ("ps", "instances", "ps", "List running instances", "", False),
    ("ls", "instances", "ls", "List running instances (alias of ps)", "", True),
    (
        "health",
        "instances",
        "health",
        "Check health of an instance (e.g., ten health api:prod)",
        "",
        False,
    ),
    ("deploy", "deploy", "deploy", "Deploy a new version and wait for it to be healthy", "", False),
    ("weight", "deploy", "weight", "Set traffic weight for an instance (0-100)", "", False),
    (
        "route",
        "deploy",
        "route",
        "Atomically swap traffic from one version to another (blue/green)",
        "",
        False,
    ),
    ("logs", "logs", "logs", "Tail logs from running instances", "", False),
    ("nodes", "nodes", "nodes", "List the fleet's nodes (with [fleet])", "", False),
    ("move", "move", "move", "Move an instance and its data to another fleet node", "", False),
    (
        "drain",
        "nodes",
        "drain",
        "Move every tenant off a fleet node, placing none there",
        "",
        False,
    ),
    ("undrain", "nodes", "undrain", "Let a drained fleet node take tenants again", "", False),
    (
        "init",
        "init",
        "init",
        "Initialize a new tenement project in the current directory",
        "",
        False,
    ),
    (
        "config",
        "config",
        "config",
        None,
        "Show the effective configuration (tenement.toml with defaults).",
        False,
    ),
    (
        "reload",
        "reload",
        "reload",
        None,
        "Have the running server re-read tenement.toml; fail if it kept the running config.",
        False,
    ),
    (
        "token-gen",
        "tokens",
        "token_gen",
        None,
        "Generate a new API token (admin or tenant-scoped).",
        False,
    ),
    (
        "token-list",
        "tokens",
        "token_list",
        None,
        "List tenant tokens (never their secrets).",
        False,
    ),
    (
        "token-revoke",
        "tokens",
        "token_revoke",
        None,
        "Revoke the tenant token with this ID (see `ten token-list`).",
        False,
    ),
    ("db", "db", "db", None, "Database schema: show, upgrade, downgrade, back up.", False),
    ("caddy", "caddy", "caddy", "Generate Caddyfile for HTTPS reverse proxy", "", False),
    ("install", "install", "install", "Install tenement as a systemd service", "", False),
    (
        "uninstall",
        "install",
        "uninstall",
        "Remove the systemd service installed by `ten install`",
        "",
        False,
    ),
)


class LazyCommand(click.Command):
    """A registered command whose real definition is imported only when it is used.

    It carries the name and short help so the root ``--help`` can list it; parsing,
    invoking, usage, full help and completion all go to the real command, loaded from
    ``tenement.cli.<module>.<attribute>`` on first use.
    """

    def __init__(
        self,
        name: str,
        module: str,
        attribute: str,
        short_help: str | None,
        help: str,
        hidden: bool,
    ) -> None:
        super().__init__(name, help=help or None, short_help=short_help, hidden=hidden)
        self._target = (module, attribute)

    def real(self) -> click.Command:
        """Import and return the command this stands in for."""
        module, attribute = self._target
        command = getattr(importlib.import_module(f"tenement.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command

    def make_context(self, info_name, args, parent=None, **extra: Any) -> click.Context:  # type: ignore[no-untyped-def]
        # the context is the real command's: the group invokes that, not this stand-in
        command = self.real()
        if not gc.isenabled():
            # `ten` started with the collector off (tenement.cli.main); a command may run
            # for long (serve, logs -f), so it is on again, the start-up's objects frozen.
            # (In a process that kept it on, such as a test's CliRunner, nothing changes.)
            gc.freeze()
            gc.enable()
        return command.make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self.real().invoke(ctx)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.real().get_params(ctx)

    def get_usage(self, ctx: click.Context) -> str:
        return self.real().get_usage(ctx)

    def get_help(self, ctx: click.Context) -> str:
        return self.real().get_help(ctx)

    def shell_complete(self, ctx: click.Context, incomplete: str):  # type: ignore[no-untyped-def]
        return self.real().shell_complete(ctx, incomplete)

    def to_info_dict(self, ctx: click.Context) -> dict[str, Any]:
        return self.real().to_info_dict(ctx)


def all_commands() -> list[click.Command]:
    """Every `ten` command, as lazy stand-ins (see :class:`LazyCommand`)."""
    return [LazyCommand(*row) for row in _TABLE]
