"""Start, watch, adopt and stop one tenant process.

A tenant outlives the server that started it: it runs in its own session and
process group, reads /dev/null, appends its stdout and stderr to its own log files
(the server holds no pipe to it), inherits no file descriptor of ours, and is
watched through a pidfd, which works the same for our own child and for a process
a previous server started (:meth:`TenantProcess.adopt`).

Stopping is one routine (:meth:`TenantProcess.terminate`): SIGTERM to the process
group, a bounded wait for the whole group, SIGKILL to the group (and the cgroup),
wait again. It always waits for the processes to be gone before it returns.

A tenant with a user of its own (``spec.user``) runs under util-linux ``setpriv``, which
switches to that user and execs the command in the same process (``identity.py``).

``isolation = "namespace"`` (Linux, CAP_SYS_ADMIN) runs the command under
``unshare --pid --fork --mount --mount-proc --kill-child`` (util-linux) with a tiny
init (``_nsinit.py``) as pid 1: the tenant sees its own /proc and pid namespace,
the recorded pid is ``unshare``'s, and its process group still holds the whole
tree, so stop works the same way. An exit by signal N is reported as 128+N there.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import signal
import subprocess
from pathlib import Path

import trio

from tenement.supervisor import cgroups, procfs
from tenement.supervisor.identity import setpriv_argv
from tenement.supervisor.namespace import NAMESPACE_NEEDS_ROOT, check_command, namespace_argv
from tenement.supervisor.procfs import read_start_ticks
from tenement.supervisor.spec import ProcessSpec, SpawnError

__all__ = [
    "NAMESPACE_NEEDS_ROOT",
    "SpawnError",
    "TenantProcess",
    "kill_stale_group",
    "read_start_ticks",
    "start_process",
]

log = logging.getLogger(__name__)

#: how long to wait for processes to vanish after SIGKILL before giving up (D state, NFS)
KILL_WAIT_SECONDS = 10.0
#: how often to look whether a killed cgroup is empty yet
CGROUP_POLL_SECONDS = 0.01
#: log files are created with these permissions: the tenant's output may be private, and
#: the server opens them and hands the tenant the descriptors, so the tenant needs no
#: access to the log directory
LOG_FILE_MODE = 0o600


def _pidfd_exited(pidfd: int) -> bool:
    """Whether the process behind ``pidfd`` has exited (readable pidfd), without blocking."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


