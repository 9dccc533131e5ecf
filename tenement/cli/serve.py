"""`ten serve`: the only command that runs the server (everything else talks to it)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.errors import TenementError


@click.command()
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("-d", "--domain", default="localhost", show_default=True)
@click.option(
    "--bind",
    "binds",
    multiple=True,
    metavar="ADDR",
    help="HOST:PORT or unix:PATH to listen on (repeatable); ignored when systemd passes sockets",
)
@click.option("--tls", is_flag=True, help="Built-in ACME TLS (not supported: use `ten caddy`)")
@click.option("--email", help="ACME account email (with --tls)")
@click.option("--staging", is_flag=True, help="ACME staging directory (with --tls)")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Serving processes in all, at most 256 (0: one per CPU); default: [settings] "
    "workers, else 1",
)
@click.option("--log-level", default="info", show_default=True, help="debug, info, warning, error")
@global_options
@pass_cli
def serve(
    cli: CliContext,
    port: int,
    domain: str,
    binds: tuple[str, ...],
    tls: bool,
    email: str | None,
    staging: bool,
    workers: int | None,
    log_level: str,
) -> None:
    """Start the HTTP server with dashboard and reverse proxy."""
    if email and not tls:
        raise click.UsageError("--email requires --tls")
    if tls:
        raise TenementError(
            "Built-in TLS (--tls) is not supported by this build. Run Caddy in front of "
            "tenement instead: `ten caddy --domain <domain>` writes its configuration."
        )
    from tenement.config import MAX_WORKERS, load_config
    from tenement.server.run import ServeOptions, run

    if workers is not None and workers > MAX_WORKERS:
        raise click.BadParameter(
            f"{workers} is more than {MAX_WORKERS} serving processes; use 0 for one per CPU",
            param_hint="'--workers'",
        )

    cwd = Path.cwd()

    def read_config(*, refuse_empty: bool = False):  # type: ignore[no-untyped-def]
        return load_config(
            path=cli.config_path,
            environ=os.environ,
            cwd=cwd,
            data_dir=cli.data_dir,
            refuse_empty=refuse_empty,
        )

    options = ServeOptions(port=port, domain=domain, binds=binds)
    run(read_config, options, environ=os.environ, log_level=log_level.upper(), workers=workers)
