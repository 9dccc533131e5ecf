"""`ten nodes`: the fleet's nodes, as the server's ``GET /api/nodes`` answers."""

from __future__ import annotations

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.instances import echo_json, json_option


@click.command(short_help="List the fleet's nodes (with [fleet])")
@json_option
@global_options
@pass_cli
def nodes(cli: CliContext, as_json: bool) -> None:
    """List the fleet's nodes: name, address, version, state, last heartbeat, instances
    and memory (available/total). A server without [fleet] says it is not in a fleet."""
    from tenement.cli import render
    from tenement.cli.client import ClientError, open_client

    with open_client(cli) as client:
        response = client.request("GET", "/api/nodes")
        if as_json:
            echo_json(response.text)
            return
        answer = client.decode(response)
    if not isinstance(answer, dict) or "fleet" not in answer:
        raise ClientError(
            f"Server at {cli.server} answered GET /api/nodes with something else than a node "
            "list; is it a tenement server of 0.3 or later?"
        )
    click.echo(render.nodes_table(answer, cli.server))
