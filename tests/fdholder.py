"""A stand-in for systemd's socket unit and ``Type=notify`` service, for tests.

:func:`open_fd_holder` binds the listening sockets, keeps them open for the whole test,
and starts a command with them passed as fds 3, 4, ... exactly as systemd does:
``LISTEN_FDS``, ``LISTEN_FDNAMES`` and ``LISTEN_PID`` (the child's own pid, set by a tiny
exec shim so it survives ``execv``). It also listens on a ``NOTIFY_SOCKET`` and records
every sd_notify message with the sender's pid. Because the holder keeps its copy of
each listening socket, connections that arrive while no child runs wait in the kernel
queue (backlog 4096) for the next one, as with ``systemctl restart``.

API (all inside a trio test)::

    async with open_fd_holder(tmp_path, unix=True) as holder:
        holder.port, holder.url          # the TCP socket: 127.0.0.1, "http://127.0.0.1:PORT"
        holder.unix_path                 # the unix socket's path (None without unix=True)
        holder.fd_names                  # ("tcp", "unix"): LISTEN_FDNAMES, in fd order
        proc = await holder.start([sys.executable, "-m", "tenement", "serve", ...],
                                  env={...}, cwd=tmp_path)   # + open_process options
        await holder.wait_notify("READY=1")          # from the current child's pid
        proc = await holder.restart()                # SIGTERM, wait exit, start again
        code = await holder.stop(signal.SIGUSR2)     # signal, wait, return the exit code
        holder.notifications                         # list[Notification(pid, fields)]

``start`` passes the holder's environment plus ``env``, with ``NOTIFY_SOCKET`` set. Wrap
waits in ``trio.fail_after`` (the holder has no timeouts of its own). On exit the holder
kills a child still running (SIGKILL) and reaps it, then closes its sockets.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

#: dups the holder's fds to 3, 4, ..., sets LISTEN_PID to its own pid and execs the command
_SHIM = """\
import fcntl, os, sys
held = [int(fd) for fd in sys.argv[1].split(",") if fd]
spare = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in held]
for index, fd in enumerate(spare):
    os.dup2(fd, 3 + index)
for fd in spare:
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


@attrs.frozen
class Notification:
    """One sd_notify datagram: who sent it and its ``KEY=VALUE`` fields."""

    pid: int
    fields: dict[str, str]


