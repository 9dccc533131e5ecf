"""`ten install` / `ten uninstall`: run tenement as a systemd service from a pip install.

The files installed are exactly the ones in ``units/`` (shipped in the wheel as
``tenement/_units``): ``tenement.socket`` and ``tenement.service`` into
``/etc/systemd/system``, the sysusers.d and tmpfiles.d files into ``/etc``, and the
default ``tenement.toml`` into ``/etc/tenement`` unless a config is already there. What
differs from the units (the path of this ``ten``, ``--domain``, ``--port``) goes into
drop-ins named ``10-install.conf``, so the unit text itself is never edited. ``--tls``
adds ``units/examples/tls.conf`` as ``tenement.socket.d/20-tls.conf`` (the HTTPS and HTTP
ports held by systemd) and ``--tls`` to ``ten serve``.

The Debian and RPM packages install the same units under ``/lib/systemd/system``; a
packaged tenement is configured with drop-ins, not with `ten install`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.errors import TenementError

if TYPE_CHECKING:
    from tenement.config import TlsSettings

SYSTEMD_DIR = Path("/etc/systemd/system")
SYSUSERS_FILE = Path("/etc/sysusers.d/tenement.conf")
TMPFILES_FILE = Path("/etc/tmpfiles.d/tenement.conf")
CONFIG_FILE = Path("/etc/tenement/tenement.toml")
STATE_DIR = Path("/var/lib/tenement")
PACKAGED_UNIT = Path("/lib/systemd/system/tenement.service")
DROPIN_NAME = "10-install.conf"
#: built-in TLS's socket drop-in (units/examples/tls.conf)
TLS_DROPIN_NAME = "20-tls.conf"
TLS_DROPIN_HEADER = (
    "# Written by `ten install --tls`; removed by `ten uninstall` (and by `ten install`\n"
    "# without --tls while [settings.tls] is not enabled).\n"
)
UNIT_TEN = "/usr/bin/ten"
RELOAD = ("systemctl", "daemon-reload")
DEFAULT_PORT = 8080


class InstallError(TenementError):
    exit_code = 1


def units_dir() -> Path:
    """Where the unit files are: ``tenement/_units`` in a wheel, else the repository's ``units/``.

    Raises:
        InstallError: neither exists (a broken install).
    """
    import tenement

    package = Path(tenement.__file__).resolve().parent
    for candidate in (package / "_units", package.parent / "units"):
        if (candidate / "tenement.service").is_file():
            return candidate
    raise InstallError(
        f"the systemd unit files are missing (looked in {package / '_units'} and "
        f"{package.parent / 'units'}); reinstall tenement-py"
    )


def require_root(euid: int, command: str) -> None:
    """Refuse to go on unless ``euid`` is root, telling the user what to run instead."""
    if euid != 0:
        raise InstallError(
            f"`ten {command}` needs root: it writes /etc/systemd/system and runs systemctl. "
            f"Run `sudo ten {command} ...`, or `ten {command} --dry-run` to see what it would do"
        )


#: what a changed file of each unit takes: a running socket must be restarted to listen
#: on new ports (systemd opens them only at its start; the restart propagates to the
#: service, which gets RestartKillSignal=, so the tenants are kept), and a running
#: service to run a new ExecStart=
SOCKET_UNITS = ("tenement.socket", "tenement.service")
SERVICE_UNITS = ("tenement.service",)


@attrs.frozen
class PlannedFile:
    path: Path
    text: str
    #: False: kept if already there (the config)
    overwrite: bool = True
    #: the units to restart, if they run, when this file changes
    restarts: tuple[str, ...] = ()


@attrs.frozen
class InstallPlan:
    """Everything `ten install` will write and run, in order."""

    files: tuple[PlannedFile, ...]
    commands: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    #: socket drop-ins to remove (an earlier `ten install --tls`'s, TLS now off)
    removals: tuple[Path, ...] = ()


def _directive_lines(unit_text: str, key: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in unit_text.splitlines()
        if line.strip().startswith(f"{key}=")
    ]


def service_dropin(
    unit_text: str, *, ten_path: str, domain: str | None, serve_args: Sequence[str] = ()
) -> str | None:
    """The ``tenement.service.d/10-install.conf`` text, or None when the unit fits as is.

    The unit runs ``/usr/bin/ten``; another ``ten`` (a venv's), a ``--domain`` or more
    ``serve_args`` (``--tls --email ...``) rewrite its ``ExecStart=`` (the unit's own
    line with the path swapped and the options added).
    """
    (exec_start,) = _directive_lines(unit_text, "ExecStart")
    if ten_path == UNIT_TEN and domain is None and not serve_args:
        return None
    argv = exec_start.split()
    if argv[0] == UNIT_TEN:
        argv[0] = ten_path
    if domain is not None:
        argv += ["--domain", domain]
    argv += serve_args
    return (
        "# Written by `ten install`; removed by `ten uninstall`.\n"
        "[Service]\n"
        "ExecStart=\n"
        f"ExecStart={' '.join(argv)}\n"
    )


def socket_dropin(socket_text: str, *, port: int | None) -> str | None:
    """The ``tenement.socket.d/10-install.conf`` text for another TCP port, or None."""
    if port is None or port == DEFAULT_PORT:
        return None
    listens = [
        str(port) if re.fullmatch(r"\d+", value.strip()) else value.strip()
        for value in _directive_lines(socket_text, "ListenStream")
    ]
    lines = "".join(f"ListenStream={value}\n" for value in listens)
    return (
        f"# Written by `ten install`; removed by `ten uninstall`.\n[Socket]\nListenStream=\n{lines}"
    )


def tls_socket_dropin(example_text: str, *, https_port: int, http_port: int) -> str:
    """``units/examples/tls.conf`` for ``tenement.socket.d/20-tls.conf``, its ports
    swapped for [settings.tls] ``https_port`` and ``http_port``."""
    text = example_text.replace("ListenStream=443\n", f"ListenStream={https_port}\n")
    text = text.replace("ListenStream=80\n", f"ListenStream={http_port}\n")
    return TLS_DROPIN_HEADER + text


def this_ten() -> str:
    """The absolute path of the ``ten`` being run (the service will run the same one)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "ten" and argv0.is_file():
        # abspath, not resolve: /usr/bin/ten (a symlink into the package's venv) stays itself
        return os.path.abspath(argv0)
    return shutil.which("ten") or UNIT_TEN


def make_plan(
    *,
    units: Path,
    config_source: Path,
    ten_path: str,
    domain: str | None,
    port: int | None,
    config_present: bool,
    tls: TlsSettings | None = None,
    serve_args: Sequence[str] = (),
    stale_tls_dropin: bool = False,
) -> InstallPlan:
    """What to install, from the unit files in ``units`` (pure: reads only ``units``).

    ``tls``: the checked [settings.tls] of ``ten install --tls`` (its ports go into the
    socket drop-in); ``serve_args``: options added to ``ten serve``;
    ``stale_tls_dropin``: an earlier ``--tls``'s socket drop-in is there and TLS is now
    off (it is removed: the socket would go on holding the HTTPS and HTTP ports, and
    the server would answer plain HTTP on them).
    """
    service = (units / "tenement.service").read_text()
    socket = (units / "tenement.socket").read_text()
    files = [
        PlannedFile(SYSTEMD_DIR / "tenement.socket", socket, restarts=SOCKET_UNITS),
        PlannedFile(SYSTEMD_DIR / "tenement.service", service, restarts=SERVICE_UNITS),
        PlannedFile(SYSUSERS_FILE, (units / "sysusers.d" / "tenement.conf").read_text()),
        PlannedFile(TMPFILES_FILE, (units / "tmpfiles.d" / "tenement.conf").read_text()),
    ]
    dropin = service_dropin(service, ten_path=ten_path, domain=domain, serve_args=serve_args)
    if dropin is not None:
        files.append(
            PlannedFile(
                SYSTEMD_DIR / "tenement.service.d" / DROPIN_NAME, dropin, restarts=SERVICE_UNITS
            )
        )
    dropin = socket_dropin(socket, port=port)
    if dropin is not None:
        files.append(
            PlannedFile(
                SYSTEMD_DIR / "tenement.socket.d" / DROPIN_NAME, dropin, restarts=SOCKET_UNITS
            )
        )
    if tls is not None:
        dropin = tls_socket_dropin(
            (units / "examples" / "tls.conf").read_text(),
            https_port=tls.https_port,
            http_port=tls.http_port,
        )
        files.append(
            PlannedFile(
                SYSTEMD_DIR / "tenement.socket.d" / TLS_DROPIN_NAME, dropin, restarts=SOCKET_UNITS
            )
        )
    notes = []
    if config_present:
        notes.append(f"{CONFIG_FILE} exists: kept as it is (not replaced by {config_source})")
    else:
        files.append(PlannedFile(CONFIG_FILE, config_source.read_text(), overwrite=False))
    if re.match(r"^/(home|root)(/|$)", ten_path):
        notes.append(
            f"WARNING: {ten_path} is under /home or /root, which the service cannot see "
            "(ProtectHome=yes): install tenement-py system-wide (e.g. a venv in /opt)"
        )
    if PACKAGED_UNIT.exists():
        notes.append(
            f"WARNING: {PACKAGED_UNIT} comes from a package; the files in {SYSTEMD_DIR} "
            "will override it. Configure a packaged tenement with drop-ins instead."
        )
    commands = (
        ("systemd-sysusers", str(SYSUSERS_FILE)),
        ("systemd-tmpfiles", "--create", str(TMPFILES_FILE)),
        RELOAD,
        ("systemctl", "enable", "--now", "tenement.socket"),
        ("systemctl", "enable", "--now", "tenement.service"),
    )
    removals: tuple[Path, ...] = ()
    if stale_tls_dropin and tls is None:
        removals = (SYSTEMD_DIR / "tenement.socket.d" / TLS_DROPIN_NAME,)
        notes.append(
            f"built-in TLS is off (no --tls, no [settings.tls] enabled = true): {removals[0]}"
            " is removed and tenement.socket restarted, so it no longer holds the HTTPS"
            " and HTTP ports"
        )
    return InstallPlan(files=tuple(files), commands=commands, notes=tuple(notes), removals=removals)


def render_plan(plan: InstallPlan) -> str:
    """The `--dry-run` output: numbered steps, then every file's path and content."""
    out = ["Installation plan (dry run, nothing is changed):", ""]
    step = 0
    for planned in plan.files:
        step += 1
        how = "write (unless present)" if not planned.overwrite else "write"
        out.append(f"{step}. {how} {planned.path}")
    for path in plan.removals:
        step += 1
        out.append(f"{step}. remove {path}")
    for argv in plan.commands:
        step += 1
        out.append(f"{step}. run: {' '.join(argv)}")
        if argv == RELOAD:
            step += 1
            out.append(
                f"{step}. run: systemctl try-restart UNITS (the running units whose files"
                " changed: a socket listens on new ports only from its start; tenants kept)"
            )
    out += [f"{step + 1}. check: systemctl is-active tenement.service", ""]
    out += [f"Note: {note}" for note in plan.notes]
    for planned in plan.files:
        out += ["", f"--- {planned.path}", planned.text.rstrip("\n")]
    return "\n".join(out) + "\n"


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    click.echo(f"  $ {' '.join(argv)}")
    try:
        result = subprocess.run(list(argv), text=True, capture_output=True)
    except FileNotFoundError as exc:
        raise InstallError(f"{argv[0]} not found: is this a systemd system?") from exc
    if check and result.returncode != 0:
        units = [arg for arg in argv if arg.startswith("tenement.")]
        hint = f" (see `journalctl -u {units[-1]}`)" if units else ""
        raise InstallError(
            f"`{' '.join(argv)}` failed with exit status {result.returncode}{hint}: "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result


def apply_plan(plan: InstallPlan) -> bool:
    """Write the files and run the commands; True when tenement.service is active.

    Units already running whose files changed are restarted after the daemon-reload
    (``enable --now`` leaves a running unit as it is: a second `ten install --tls` used
    to report success while the socket held no HTTPS port and the server ran without
    ``--tls``).
    """
    restarts: list[str] = []
    for planned in plan.files:
        if not planned.overwrite and planned.path.exists():
            click.echo(f"  kept {planned.path}")
            continue
        if _text_of(planned.path) != planned.text:
            restarts += [unit for unit in planned.restarts if unit not in restarts]
        planned.path.parent.mkdir(parents=True, exist_ok=True)
        planned.path.write_text(planned.text)
        planned.path.chmod(0o644)
        click.echo(f"  wrote {planned.path}")
    for path in plan.removals:
        if path.exists():
            path.unlink()
            restarts += [unit for unit in SOCKET_UNITS if unit not in restarts]
            click.echo(f"  removed {path}")
    for argv in plan.commands:
        _run(argv)
        if argv == RELOAD and restarts:
            # try-restart: only the ones that run (a first install starts them below)
            _run(("systemctl", "try-restart", *restarts))
    active = _run(("systemctl", "is-active", "tenement.service"), check=False)
    return active.stdout.strip() == "active"


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _config_source(cli: CliContext, short: Path | None, units: Path) -> Path:
    explicit = short or cli.config_path
    if explicit is not None:
        if not explicit.is_file():
            raise InstallError(f"config file not found: {explicit}")
        return explicit.resolve()
    local = Path.cwd() / "tenement.toml"
    return local if local.is_file() else units / "tenement.toml"


@click.command(short_help="Install tenement as a systemd service")
@click.option("-d", "--domain", help="Domain the server routes (ten serve --domain)")
@click.option(
    "-p",
    "--port",
    type=click.IntRange(1, 65535),
    help=f"TCP port of tenement.socket [default: {DEFAULT_PORT}]",
)
@click.option(
    "-c",
    "config_short",
    type=click.Path(path_type=Path),
    help="Config to copy to /etc/tenement/tenement.toml (same as --config; default: "
    "./tenement.toml, else an empty default config)",
)
@click.option("--dry-run", is_flag=True, help="Print the plan and the unit files; change nothing")
@click.option("--caddy", "with_caddy", is_flag=True, help="Also set up Caddy (needs --domain)")
@click.option("--dns-provider", help="With --caddy: DNS provider for per-service wildcards")
@click.option(
    "--tls",
    is_flag=True,
    help="Built-in HTTPS (ten serve --tls): tenement.socket also holds the HTTPS and HTTP "
    "ports (units/examples/tls.conf)",
)
@click.option("--email", help="With --tls: email for the ACME account (ten serve --email)")
@global_options
@pass_cli
@click.pass_context
def install(
    ctx: click.Context,
    cli: CliContext,
    domain: str | None,
    port: int | None,
    config_short: Path | None,
    dry_run: bool,
    with_caddy: bool,
    dns_provider: str | None,
    tls: bool,
    email: str | None,
) -> None:
    """Install tenement.socket and tenement.service and start them.

    Writes the unit files from the package (and drop-ins for --domain, --port and the
    path of this ten), creates the user and directories with systemd-sysusers and
    systemd-tmpfiles, copies the config to /etc/tenement/tenement.toml unless one is
    there, then enables and starts the socket and the service.
    """
    if domain is not None and not domain.strip():
        raise click.BadParameter("must not be empty", param_hint="--domain")
    if (with_caddy or dns_provider) and domain is None:
        raise click.UsageError("--caddy needs --domain")
    if email is not None and not tls:
        raise click.UsageError("--email requires --tls")
    if tls and with_caddy:
        raise click.UsageError("--tls and --caddy exclude each other: one of them serves HTTPS")
    if not dry_run:
        require_root(os.geteuid(), "install")
    units = units_dir()
    config_source = _config_source(cli, config_short, units)
    resolved: TlsSettings | None = None
    serve_args: tuple[str, ...] = ()
    if tls:
        # the checks `ten serve --tls` will make, now rather than at the service's start
        resolved = _checked_tls(config_present_path(config_source), domain, email)
        serve_args = ("--tls",) if email is None else ("--tls", "--email", email)
    stale_tls_dropin = (
        not tls
        and _written_by_install_tls(SYSTEMD_DIR / "tenement.socket.d" / TLS_DROPIN_NAME)
        and not _tls_enabled_in(config_present_path(config_source))
    )
    plan = make_plan(
        units=units,
        config_source=config_source,
        ten_path=this_ten(),
        domain=domain,
        port=port,
        config_present=CONFIG_FILE.exists(),
        tls=resolved,
        serve_args=serve_args,
        stale_tls_dropin=stale_tls_dropin,
    )
    if dry_run:
        click.echo(render_plan(plan), nl=False)
        return
    for note in plan.notes:
        click.echo(f"Note: {note}")
    click.echo("Installing tenement...")
    if apply_plan(plan):
        click.echo("[OK] Tenement installed and running!")
        click.echo("  Status: systemctl status tenement   Logs: journalctl -u tenement")
    else:
        click.echo("[WARN] tenement.service is not active; see `journalctl -u tenement`")
    if with_caddy:
        from tenement.cli import caddy

        ctx.invoke(
            caddy.caddy,
            domain=domain,
            port=port,
            unix_socket=None,
            output=None,
            install_=True,
            systemd=True,
            dns_provider=dns_provider,
        )


def config_present_path(config_source: Path) -> Path:
    """The config the service will run with: /etc/tenement's when one is there (it is
    kept), else the one installed."""
    return CONFIG_FILE if CONFIG_FILE.exists() else config_source


def _written_by_install_tls(path: Path) -> bool:
    """Whether ``path`` is a drop-in `ten install --tls` wrote (one copied by hand is
    the user's: left alone)."""
    text = _text_of(path)
    # (the header's first words: those of every release that wrote it)
    return text is not None and text.startswith("# Written by `ten install --tls`")


def _tls_enabled_in(config_path: Path) -> bool:
    from tenement.config import read_config_file

    return read_config_file(config_path, data_dir=STATE_DIR).settings.tls.enabled


def _checked_tls(config_path: Path, domain: str | None, email: str | None) -> TlsSettings:
    from tenement.config import read_config_file
    from tenement.tls.checks import TlsFlags, resolve_tls

    config = read_config_file(config_path, data_dir=STATE_DIR)
    flags = TlsFlags(
        tls=True,
        email=email,
        domain=domain or "localhost",
        domain_given=domain is not None,
    )
    return resolve_tls(config.settings.tls, flags)


@click.command(short_help="Remove the systemd service installed by `ten install`")
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing")
@global_options
def uninstall(dry_run: bool) -> None:
    """Stop and disable tenement.service and tenement.socket and remove their unit files.

    Stopping the service stops every tenant. /etc/tenement (the config),
    /var/lib/tenement (database, tokens, tenants' data) and the user tenement are kept.
    """
    if not dry_run:
        require_root(os.geteuid(), "uninstall")
    paths = [
        SYSTEMD_DIR / "tenement.service",
        SYSTEMD_DIR / "tenement.socket",
        SYSTEMD_DIR / "tenement.service.d" / DROPIN_NAME,
        SYSTEMD_DIR / "tenement.socket.d" / DROPIN_NAME,
        SYSTEMD_DIR / "tenement.socket.d" / TLS_DROPIN_NAME,
        SYSUSERS_FILE,
        TMPFILES_FILE,
    ]
    commands = [
        ("systemctl", "disable", "--now", "tenement.service"),
        ("systemctl", "disable", "--now", "tenement.socket"),
    ]
    if dry_run:
        for argv in commands:
            click.echo(f"run: {' '.join(argv)}")
        for path in paths:
            click.echo(f"remove: {path}")
        click.echo("run: systemctl daemon-reload")
    else:
        if not (SYSTEMD_DIR / "tenement.service").exists():
            raise InstallError(
                f"{SYSTEMD_DIR / 'tenement.service'} does not exist: tenement was not "
                "installed with `ten install` (a packaged tenement is removed with its package)"
            )
        click.echo("Stopping tenement (this stops every tenant)...")
        for argv in commands:
            _run(argv, check=False)
        for path in paths:
            if path.exists():
                path.unlink()
                click.echo(f"  removed {path}")
        for dropins in (SYSTEMD_DIR / "tenement.service.d", SYSTEMD_DIR / "tenement.socket.d"):
            if dropins.is_dir() and not any(dropins.iterdir()):
                dropins.rmdir()
        _run(("systemctl", "daemon-reload"))
        click.echo("[OK] Tenement uninstalled")
    click.echo(f"Kept: {CONFIG_FILE.parent} (config), {STATE_DIR} (data) and the user tenement")
