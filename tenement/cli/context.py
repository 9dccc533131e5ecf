"""The options every `ten` command takes, gathered into one object (``pass_obj``).

The reference lets the global flags stand before or after the subcommand
(``ten --server X ps`` and ``ten ps --server X``); :func:`global_options` is put on the
root group and on each command so both orders work, the later one winning.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

DEFAULT_SERVER = "http://localhost:8080"


@dataclasses.dataclass
class CliContext:
    """What the global options said. Filled by the root group, refined per command."""

    server: str = DEFAULT_SERVER
    token: str | None = None
    data_dir: Path | None = None
    config_path: Path | None = None


def _store(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            if field == "server":
                value = value.rstrip("/")
            setattr(ctx.ensure_object(CliContext), field, value)
        return value

    return callback


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add --server/--token/--data-dir/--config; their values land in :class:`CliContext`."""
    options = [
        click.option(
            "--server",
            envvar="TENEMENT_SERVER",
            expose_value=False,
            callback=_store("server"),
            help=f"Server URL for client commands (default: {DEFAULT_SERVER}) "
            "[env: TENEMENT_SERVER]",
        ),
        click.option(
            "--token",
            expose_value=False,
            callback=_store("token"),
            help="API token (overrides TENEMENT_TOKEN and the token file)",
        ),
        click.option(
            "--data-dir",
            envvar="TENEMENT_DATA_DIR",
            type=click.Path(path_type=Path),
            expose_value=False,
            callback=_store("data_dir"),
            help="Data directory (DB, tokens). Overrides data_dir in tenement.toml "
            "[env: TENEMENT_DATA_DIR]",
        ),
        click.option(
            "--config",
            envvar="TENEMENT_CONFIG",
            type=click.Path(path_type=Path),
            expose_value=False,
            callback=_store("config_path"),
            help="Path to tenement.toml (default: search up from the working directory) "
            "[env: TENEMENT_CONFIG]",
        ),
    ]
    return functools.reduce(lambda acc, option: option(acc), reversed(options), f)


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
