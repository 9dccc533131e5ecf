"""`ten spawn`, `stop`, `restart`, `ps` (alias `ls`) and `health`: one instance at a time.

Thin commands: parse the instance argument, call the server's REST API through
:mod:`tenement.cli.client` (imported inside the callbacks), print the reference's lines.
"""

from __future__ import annotations

import json

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.output import echo_lines
from tenement.errors import TenementError
from tenement.ids import InstanceRef, InvalidInstanceId


class InvalidInstanceFormat(TenementError):
    """An instance argument that is not ``process:id``; exit 1 as the reference does."""

    exit_code = 1


def parse_instance(text: str, *, example: str = "api:prod") -> InstanceRef:
    """Parse a ``process:id`` argument, with the reference's message for a missing part.

    Raises:
        InvalidInstanceFormat: no colon or an empty part (the reference's words), or a
            part that is not a valid name (the rule it breaks).
    """
    try:
        return InstanceRef.parse(text)
    except InvalidInstanceId as exc:
        service, sep, tenant = text.partition(":")
        if not sep or not service or not tenant:
            raise InvalidInstanceFormat(
                f"Invalid instance format '{text}'. Use 'process:id' (e.g., {example})"
            ) from exc
        raise InvalidInstanceFormat(exc.message) from exc


def echo_json(text: str) -> None:
    """Print a JSON body as the server sent it (``--json``), with one final newline."""
    click.echo(text.rstrip("\n"))


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the server's JSON answer as it is"
)


@click.command(short_help="Spawn a new process instance (e.g., ten spawn api:prod)")
@click.argument("instance")
@click.option("--id", "-i", "old_id", hidden=True, help="Old form: ten spawn api --id prod")
@click.option(
    "--node",
    metavar="NAME",
    help="In a fleet: start it on this node (ten nodes lists them); default: the live node "
    "with the most room that its service allows",
)
@global_options
@pass_cli
def spawn(cli: CliContext, instance: str, old_id: str | None, node: str | None) -> None:
    """Spawn a new process instance (e.g., ten spawn api:prod).

    INSTANCE is process:id. Spawning a running instance changes nothing. In a fleet,
    --node NAME starts it on that node (the call is relayed there); without it, it is
    placed on the live node with the most free capacity among those its service's
    [service.X] nodes allows (an instance that ran before stays on its node).
    """
    if old_id is not None:
        if ":" in instance:
            raise click.UsageError(
                f"give the instance either as '{instance}' or with --id, not both"
            )
        instance = f"{instance}:{old_id}"
        click.echo(
            f"Note: `--id` is deprecated; use `ten spawn {instance}`",
            err=True,
        )
    ref = parse_instance(instance)
    from tenement.cli.client import open_client

    request: dict[str, str] = {"process": ref.service, "id": ref.tenant}
    if node is not None:
        request["node"] = node
    with open_client(cli) as client:
        body = client.json("POST", "/api/instances/spawn", json_body=request)
    lines = [f"Spawned {body.get('instance', ref)}"]
    if body.get("port") is not None:
        lines.append(f"Listening on 127.0.0.1:{body['port']}")
    echo_lines(lines)


@click.command(short_help="Stop a running instance (e.g., ten stop api:prod)")
@click.argument("instance")
@global_options
@pass_cli
def stop(cli: CliContext, instance: str) -> None:
    """Stop a running instance (e.g., ten stop api:prod)."""
    ref = parse_instance(instance)
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        client.request("DELETE", f"/api/instances/{ref}")
    click.echo(f"Stopped {ref}")


@click.command(short_help="Restart an instance (e.g., ten restart api:prod)")
@click.argument("instance")
@global_options
@pass_cli
def restart(cli: CliContext, instance: str) -> None:
    """Restart an instance (e.g., ten restart api:prod).

    A configured instance that is not running is started.
    """
    ref = parse_instance(instance)
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        client.request("POST", f"/api/instances/{ref}/restart")
    click.echo(f"Restarted {ref}")


def _ps(cli: CliContext, as_json: bool, node: str | None) -> None:
    from tenement.cli import render
    from tenement.cli.client import ClientError, open_client

    with open_client(cli) as client:
        params = None if node is None else {"node": node}
        response = client.request("GET", "/api/instances", params=params)
        if as_json and node is None:
            echo_json(response.text)
            return
        instances = client.decode(response)
    if not isinstance(instances, list) or not all(isinstance(i, dict) for i in instances):
        raise ClientError(
            f"Server at {cli.server} answered GET /api/instances with something that is not "
            "a list of instances; is it a tenement server?"
        )
    if node is not None:
        # a server that does not know ?node= (a single host of 0.2.2) lists everything
        if instances and not all("node" in item for item in instances):
            raise ClientError(
                f"Server at {cli.server} is not a fleet node: its instances have no node; "
                "run ten ps without --node"
            )
        instances = [item for item in instances if item.get("node") == node]
        if as_json:
            echo_json(json.dumps(instances))
            return
    click.echo(render.ps_table(instances, cli.server))


node_filter = click.option(
    "--node",
    metavar="NAME",
    default=None,
    help="In a fleet: only this node's instances (ten nodes lists them)",
)


@click.command(short_help="List running instances")
@json_option
@node_filter
@global_options
@pass_cli
def ps(cli: CliContext, as_json: bool, node: str | None) -> None:
    """List running instances; on a fleet node, every node's (--node NAME: one node's)."""
    _ps(cli, as_json, node)


@click.command(hidden=True, short_help="List running instances (alias of ps)")
@json_option
@node_filter
@global_options
@pass_cli
def ls(cli: CliContext, as_json: bool, node: str | None) -> None:
    """List running instances (alias of ps)."""
    _ps(cli, as_json, node)


@click.command(short_help="Check health of an instance (e.g., ten health api:prod)")
@click.argument("instance")
@json_option
@global_options
@pass_cli
def health(cli: CliContext, instance: str, as_json: bool) -> None:
    """Check health of an instance (e.g., ten health api:prod).

    Runs an active check now; an instance that is not running is `unknown`.
    """
    ref = parse_instance(instance)
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        response = client.request("GET", f"/api/instances/{ref}/health")
        if as_json:
            echo_json(response.text)
            return
        body = client.decode(response)
    click.echo(f"{body.get('instance', ref)}: {body.get('health', 'unknown')}")
