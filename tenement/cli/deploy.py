"""`ten deploy`, `ten weight` and `ten route`: shifting traffic between versions.

A version is an instance id (``api:v2``); weights decide how the proxy shares a
service's traffic between its instances (blue/green, canary).
"""

from __future__ import annotations

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.instances import InvalidInstanceFormat, parse_instance
from tenement.cli.output import echo_lines
from tenement.ids import NAME_RULE, is_valid_name

#: the reference parses weights as u8 (0-255); the server caps them at 100
WEIGHT = click.IntRange(0, 255)


@click.command(short_help="Set traffic weight for an instance (0-100)")
@click.argument("instance")
@click.argument("weight", type=WEIGHT)
@global_options
@pass_cli
def weight(cli: CliContext, instance: str, weight: int) -> None:
    """Set traffic weight for an instance (0-100).

    INSTANCE is process:id. WEIGHT above 100 is capped to 100 by the server; the line
    printed shows the weight the server set.
    """
    ref = parse_instance(instance)
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        body = client.json("PUT", f"/api/instances/{ref}/weight", json_body={"weight": weight})
    click.echo(f"Set {body.get('instance', ref)} weight to {body.get('weight', weight)}")


@click.command(short_help="Deploy a new version and wait for it to be healthy")
@click.argument("instance", metavar="INSTANCE")
@click.option(
    "-w",
    "--weight",
    "weight_",
    type=WEIGHT,
    default=100,
    show_default=True,
    help="Initial traffic weight (0-100)",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Health check timeout in seconds",
)
@click.option("--version", "old_version", hidden=True, help="Old form: ten deploy api --version v2")
@global_options
@pass_cli
def deploy(
    cli: CliContext, instance: str, weight_: int, timeout: int, old_version: str | None
) -> None:
    """Deploy a new version and wait for it to be healthy.

    INSTANCE is process:version (e.g., api:v2). The old version keeps running; shift
    traffic with `ten route` or `ten weight`.
    """
    if old_version is not None:
        if ":" in instance:
            raise click.UsageError(
                f"give the version either as '{instance}' or with --version, not both"
            )
        instance = f"{instance}:{old_version}"
        click.echo(f"Note: `--version` is deprecated; use `ten deploy {instance}`", err=True)
    ref = parse_instance(instance, example="api:v2")
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        echo_lines(
            [
                f"Deploying {ref} with weight {weight_}",
                f"Waiting for health check (timeout: {timeout}s)...",
            ]
        )
        body = client.json(
            "POST",
            "/api/deploy",
            json_body={
                "process": ref.service,
                "version": ref.tenant,
                "weight": weight_,
                "timeout": timeout,
            },
            timeout=timeout + 10,
        )
    echo_lines(
        [
            f"Deployed {body.get('instance', ref)}",
            f"Weight: {body.get('weight', weight_)}",
            f"Status: {body.get('status', 'healthy')}",
        ]
    )


@click.command(short_help="Atomically swap traffic from one version to another (blue/green)")
@click.argument("process")
@click.option("--from", "from_", required=True, help="Source version (will be set to weight 0)")
@click.option("--to", "to", required=True, help="Target version (will be set to weight 100)")
@global_options
@pass_cli
def route(cli: CliContext, process: str, from_: str, to: str) -> None:
    """Atomically swap traffic from one version to another (blue/green).

    PROCESS is the service name from tenement.toml; --from gets weight 0, --to gets 100.
    """
    for label, text in (("process", process), ("--from", from_), ("--to", to)):
        if not is_valid_name(text):
            raise InvalidInstanceFormat(f"Invalid {label} '{text}': must be {NAME_RULE}")
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        body = client.json(
            "POST", "/api/route", json_body={"process": process, "from": from_, "to": to}
        )
    source = body.get("from_instance", f"{process}:{from_}")
    target = body.get("to_instance", f"{process}:{to}")
    echo_lines(
        [
            f"Routed traffic: {source} -> {target}",
            f"  {source} weight = {body.get('from_weight', 0)}",
            f"  {target} weight = {body.get('to_weight', 100)}",
        ]
    )
