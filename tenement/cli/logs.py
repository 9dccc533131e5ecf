"""`ten logs`: the captured stdout/stderr of instances, once or followed live (SSE)."""

from __future__ import annotations

import json
import sys

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.instances import echo_json, json_option, parse_instance
from tenement.cli.output import echo_lines


@click.command(short_help="Tail logs from running instances")
@click.argument("instance", required=False)
@click.option("--level", type=click.Choice(["stdout", "stderr"]), help="Filter by log level")
@click.option("--search", help="Search log messages (ignored with --follow)")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Maximum number of entries (ignored with --follow)",
)
@click.option("-f", "--follow", is_flag=True, help="Follow logs in real-time (stream new entries)")
@json_option
@global_options
@pass_cli
def logs(
    cli: CliContext,
    instance: str | None,
    level: str | None,
    search: str | None,
    limit: int,
    follow: bool,
    as_json: bool,
) -> None:
    """Tail logs from running instances.

    INSTANCE is process:id (e.g. api:prod); omit it for all instances. Lines print as
    `HH:MM:SS [OUT|ERR] process:id message` (UTC); with --follow, new lines print as
    `[OUT|ERR] process:id message` until interrupted. With --json the server's JSON is
    printed (with --follow: one entry per line). On a terminal, control characters in
    the lines are escaped (a tenant's output cannot drive it); piped, they pass as 0.2.2
    passes them.
    """
    params: dict[str, str | int] = {}
    if instance is not None:
        ref = parse_instance(instance)
        params.update(process=ref.service, id=ref.tenant)
    if level is not None:
        params["level"] = level
    from tenement.cli import render
    from tenement.cli.client import ClientError, open_client

    safe = _for_terminal if sys.stdout.isatty() else _as_is
    with open_client(cli) as client:
        if follow:
            try:
                for data in client.sse("/api/logs/stream", params=params):
                    if as_json:
                        click.echo(data)
                        continue
                    try:
                        entry = json.loads(data)
                    except (json.JSONDecodeError, RecursionError):
                        continue  # not a log entry (RecursionError: nested too deep)
                    if isinstance(entry, dict):
                        click.echo(safe(render.follow_line(entry)))
            except KeyboardInterrupt:
                return
            raise ClientError(f"Log stream from {client.server} ended (the server closed it)")
        params["limit"] = limit
        if search is not None:
            params["search"] = search
        response = client.request("GET", "/api/logs", params=params)
        if as_json:
            echo_json(response.text)
            return
        entries = client.decode(response)
    listed = entries if isinstance(entries, list) else []
    echo_lines(safe(render.log_line(entry)) for entry in listed)


def _as_is(line: str) -> str:
    return line


def _for_terminal(line: str) -> str:
    """``line`` with control characters escaped but its tabs kept: a tenant printing
    ``ESC ] 0 ; … BEL`` would otherwise retitle, or worse drive, the admin's terminal."""
    from tenement.shown import shown

    return "\t".join(shown(part) for part in line.split("\t"))