class TenantProcess:
    """A running tenant: our child, or a process adopted from an earlier server.

    Attributes:
        pid: the process id (``unshare``'s under namespace isolation).
        pgid: its process group id (equal to ``pid``: it leads its own session).
        start_ticks: its start time (/proc stat field 22), against pid reuse.
        is_child: True when this server started it (its exit code is known).
        cgroup: its cgroup directory, or None.
    """

    def __init__(
        self,
        *,
        pid: int,
        pgid: int,
        start_ticks: int,
        pidfd: int,
        popen: subprocess.Popen[bytes] | None = None,
        cgroup: Path | None = None,
    ) -> None:
        self.pid = pid
        self.pgid = pgid
        self.start_ticks = start_ticks
        self.cgroup = cgroup
        self._pidfd: int | None = pidfd
        self._popen = popen
        self._exited = False

    def __repr__(self) -> str:
        return f"<TenantProcess pid={self.pid} child={self.is_child} exited={self._exited}>"

    @property
    def is_child(self) -> bool:
        return self._popen is not None

    @property
    def returncode(self) -> int | None:
        """The exit code once our child exited and was reaped (-N: killed by signal N).

        Always None for an adopted process: only its parent learns its status.
        """
        return None if self._popen is None else self._popen.returncode

    @classmethod
    def adopt(cls, pid: int, start_ticks: int, *, cgroups_v2: bool = True) -> TenantProcess | None:
        """Take over a tenant an earlier server started.

        Args:
            cgroups_v2: whether a cgroup v2 hierarchy is mounted (``cgroups.available()``);
                without one tenement placed no tenant in a cgroup, and the tenant's is not
                looked up (on a hybrid host that read was a third of an adoption's time).

        Returns:
            The process, or None when ``pid`` is gone, a zombie, or a different
            process (its start time is not ``start_ticks``: the pid was reused).
        """
        try:
            pidfd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            return None
        # Checked after opening the pidfd: if the start time still matches now, the
        # pidfd refers to that very process.
        stat = procfs.read_stat(pid)
        if stat is None or stat.exited or stat.start_ticks != start_ticks:
            os.close(pidfd)
            return None
        cgroup_path = procfs.cgroup_of(pid) if cgroups_v2 else None
        cgroup = None
        if cgroup_path and cgroup_path != "/":
            directory = cgroups.CGROUP_ROOT / cgroup_path.lstrip("/")
            if directory.parent.name in (cgroups.TENANTS_DIR, cgroups.FALLBACK_BASE.name):
                cgroup = directory
        return cls(pid=pid, pgid=stat.pgrp, start_ticks=start_ticks, pidfd=pidfd, cgroup=cgroup)

    def alive(self) -> bool:
        """Whether the process still runs (a zombie counts as exited; our child gets reaped)."""
        if not self._exited and self._pidfd is not None and _pidfd_exited(self._pidfd):
            self._mark_exited()
        return not self._exited

    async def wait_exited(self) -> int | None:
        """Wait until the process exits; reap it if it is our child.

        Several tasks may wait at once.

        Returns:
            Its exit code for our own child (-N when killed by signal N); None for an
            adopted process, whose status only its real parent learns.
        """
        if not self._exited and self._pidfd is not None:
            # Each waiter waits on its own duplicate: trio allows one waiter per fd.
            fd = os.dup(self._pidfd)
            try:
                await trio.lowlevel.wait_readable(fd)
            finally:
                os.close(fd)
            self._mark_exited()
        return self.returncode

    def _mark_exited(self) -> None:
        """The leader has exited: reap it if it is ours, and let go of its pidfd."""
        self._exited = True
        if self._popen is not None:
            self._popen.poll()
        if self._pidfd is not None:
            os.close(self._pidfd)  # waiters wait on their own duplicates
            self._pidfd = None

    def _signal_group(self, signum: int) -> None:
        """Send ``signum`` to the whole process group (the leader alone if it leads none)."""
        if self.pgid != self.pid:
            # not a group leader: signal the process alone, through its pidfd (no pid reuse)
            if self._pidfd is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(-self.pgid, signum)

    def _leftovers(self) -> list[procfs.ProcStat]:
        """Live members of the tenant's process group (the leader included while it lives).

        One ``kill(-pgid, 0)`` answers "empty" without scanning /proc; only a group
        that still has members is scanned. Processes that left the group (``setsid``,
        ``setpgid``) receive none of our signals; a cgroup still reaches them.
        """
        if self.pgid != self.pid:
            return []  # not a group leader: only the process itself is ours
        try:
            os.kill(-self.pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [
            member
            for member in procfs.group_members(self.pgid)
            if member.start_ticks >= self.start_ticks
        ]

    async def _wait_gone(self) -> None:
        """Wait until the leader and every other member of its group have exited."""
        await self.wait_exited()
        while True:
            members = self._leftovers()
            if not members:
                return
            for member in members:
                try:
                    fd = os.pidfd_open(member.pid)
                except ProcessLookupError:
                    continue
                try:
                    if procfs.read_start_ticks(member.pid) == member.start_ticks:
                        await trio.lowlevel.wait_readable(fd)
                finally:
                    os.close(fd)

    async def terminate(self, grace_seconds: float) -> bool:
        """Stop the process and everything in its group; return when all are gone.

        SIGTERM to the process group, wait up to ``grace_seconds`` for the leader and
        every other member, then SIGKILL the group (and the cgroup) and wait again.
        Idempotent: a process already gone returns at once.

        Cancellation: the grace wait is cancellable; cancelling it escalates to
        SIGKILL at once, and the kill and its wait run shielded (bounded by
        :data:`KILL_WAIT_SECONDS`).

        Returns:
            True when SIGKILL was needed (something outlived the grace period).
        """
        if not self.alive() and not self._leftovers():
            self._finish()
            return False
        self._signal_group(signal.SIGTERM)
        killed = False
        try:
            with trio.move_on_after(grace_seconds):
                await self._wait_gone()
        finally:
            with trio.move_on_after(KILL_WAIT_SECONDS, shield=True) as scope:
                if self.alive() or self._leftovers():
                    killed = True
                    log.warning(
                        "pid %s (group %s) still running %.1f s after SIGTERM; sending SIGKILL",
                        self.pid,
                        self.pgid,
                        grace_seconds,
                    )
                    self._signal_group(signal.SIGKILL)
                    if self.cgroup is not None:
                        cgroups.kill_all(self.cgroup)
                    await self._wait_gone()
                if self.cgroup is not None and cgroups.populated(self.cgroup):
                    # processes that left the group (setsid) are still in the cgroup
                    log.warning("killing what is left in cgroup %s", self.cgroup)
                    cgroups.kill_all(self.cgroup)
                    while cgroups.populated(self.cgroup):
                        await trio.sleep(CGROUP_POLL_SECONDS)
            if scope.cancelled_caught:
                log.error(
                    "pid %s (group %s) still not gone %.0f s after SIGKILL",
                    self.pid,
                    self.pgid,
                    KILL_WAIT_SECONDS,
                )
            self._finish()
        return killed

    def _finish(self) -> None:
        """Remove the cgroup once every process in it is gone."""
        if self.alive():
            return
        if self.cgroup is not None and not cgroups.populated(self.cgroup):
            cgroups.remove(self.cgroup)
            self.cgroup = None


def kill_stale_group(pid: int, start_ticks: int) -> int:
    """SIGKILL what is left of a tenant recorded as (``pid``, ``start_ticks``).

    Only processes that are provably the tenant's are touched: the leader when its
    start time matches, and, when the leader is gone, the members of its session
    (a pid number is not reused while it names a live session) that started after it.
    A pid now held by another process (different start time) means the tenant's
    session is empty: nothing is killed.

    It does not wait for them to exit.

    Returns:
        The number of processes signalled.
    """
    stat = procfs.read_stat(pid)
    if stat is not None and not stat.exited and stat.start_ticks != start_ticks:
        return 0
    members = procfs.session_members(pid, started_since=start_ticks)
    if stat is not None and not stat.exited and stat.pgrp != pid:
        members = [stat]  # it leads no group of its own: only the process itself
    for member in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member.pid, signal.SIGKILL)
    if members:
        log.warning("killed %d stale process(es) of pid %s", len(members), pid)
    return len(members)


