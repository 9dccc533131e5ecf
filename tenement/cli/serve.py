"""`ten serve`: the only command that runs the server (everything else talks to it)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tenement.cli.context import CliContext, global_options, pass_cli


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
@click.option(
    "--tls",
    is_flag=True,
    help="Serve HTTPS with certificates from an ACME CA (Let's Encrypt by default); "
    "for production, Caddy in front (`ten caddy`) is recommended",
)
@click.option("--email", help="Email for the ACME account (required with --tls)")
@click.option("--staging", is_flag=True, help="Use Let's Encrypt's staging directory (with --tls)")
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
    if email is not None and not tls:
        raise click.UsageError("--email requires --tls")
    import attrs

    from tenement.config import MAX_WORKERS, load_config
    from tenement.server.run import ServeOptions, run
    from tenement.tls.checks import TlsFlags, resolve_tls

    domain_source = click.get_current_context().get_parameter_source("domain")
    flags = TlsFlags(
        tls=tls,
        email=email,
        staging=staging,
        domain=domain,
        domain_given=domain_source is not click.core.ParameterSource.DEFAULT,
    )

    if workers is not None and workers > MAX_WORKERS:
        raise click.BadParameter(
            f"{workers} is more than {MAX_WORKERS} serving processes; use 0 for one per CPU",
            param_hint="'--workers'",
        )

    cwd = Path.cwd()

    def read_config(*, refuse_empty: bool = False):  # type: ignore[no-untyped-def]
        config = load_config(
            path=cli.config_path,
            environ=os.environ,
            cwd=cwd,
            data_dir=cli.data_dir,
            refuse_empty=refuse_empty,
        )
        # the command line's TLS flags apply at every read (a reload too), and the
        # checks with them: a file that fails them keeps the running configuration
        settings = config.settings
        resolved = resolve_tls(settings.tls, flags)
        return attrs.evolve(config, settings=attrs.evolve(settings, tls=resolved))

    options = ServeOptions(port=port, domain=domain, binds=binds)
    run(read_config, options, environ=os.environ, log_level=log_level.upper(), workers=workers)
