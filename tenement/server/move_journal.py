"""What a node remembers on disk of its moves, so that a server killed mid-move
(``kill -9``, a crash, a power cut) leaves nothing behind that starts or lingers.

The ``moving`` state of a move lives in memory (``proxy/moves.py``); a killed server
loses it with the tenant already stopped. So the source writes a *marker* in its spool
(``{data_dir}/.moves/SERVICE-TENANT.moving``: where to, whether the tenant ran, which
server process wrote it) before it stops the tenant, and removes it when the move ends,
either way. A server that starts leading reads the markers its dead predecessors left
(``Mover.recover``), and removes what half-done transfers left: spool archives and
``.incoming-*`` trees last written before it started.

A stateless tenant moves without a pause: its row is handed over while its process
here still serves, and that process is stopped once the new copy runs. The marker of
such a move records that process (pid, start time): a server killed during that
overlap leaves it running with a row naming another node, which no next server adopts,
so its ``recover`` stops it (if it is still that process).

Blocking (small files, a directory listing): cheap enough for the event loop.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import attrs

from tenement.supervisor import cgroups
from tenement.supervisor.process import TenantProcess
from tenement.supervisor.procfs import read_start_ticks, read_stat

log = logging.getLogger(__name__)

#: a marker's name ends so (the spool's archives end in ``.tar``)
MARKER_SUFFIX = ".moving"
#: a tree being unpacked beside the tenant's directory starts so
INCOMING_PREFIX = ".incoming-"
#: how long a left-over tenant process has to exit on SIGTERM before it is killed
LEFT_OVER_GRACE_SECONDS = 5.0


@attrs.frozen
class LeftProcess:
    """The tenant's process a move left running here (``pid``, started at ``ticks``)."""

    pid: int
    ticks: int

    def alive(self) -> bool:
        """Whether it is still that process, and not exited (a zombie has)."""
        stat = read_stat(self.pid)
        return stat is not None and not stat.exited and stat.start_ticks == self.ticks

    async def stop(self) -> bool:
        """Stop it and its group as the supervisor stops a tenant (SIGTERM, a grace,
        SIGKILL, its cgroup), if it is still that process; whether it was."""
        running = TenantProcess.adopt(self.pid, self.ticks, cgroups_v2=cgroups.available())
        if running is None:
            return False
        await running.terminate(LEFT_OVER_GRACE_SECONDS)
        return True


@attrs.frozen
class Marker:
    """A move this node began: of ``instance_id`` to ``to``, by the server ``pid``
    (started at ``ticks``); ``running``: the tenant ran when it was stopped for it."""

    path: Path
    instance_id: str
    to: str
    running: bool
    pid: int
    ticks: int | None
    #: a stateless move's process here, left running while the new copy starts
    tenant: LeftProcess | None = None

    def writer_alive(self) -> bool:
        """Whether the server that wrote it runs still (another server of this data dir,
        during a hand-over: its move is its own to finish)."""
        return self.pid != os.getpid() and read_start_ticks(self.pid) == self.ticks


def marker_path(spool: Path, instance_id: str) -> Path:
    return spool / f"{instance_id.replace(':', '-')}{MARKER_SUFFIX}"


def write_marker(
    spool: Path,
    instance_id: str,
    to: str,
    *,
    running: bool,
    tenant: LeftProcess | None = None,
) -> Path:
    """Record, durably, that ``instance_id`` is being moved to ``to`` by this process
    (``tenant``: its process here, which runs on while the new copy starts)."""
    path = marker_path(spool, instance_id)
    pid = os.getpid()
    fields: dict[str, object] = {
        "instance": instance_id,
        "to": to,
        "running": running,
        "pid": pid,
        "ticks": read_start_ticks(pid),
    }
    if tenant is not None:
        fields["tenant"] = attrs.asdict(tenant)
    text = json.dumps(fields)
    part = path.with_name(path.name + ".part")
    with part.open("w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.rename(part, path)
    return path


def read_markers(spool: Path) -> list[Marker]:
    """The markers in ``spool``; one that cannot be read is logged and removed (it was
    cut short while being written, before its tenant was stopped)."""
    found: list[Marker] = []
    if not spool.is_dir():
        return found
    for path in sorted(spool.glob(f"*{MARKER_SUFFIX}")):
        try:
            data = json.loads(path.read_text())
            left = data.get("tenant")
            tenant = None if left is None else LeftProcess(int(left["pid"]), int(left["ticks"]))
            found.append(
                Marker(
                    path,
                    str(data["instance"]),
                    str(data["to"]),
                    bool(data["running"]),
                    int(data["pid"]),
                    None if data["ticks"] is None else int(data["ticks"]),
                    tenant,
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("removed the unreadable move marker %s (%s)", path, exc)
            path.unlink(missing_ok=True)
    return found


def remove_stale(data_dir: Path, spool: Path, before: float) -> list[Path]:
    """Remove what half-done transfers left: the spool's files (a marker's ``.part``,
    archives an older server spooled) and the ``.incoming-*`` trees beside tenants'
    directories, last changed before ``before`` (this server's start: a newer one is
    another live server's), but markers. Returns what was removed."""
    removed: list[Path] = []
    candidates: list[Path] = []
    if spool.is_dir():
        candidates += [p for p in spool.iterdir() if not p.name.endswith(MARKER_SUFFIX)]
    candidates += list(data_dir.glob(f"*/{INCOMING_PREFIX}*"))
    for path in candidates:
        try:
            if path.lstat().st_mtime >= before:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
