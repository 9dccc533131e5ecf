"""`ten nodes`: the fleet's nodes, as the server's ``GET /api/nodes`` answers."""

from __future__ import annotations

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.instances import echo_json, json_option

#: the most ``--parallel`` takes (the server's ``tenement.store.drain.MAX_PARALLEL``; the
#: CLI imports no server module)
MAX_PARALLEL = 32


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


@click.command(short_help="Move every tenant off a fleet node, placing none there")
@click.argument("node")
@click.option(
    "--parallel",
    type=click.IntRange(1, MAX_PARALLEL),
    default=None,
    metavar="N",
    help=f"Move N tenants at once (1 to {MAX_PARALLEL}; default 1, or for a node "
    "draining already, what its drain was given: this changes it)",
)
@json_option
@global_options
@pass_cli
def drain(cli: CliContext, node: str, parallel: int | None, as_json: bool) -> None:
    """Drain fleet NODE: no tenant is placed on it any more (spawn without --node,
    failover), and it moves its tenants away, one at a time (or N with --parallel N),
    each as ten move does, to the node placement chooses among those its service
    allows. Returns at once; ten nodes shows how many are left. Goes on, as asked, if
    NODE's server restarts; ten undrain NODE stops it."""
    from tenement.cli.client import open_client

    body = {"parallel": parallel} if parallel is not None else {}
    with open_client(cli) as client:
        response = client.request("POST", f"/api/nodes/{_path(node)}/drain", json_body=body)
        if as_json:
            echo_json(response.text)
            return
        answer = client.decode(response)
    answer = answer if isinstance(answer, dict) else {}
    left = answer.get("instances_left", 0)
    at_once = answer.get("parallel", 1)
    how = "one at a time" if at_once == 1 else f"{at_once} at a time"
    if answer.get("already"):
        click.echo(f"{node} is draining already: {left} instance(s) left to move, {how}")
    else:
        click.echo(
            f"Draining {node}: its {left} instance(s) move to other nodes, {how} "
            "(ten nodes shows how many are left)"
        )


@click.command(short_help="Let a drained fleet node take tenants again")
@click.argument("node")
@json_option
@global_options
@pass_cli
def undrain(cli: CliContext, node: str, as_json: bool) -> None:
    """Put fleet NODE back to up: it takes new tenants again, and no further tenant
    moves off it (a move under way finishes). Harmless for a node that is not draining."""
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        response = client.request("POST", f"/api/nodes/{_path(node)}/undrain")
        if as_json:
            echo_json(response.text)
            return
        answer = client.decode(response)
    answer = answer if isinstance(answer, dict) else {}
    left = answer.get("instances_left", 0)
    if answer.get("was_draining"):
        click.echo(f"{node} is up again: {left} instance(s) stay on it")
    else:
        click.echo(f"{node} was not draining (it is {answer.get('state', '?')}): nothing changed")


def _path(node: str) -> str:
    from urllib.parse import quote

    return quote(node, safe="")
