"""`ten config`: show, dump or check the effective tenement.toml (local, no server).

Output (stdout) is the reference's, line for line, except that the data dir is the
absolute path that will really be used and services are in file order. Warnings go to
stderr as ``Warning: <file>:<line>: [table] key: ...``.

``--check`` validates as a reload would (an empty file is refused too) and prints what a
reload would change, compared with the config the server recorded when it applied it
(``{data_dir}/run/applied-config.json``): services added, changed (which keys), removed,
and, asking the server's API (``--server``/``--token``), the instances that would stop.
What it cannot know (no record, no server) is a ``Note:`` on stderr.

Exit codes: ``ten config`` 0 accepted (warnings allowed), 2 rejected (malformed TOML,
invalid values); ``ten config --check`` 0 valid, 1 invalid (also: empty, or an isolation
this build cannot run), 2 usage.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.errors import TenementError

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


class CheckFailed(TenementError):
    """`ten config --check` found the file invalid: exit 1, as a failed check."""

    exit_code = 1


def _checked(cli: CliContext) -> Config:
    """The config as a reload would take it, warnings printed; else ConfigError."""
    from tenement.config import UnsupportedIsolation, load_config

    loaded = load_config(
        path=cli.config_path,
        environ=os.environ,
        cwd=Path.cwd(),
        data_dir=cli.data_dir,
        refuse_empty=True,
    )
    fatal = loaded.unsupported()
    for warning in loaded.warnings:
        if warning not in fatal:
            click.echo(f"Warning: {warning}", err=True)
    if fatal:
        first = fatal[0]
        raise UnsupportedIsolation(
            "\n".join(str(problem) for problem in fatal),
            path=first.path,
            line=first.line,
            table=first.table,
            key=first.key,
        )
    return loaded


def _note(text: str) -> None:
    click.echo(f"Note: {text}", err=True)


def _print_reload_plan(cli: CliContext, loaded: Config) -> None:
    """What a reload would change, compared with the config the server recorded."""
    from tenement.config import applied_record_path, config_as_dict, config_changes, read_applied

    record = applied_record_path(loaded.settings.data_dir)
    try:
        applied = read_applied(loaded.settings.data_dir)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc
        _note(
            f"cannot read the running config recorded in {record}: {reason}; run as the "
            "server's user (or root) to see what a reload would change"
        )
        return
    if applied is None:
        _note(
            f"no server has recorded a running config in {record}: nothing to compare "
            "with (a server started on this file applies all of it)"
        )
        return
    changes = config_changes(applied.config, config_as_dict(loaded))
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(applied.applied_at))
    from tenement.processes import process_exists

    if process_exists(applied.pid):
        click.echo(f"A reload would change (from the config pid {applied.pid} applied {when}):")
    else:
        click.echo(
            f"Changes from the config last applied {when} (by pid {applied.pid}, which has "
            "exited; a server started on this file applies all of it):"
        )
    for line in changes.lines() or ["nothing"]:
        click.echo(f"  {line}")
    if changes.removed:
        _print_stopping(cli, set(changes.removed))


def _print_stopping(cli: CliContext, removed: set[str]) -> None:
    """The running instances of ``removed`` services, asked of the server's API."""
    from tenement.cli.client import ClientError, open_client

    try:
        with open_client(cli) as client:
            instances = client.json("GET", "/api/instances")
    except ClientError as exc:
        first = str(exc).splitlines()[0]
        _note(f"cannot list the instances that would stop ({first})")
        return
    stopping = sorted(
        str(row.get("id"))
        for row in instances
        if isinstance(row, dict) and row.get("service") in removed
    )
    click.echo(f"Instances that would stop: {', '.join(stopping) if stopping else 'none'}")


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print the whole effective config as JSON.")
@click.option(
    "--check",
    is_flag=True,
    help="Validate as a reload would and show what it would change; exit 0 if valid, 1 if not.",
)
@global_options
@pass_cli
def config(cli: CliContext, as_json: bool, check: bool) -> None:
    """Show the effective configuration (tenement.toml with defaults)."""
    from tenement.config import ConfigError, config_as_dict, load_config

    if as_json and check:
        raise click.UsageError("--json and --check cannot be used together")
    if check:
        try:
            loaded = _checked(cli)
        except ConfigError as exc:
            raise CheckFailed(str(exc)) from None
        counts = [_plural(len(loaded.services), "service")]
        if loaded.warnings:
            counts.append(_plural(len(loaded.warnings), "warning"))
        click.echo(f"{loaded.source}: OK ({', '.join(counts)})")
        _print_reload_plan(cli, loaded)
        return
    loaded = load_config(
        path=cli.config_path, environ=os.environ, cwd=Path.cwd(), data_dir=cli.data_dir
    )
    for warning in loaded.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if as_json:
        import json

        click.echo(json.dumps(config_as_dict(loaded), indent=2))
        return
    click.echo("\n".join(describe(loaded)))
