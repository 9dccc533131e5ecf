"""`ten move`: a tenant and its data to another node of the fleet (docs/fleet.md)."""

from __future__ import annotations

from typing import Any

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.instances import echo_json, json_option, parse_instance

#: how long the CLI waits for a move: the data is sent before the server answers
MOVE_TIMEOUT_SECONDS = 3600.0


@click.command(short_help="Move an instance and its data to another fleet node")
@click.argument("instance")
@click.option("--to", "to", required=True, metavar="NODE", help="The node to move it to")
@json_option
@global_options
@pass_cli
def move(cli: CliContext, instance: str, to: str, as_json: bool) -> None:
    """Move INSTANCE (process:id) and its data to fleet node NODE.

    Its requests wait while it moves (a pause, not an error): it is stopped, its data
    directory is sent to NODE and checked there, NODE runs it from then on. The data
    stays on the old node too, as moved-ID-TIME beside where it was. If anything fails
    before NODE has it, it runs where it was again, with its data.
    """
    ref = parse_instance(instance)
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        response = client.request(
            "POST",
            f"/api/instances/{ref}/move",
            json_body={"to": to},
            timeout=MOVE_TIMEOUT_SECONDS,
        )
        if as_json:
            echo_json(response.text)
            return
        report = client.decode(response)
    click.echo(summary(report if isinstance(report, dict) else {}, str(ref), to))


def summary(report: dict[str, Any], instance: str, to: str) -> str:
    """What the move did, in a few lines."""
    size = report.get("bytes") or 0
    lines = [f"Moved {instance} from {report.get('from', '?')} to {report.get('to', to)}"]
    lines.append(
        f"  stopped in {report.get('stop_secs', 0):.2f}s, "
        f"data {size / (1024 * 1024):.1f} MB ({report.get('entries', 0)} entries) sent in "
        f"{report.get('transfer_secs', 0):.2f}s, started in {report.get('start_secs', 0):.2f}s"
    )
    if report.get("kept"):
        lines.append(f"  the old node keeps its copy of the data in {report['kept']}")
    return "\n".join(lines)
