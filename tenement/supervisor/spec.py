"""From a configured service and a tenant id to the exact process to start.

:func:`build_spec` is pure (no I/O): it interpolates the templates, splits the
command, builds the environment and names the log files. :mod:`.process` starts
what it describes.

Environment: a tenant inherits tenement's environment (as in the reference), minus
what belongs to tenement's own service manager context (:data:`SCRUBBED_NAMES`,
:data:`SCRUBBED_PREFIXES`): a tenant that saw ``LISTEN_FDS`` or ``NOTIFY_SOCKET``
would take our sockets or speak to systemd for us. The service's ``env`` goes
over that (so a service may set any of these names itself on purpose), then
``PORT`` (when a port is allocated) and ``SOCKET_PATH``. A tenant that runs as a user of
its own (:class:`TenantUser`) gets ``HOME`` set to its instance directory (the server's
home is not its to write), ``USER`` and ``LOGNAME`` to its user, unless its ``env`` sets them.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

import attrs

from tenement.config import Service, render
from tenement.errors import TenementError


class SpawnError(TenementError):
    """A tenant process could not be started (or died before accepting connections).

    Attributes:
        command: the program that was to run, when known.
    """

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


#: isolation modes this tenement can start
ISOLATIONS = ("process", "namespace")

#: exact names never passed on to a tenant: systemd's per-service context
#: (socket activation, notify, watchdog, journal, fd store, invocation, service
#: directories and credentials, memory pressure, ExecStop/OnFailure results)
SCRUBBED_NAMES = frozenset(
    {
        "NOTIFY_SOCKET",
        "JOURNAL_STREAM",
        "FDSTORE",
        "INVOCATION_ID",
        "SYSTEMD_EXEC_PID",
        "MAINPID",
        "MANAGERPID",
        "CREDENTIALS_DIRECTORY",
        "RUNTIME_DIRECTORY",
        "STATE_DIRECTORY",
        "CACHE_DIRECTORY",
        "LOGS_DIRECTORY",
        "CONFIGURATION_DIRECTORY",
        "MEMORY_PRESSURE_WATCH",
        "MEMORY_PRESSURE_WRITE",
        "SERVICE_RESULT",
        "EXIT_CODE",
        "EXIT_STATUS",
        "REMOTE_ADDR",
        "REMOTE_PORT",
    }
)

#: name prefixes never passed on: socket activation (LISTEN_FDS, LISTEN_PID,
#: LISTEN_FDNAMES), watchdog (WATCHDOG_USEC, WATCHDOG_PID), OnFailure= context
#: (MONITOR_*), timer/path triggers (TRIGGER_*) and tenement's own settings and
#: secrets (TENEMENT_TOKEN, TENEMENT_CONFIG, TENEMENT_DATA_DIR, ...)
SCRUBBED_PREFIXES = ("LISTEN_", "WATCHDOG_", "MONITOR_", "TRIGGER_", "TENEMENT_")


@attrs.frozen
class TenantUser:
    """The user a tenant runs as, when it is not the server's.

    Attributes:
        uid, gid: its ids; it has no supplementary groups.
        name: the configured ``user``, or ``"tenement-<service>"`` for an allotted uid
            (for messages and ``USER``; no such entry need exist in /etc/passwd).
    """

    uid: int
    gid: int
    name: str


@attrs.frozen
class ProcessSpec:
    """Everything needed to start one tenant process.

    Attributes:
        argv: program and arguments (no shell).
        env: the complete environment of the process.
        cwd: working directory, None for tenement's own.
        stdout_path: file stdout is appended to.
        stderr_path: file stderr is appended to.
        isolation: ``"process"`` or ``"namespace"``.
        memory_limit_mb: cgroup ``memory.max`` in MiB (None or 0: no limit).
        cpu_shares: cgroup ``cpu.weight`` (clamped to 1-10000; None: not set).
        cgroup_name: the instance id, ``"notes:alice"``, naming its cgroup and its log lines.
        user: the user it runs as; None: the server's own.
    """

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str | None
    stdout_path: Path
    stderr_path: Path
    isolation: str = "process"
    memory_limit_mb: int | None = None
    cpu_shares: int | None = None
    cgroup_name: str = ""
    user: TenantUser | None = None


def socket_path(service: Service, tenant: str) -> str:
    """The service's ``socket`` template with ``{name}`` and ``{id}`` filled in."""
    return service.socket_path(tenant)


def scrub_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` without tenement's service-manager context (module docstring)."""
    return {
        key: value
        for key, value in environ.items()
        if key not in SCRUBBED_NAMES and not key.startswith(SCRUBBED_PREFIXES)
    }


def log_paths(log_dir: Path, service: str, tenant: str) -> tuple[Path, Path]:
    """``{log_dir}/{service}/{tenant}.stdout.log`` and ``.stderr.log``."""
    base = log_dir / service
    return base / f"{tenant}.stdout.log", base / f"{tenant}.stderr.log"


def build_spec(
    service: Service,
    tenant: str,
    *,
    data_dir: Path,
    port: int | None,
    environ: Mapping[str, str],
    log_dir: Path,
    user: TenantUser | None = None,
) -> ProcessSpec:
    """The process that runs ``tenant`` of ``service``.

    Args:
        service: the configured service.
        tenant: the tenant id (already validated).
        data_dir: the global ``settings.data_dir`` (the ``{data_dir}`` template value).
        port: the allocated TCP port, or None.
        environ: the environment tenement runs in (inherited, after scrubbing).
        log_dir: the directory of tenant log files.
        user: the user it runs as (None: the server's own).

    Raises:
        SpawnError: the command is empty or cannot be split (unbalanced quotes),
            or the isolation mode is not one this tenement can start.
    """
    reason = service.unsupported_reason()
    if reason is not None or service.isolation not in ISOLATIONS:
        raise SpawnError(
            f"[service.{service.name}]: {reason or service.isolation}; "
            'set isolation = "process" or "namespace"'
        )
    socket = service.socket_path(tenant)

    def fill(template: str) -> str:
        return render(
            template, name=service.name, id=tenant, data_dir=data_dir, socket=socket, port=port
        )

    command = fill(service.command)
    if service.args:
        argv = (command, *(fill(arg) for arg in service.args))
    else:
        try:
            argv = tuple(shlex.split(command))
        except ValueError as exc:
            raise SpawnError(
                f"cannot split the command of [service.{service.name}] ({command!r}): {exc}"
            ) from None
    if not argv or not argv[0]:
        raise SpawnError(f"[service.{service.name}] has an empty command")

    env = scrub_environ(environ)
    if user is not None:
        env["HOME"] = str(service.instance_dir(data_dir, tenant))
        env["USER"] = env["LOGNAME"] = user.name
    env.update({key: fill(value) for key, value in service.env.items()})
    if port is not None:
        env["PORT"] = str(port)
    env["SOCKET_PATH"] = socket

    stdout_path, stderr_path = log_paths(log_dir, service.name, tenant)
    return ProcessSpec(
        argv=argv,
        env=env,
        cwd=service.workdir,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        isolation=service.isolation,
        memory_limit_mb=service.memory_limit_mb,
        cpu_shares=service.cpu_shares,
        cgroup_name=f"{service.name}:{tenant}",
        user=user,
    )