def _open_log(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, LOG_FILE_MODE)
    if os.fstat(fd).st_mode & 0o077:  # made by an earlier version, under a wider mode
        os.fchmod(fd, LOG_FILE_MODE)
    return fd


def _spawn(argv: list[str], spec: ProcessSpec, cgroup: Path | None) -> subprocess.Popen[bytes]:
    """fork + exec ``argv`` as a tenant (see :func:`start_process`); exec errors raise here."""
    stdout = _open_log(spec.stdout_path)
    procs = None
    try:
        stderr = _open_log(spec.stderr_path)
        try:
            enter_cgroup = None
            if cgroup is not None:
                # Written by the child itself between fork and exec: it and everything
                # it ever forks are inside before the tenant's first instruction.
                procs = os.open(cgroup / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
                enter_cgroup = functools.partial(os.write, procs, b"0")
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=spec.env,
                cwd=spec.cwd,
                close_fds=True,
                start_new_session=True,
                preexec_fn=enter_cgroup,
            )
        except OSError as exc:
            name = exc.filename if exc.filename is not None else spec.argv[0]
            raise SpawnError(f"{exc.strerror}: {name!r}", command=spec.argv[0]) from None
        except subprocess.SubprocessError as exc:  # only the cgroup write runs in the child
            raise SpawnError(
                f"cannot move {spec.cgroup_name} into its cgroup {cgroup}: {exc}",
                command=spec.argv[0],
            ) from None
        finally:
            os.close(stderr)
            if procs is not None:
                os.close(procs)
    finally:
        os.close(stdout)


async def start_process(spec: ProcessSpec) -> TenantProcess:
    """Start the process ``spec`` describes.

    The process leads a new session and process group, reads /dev/null, appends its
    stdout and stderr to ``spec.stdout_path`` / ``spec.stderr_path`` (created with
    their directories), and inherits no file descriptor but 0, 1 and 2. With
    ``memory_limit_mb``/``cpu_shares`` it is placed in a cgroup (or runs without the
    limits, with a warning, where cgroups v2 is not usable).

    Returns:
        The running process. It does not wait for the process to accept connections
        (see :func:`tenement.supervisor.readiness.wait_accepting`).

    Raises:
        SpawnError: the command cannot be executed ("No such file or directory:
            './app'"), the workdir is missing, namespace isolation is not possible
            here, or a cgroup limit could not be applied (nothing was started).

    Cancellation: only before the process is started; once it runs, the call
    returns it (the caller owns it and must stop it).
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    as_user = [] if spec.user is None else setpriv_argv(spec.user)
    if spec.isolation == "namespace":
        argv = namespace_argv(spec.argv, inside=as_user)
        check_command(spec)
    elif spec.isolation == "process":
        argv = [*as_user, *spec.argv]
        if as_user:
            check_command(spec)  # the exec happens in setpriv, too late to raise
    else:
        raise SpawnError(f'isolation = "{spec.isolation}" is not supported by this tenement')
    try:
        cgroup = cgroups.prepare(
            spec.cgroup_name, memory_limit_mb=spec.memory_limit_mb, cpu_shares=spec.cpu_shares
        )
    except cgroups.CgroupError as exc:
        raise SpawnError(str(exc)) from exc
    try:
        popen = _spawn(argv, spec, cgroup)
    except BaseException:
        if cgroup is not None:
            cgroups.remove(cgroup)
        raise
    # Our unreaped child: its pid cannot be reused, so the pidfd and stat are its own.
    pidfd = os.pidfd_open(popen.pid)
    start_ticks = procfs.read_start_ticks(popen.pid) or 0
    process = TenantProcess(
        pid=popen.pid,
        pgid=popen.pid,
        start_ticks=start_ticks,
        pidfd=pidfd,
        popen=popen,
        cgroup=cgroup,
    )
    log.info("started %s (pid %s): %s", spec.cgroup_name, popen.pid, " ".join(spec.argv))
    # Not cancellable from here on: the caller must get the process it now owns.
    await trio.lowlevel.cancel_shielded_checkpoint()
    return process
