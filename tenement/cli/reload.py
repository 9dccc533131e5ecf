"""`ten reload`: have the running server re-read tenement.toml, and say if it applied it.

It asks on the server's control socket (``{data_dir}/run/server-PID-*.sock``, the
service user's alone), which answers once the reload is done: the changes and the
instances stopped, or why the file was refused. The unit's ``ExecReload=`` runs it, so
``systemctl reload tenement`` fails when the running config was kept.

Exit codes: 0 applied; 1 refused (the running config is kept) or no server found.
A server that predates this answer (404) or has no control socket gets SIGHUP instead,
with a note that its log holds the outcome.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
from pathlib import Path

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.control_sockets import control_sockets, run_dir
from tenement.errors import TenementError
from tenement.processes import process_exists

#: stopping the instances of removed services may take their stop_timeout
TIMEOUT_SECONDS = 120.0
PATH = "/_tenement/reload"


class ReloadFailed(TenementError):
    """The server kept its running config, or could not be asked."""

    exit_code = 1


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the Unix socket at ``path``."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("control", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fspath(self._path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _data_dir(cli: CliContext) -> Path:
    if cli.data_dir is not None:
        return Path(cli.data_dir)
    from tenement.config import ConfigError, load_config

    try:
        return load_config(
            path=cli.config_path, environ=os.environ, cwd=Path.cwd()
        ).settings.data_dir
    except ConfigError as exc:
        raise ReloadFailed(
            f"{exc}\nThe server keeps its running config. (To find the server, `ten reload` "
            "reads data_dir from tenement.toml; pass --data-dir to name it.)"
        ) from None


def _servers(directory: Path, pid: int | None) -> list[tuple[int, Path]]:
    """(pid, control socket) of the live servers on the data dir, ``pid``'s alone if given."""
    return [
        (found, path) for found, path in control_sockets(directory, pid) if process_exists(found)
    ]


def _hang_up(pid: int | None, why: str) -> None:
    if pid is None:
        raise ReloadFailed(f"{why}; pass --pid to send the server SIGHUP instead")
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise ReloadFailed(f"{why}, and SIGHUP to pid {pid} failed: {exc.strerror}") from None
    click.echo(f"{why}: sent SIGHUP to pid {pid}; its log says whether it applied the file")


def _ask(path: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    connection = _UnixConnection(path, TIMEOUT_SECONDS)
    try:
        connection.request("POST", PATH, body=b"", headers={"Content-Length": "0"})
        response = connection.getresponse()
        status, body = response.status, response.read()
    except TimeoutError:
        raise ReloadFailed(
            f"the server at {path} did not answer within {TIMEOUT_SECONDS:g} s; its log "
            "says whether it applied the file"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise ReloadFailed(f"cannot reach the server at {path}: {exc}") from None
    finally:
        connection.close()
    try:
        return status, json.loads(body or b"{}")
    except ValueError:
        return status, {}


@click.command("reload")
@click.option(
    "--pid",
    type=click.IntRange(min=1),
    help="The server's pid (systemd's $MAINPID); default: the only server on the data dir",
)
@global_options
@pass_cli
def reload(cli: CliContext, pid: int | None) -> None:
    """Have the running server re-read tenement.toml; fail if it kept the running config."""
    data_dir = _data_dir(cli)
    directory = run_dir(data_dir)
    try:
        servers = _servers(directory, pid)
    except PermissionError:
        raise ReloadFailed(
            f"cannot read {directory}: permission denied; run `ten reload` as the user the "
            "server runs as (or root), or `systemctl reload tenement`"
        ) from None
    if not servers:
        who = f"pid {pid}" if pid is not None else "a server"
        _hang_up(pid, f"no control socket of {who} in {directory}")
        return
    if len(servers) > 1:
        pids = ", ".join(str(found) for found, _ in servers)
        raise ReloadFailed(
            f"several servers run on {data_dir} (pids {pids}); choose one with --pid"
        )
    found_pid, path = servers[0]
    status, answer = _ask(path)
    if status == 404:
        _hang_up(found_pid, f"the server (pid {found_pid}) does not answer reloads")
        return
    if status == 200 and answer.get("applied"):
        lines = answer.get("lines") or ["nothing changed"]
        click.echo(f"Reloaded {answer.get('source')}:")
        for line in lines:
            click.echo(f"  {line}")
        for iid in answer.get("stopped", []):
            click.echo(f"  stopped {iid}")
        return
    error = answer.get("error") or f"the server answered {status}"
    raise ReloadFailed(f"reload refused, the server keeps its running config:\n{error}")