class FdHolder:
    """Holds listening sockets and runs one child at a time on them (see the module doc)."""

    def __init__(
        self, directory: Path, *, unix: bool, names: Sequence[str] | None, extra_tcp: int = 0
    ) -> None:
        self.directory = directory
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4096)
        self.port: int = self.tcp.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.unix_path: str | None = None
        self.sockets = [self.tcp]
        self.fd_names: tuple[str, ...] = ("tcp",)
        if unix:
            self.unix_path = str(directory / "tenement.sock")
            unix_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix_sock.bind(self.unix_path)
            unix_sock.listen(4096)
            self.sockets.append(unix_sock)
            self.fd_names = ("tcp", "unix")
        #: the ports of ``extra_tcp`` more TCP sockets on 127.0.0.1 (named ``tcp``), after
        #: the others (built-in TLS: its HTTPS and HTTP ports)
        self.extra_ports: list[int] = []
        for _ in range(extra_tcp):
            extra = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            extra.bind(("127.0.0.1", 0))
            extra.listen(4096)
            self.sockets.append(extra)
            self.extra_ports.append(extra.getsockname()[1])
            self.fd_names = (*self.fd_names, "tcp")
        if names is not None:
            assert len(names) == len(self.sockets), f"{len(self.sockets)} names, please"
            self.fd_names = tuple(names)
        self.notify_path = str(directory / "notify.sock")
        self._notify = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notifications: list[Notification] = []
        self._changed = trio.Event()
        self.process: trio.Process | None = None
        self.argv: Sequence[str] = ()
        self.env: Mapping[str, str] = {}
        self.process_options: dict[str, Any] = {}
        self.starts = 0

    async def _receive_notifications(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await self._notify.bind(self.notify_path)
        self._notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        task_status.started()
        credentials_size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while True:
            data, ancillary, _flags, _address = await self._notify.recvmsg(4096, credentials_size)
            pid = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
            fields = dict(line.partition("=")[::2] for line in data.decode().splitlines() if line)
            self.notifications.append(Notification(pid=pid, fields=fields))
            self._changed.set()
            self._changed = trio.Event()

    async def start(
        self,
        argv: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **process_options: Any,
    ) -> trio.Process:
        """Start ``argv`` with the sockets as fds 3, 4, ...

        Args:
            argv: the command; default: the previous one (as are ``env`` and options).
            env: variables added to this process's environment for the child.
            process_options: passed to ``trio.lowlevel.open_process`` (``cwd=``,
                ``stdout=``, ``stderr=``, ...).
        """
        assert self.process is None or self.process.returncode is not None, "already running"
        if argv is not None:
            self.argv = list(argv)
        if env is not None:
            self.env = dict(env)
        if process_options or argv is not None:
            self.process_options = process_options
        child_env = {
            **os.environ,
            **self.env,
            "LISTEN_FDS": str(len(self.sockets)),
            "LISTEN_FDNAMES": ":".join(self.fd_names),
            "NOTIFY_SOCKET": self.notify_path,
        }
        held = [sock.fileno() for sock in self.sockets]
        shim = [sys.executable, "-c", _SHIM, ",".join(map(str, held))]
        executable = self.argv[0]
        if os.sep not in executable:
            import shutil

            executable = shutil.which(executable) or executable
        self.process = await trio.lowlevel.open_process(
            [*shim, executable, *self.argv[1:]],
            env=child_env,
            pass_fds=held,
            **self.process_options,
        )
        self.starts += 1
        return self.process

    async def wait_notify(self, field: str, pid: int | None = None) -> Notification:
        """Wait for a message with ``field`` (``"READY=1"`` or a bare key ``"STATUS"``).

        Only messages from ``pid`` (default: the current child) count, including ones
        that arrived before the call.
        """
        key, has_value, value = field.partition("=")
        if pid is None:
            assert self.process is not None, "no child started"
            pid = self.process.pid
        seen = 0
        while True:
            for note in self.notifications[seen:]:
                matches = key in note.fields and (not has_value or note.fields[key] == value)
                if note.pid == pid and matches:
                    return note
            seen = len(self.notifications)
            if self.process is not None and self.process.pid == pid:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"child {pid} exited ({self.process.returncode}) before {field}"
                    )
                with trio.move_on_after(0.05):  # also notice the child's exit
                    await self._changed.wait()
            else:
                await self._changed.wait()

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the current child and wait for it to exit; returns its exit code."""
        assert self.process is not None, "no child started"
        if self.process.returncode is None:
            self.process.send_signal(signum)
        return await self.process.wait()

    async def restart(
        self, signum: int = signal.SIGTERM, *, wait_ready: bool = True
    ) -> trio.Process:
        """Stop the child (``signum``), start the same command again, wait for ``READY=1``."""
        await self.stop(signum)
        process = await self.start()
        if wait_ready:
            await self.wait_notify("READY=1")
        return process

    async def _kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            with trio.CancelScope(shield=True):
                await self.process.wait()

    def _close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self._notify.close()


@asynccontextmanager
async def open_fd_holder(
    directory: Path,
    *,
    unix: bool = False,
    names: Sequence[str] | None = None,
    extra_tcp: int = 0,
) -> AsyncIterator[FdHolder]:
    """Bind the sockets (TCP on 127.0.0.1, and a unix socket when ``unix``) and hold them.

    ``names`` sets ``LISTEN_FDNAMES`` (default ``tcp`` and ``unix``; the shipped
    tenement.socket names both ``tenement``).

    ``directory`` holds the unix and notify sockets (use a short path such as
    ``tmp_path``; unix socket paths are limited to 107 bytes).
    """
    holder = FdHolder(directory, unix=unix, names=names, extra_tcp=extra_tcp)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(holder._receive_notifications)
            try:
                yield holder
            finally:
                await holder._kill()
                nursery.cancel_scope.cancel()
    finally:
        holder._close()
