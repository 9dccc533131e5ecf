"""`ten config`: show, dump or check the effective tenement.toml (local, no server).

Output (stdout) is the reference's, line for line, except that the data dir is the
absolute path that will really be used and services are in file order. Warnings go to
stderr as ``Warning: <file>:<line>: [table] key: ...``.

Exit codes: 0 the config is accepted (warnings allowed); 2 it is rejected (malformed
TOML, invalid values, or with ``--check`` an isolation this build cannot run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tenement.cli.context import CliContext, global_options, pass_cli

if TYPE_CHECKING:
    from tenement.config import Config


def _seconds(value: float) -> str:
    return f"{int(value)}s" if float(value).is_integer() else f"{value}s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _debug_str(text: str) -> str:
    """Quote like Rust's ``{:?}`` does for a path, as the reference prints the data dir."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif not char.isprintable():
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def describe(config: Config) -> list[str]:
    """The reference's `ten config` lines for a loaded config."""
    settings = config.settings
    lines = [
        f"Data dir: {_debug_str(str(settings.data_dir))}",
        f"Health interval: {_seconds(settings.health_check_interval)}",
        "",
        "Services:",
    ]
    for name, service in config.services.items():
        lines.append(f"  [{name}]")
        lines.append(f"    command: {service.command}")
        lines.append(f"    isolation: {service.isolation}")
        if service.health is not None:
            lines.append(f"    health: {service.health}")
        if service.idle_timeout is not None:
            lines.append(f"    idle_timeout: {_seconds(service.idle_timeout)}")
    return lines


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print the whole effective config as JSON.")
@click.option(
    "--check",
    is_flag=True,
    help="Only validate: print warnings and errors; exit 0 if accepted, 2 if rejected.",
)
@global_options
@pass_cli
def config(cli: CliContext, as_json: bool, check: bool) -> None:
    """Show the effective configuration (tenement.toml with defaults)."""
    from tenement.config import UnsupportedIsolation, config_as_dict, load_config

    if as_json and check:
        raise click.UsageError("--json and --check cannot be used together")
    loaded = load_config(
        path=cli.config_path, environ=os.environ, cwd=Path.cwd(), data_dir=cli.data_dir
    )
    fatal = loaded.unsupported() if check else ()
    for warning in loaded.warnings:
        if warning not in fatal:
            click.echo(f"Warning: {warning}", err=True)
    if check:
        if fatal:
            first = fatal[0]
            raise UnsupportedIsolation(
                "\n".join(str(problem) for problem in fatal),
                path=first.path,
                line=first.line,
                table=first.table,
                key=first.key,
            )
        counts = [_plural(len(loaded.services), "service")]
        if loaded.warnings:
            counts.append(_plural(len(loaded.warnings), "warning"))
        click.echo(f"{loaded.source}: OK ({', '.join(counts)})")
        return
    if as_json:
        click.echo(json.dumps(config_as_dict(loaded), indent=2))
        return
    click.echo("\n".join(describe(loaded)))
