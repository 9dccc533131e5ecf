"""What tenement needs from systemd: inherited sockets, readiness, signals, the journal.

Everything here works without systemd too: no ``LISTEN_FDS`` means no inherited sockets,
no ``NOTIFY_SOCKET`` makes :class:`Notifier` a no-op, and logging goes to stderr when
stderr is not the journal. Functions take the environment as a parameter and consume
(remove) the variables they read, so that nothing of systemd's leaks into a child.

Lifecycle signals (the unit's ``KillMode=process`` + ``RestartKillSignal=SIGUSR2``):

========  ===================  ==================================================
signal    :class:`Lifecycle`   what ``ten serve`` does
========  ===================  ==================================================
SIGTERM   ``stop``             drain requests, stop the tenants, exit
SIGINT    ``stop``             same (Ctrl-C in a terminal)
SIGUSR2   ``restart``          drain requests, exit leaving the tenants running
SIGHUP    ``reload``           re-read tenement.toml (``RELOADING=1`` .. ``READY=1``)
========  ===================  ==================================================
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager

import attrs
import trio

from tenement.errors import TenementError

log = logging.getLogger(__name__)

#: the first inherited fd (sd_listen_fds(3): SD_LISTEN_FDS_START)
LISTEN_FDS_START = 3

#: the name systemd gives an fd when the unit sets no FileDescriptorName=
UNKNOWN_FD_NAME = "unknown"

_FAMILY_NAMES = {socket.AF_INET: "tcp", socket.AF_INET6: "tcp6", socket.AF_UNIX: "unix"}


class SystemdError(TenementError):
    """systemd handed us something we cannot use (a bad fd, a malformed variable)."""


@attrs.frozen
class ListenSocket:
    """One listening stream socket inherited from systemd.

    Attributes:
        sock: the socket; the caller owns it from now on (it is close-on-exec).
        name: its ``FileDescriptorName=`` (``"unknown"`` when the unit sets none).
        fd: the descriptor number it arrived as (3, 4, ...).
    """

    sock: socket.socket
    name: str
    fd: int

    @property
    def family(self) -> str:
        """``"tcp"``, ``"tcp6"`` or ``"unix"``."""
        return _FAMILY_NAMES[self.sock.family]

    def describe(self) -> str:
        """A line for logs: ``fd 3 (tenement.socket) tcp 127.0.0.1:8080``."""
        address = self.sock.getsockname()
        if self.sock.family == socket.AF_UNIX:
            where = address.decode() if isinstance(address, bytes) else address
            where = where or "(unnamed)"
            if where.startswith("\0"):
                where = "@" + where[1:]
        else:
            host, port = address[0], address[1]
            where = f"[{host}]:{port}" if self.sock.family == socket.AF_INET6 else f"{host}:{port}"
        return f"fd {self.fd} ({self.name}) {self.family} {where}"


def listen_sockets(environ: MutableMapping[str, str]) -> list[ListenSocket]:
    """Adopt the listening sockets systemd passed (sd_listen_fds_with_names(3) semantics).

    ``LISTEN_FDS`` counts fds from 3; they are ours only when ``LISTEN_PID`` is our pid
    (otherwise the variables were meant for a parent and are ignored). ``LISTEN_FDNAMES``
    (colon-separated) names them. ``LISTEN_PID``, ``LISTEN_FDS`` and ``LISTEN_FDNAMES``
    are removed from ``environ`` in every case, so a child never sees them.

    Args:
        environ: the process environment (``os.environ`` in ``ten serve``); consumed.

    Returns:
        The sockets in fd order; empty when none were passed to this process.

    Raises:
        SystemdError: a variable is malformed, or an fd is not a listening stream socket
            (the message names the fd, its name and what the unit should say instead).

    Resource handling:
        The caller owns the returned sockets. Each is made close-on-exec. Closing one
        closes this process's copy only: systemd keeps its own and the kernel keeps
        queueing connections for the next process.
    """
    adopted: list[ListenSocket] = []
    try:
        for fd, name in listen_fds_from_environ(environ, os.getpid()):
            adopted.append(ListenSocket(sock=adopt_listen_socket(fd, name), name=name, fd=fd))
    except BaseException:
        for done in adopted:
            done.sock.close()
        raise
    for done in adopted:
        log.info("adopted listening socket %s", done.describe())
    return adopted


def listen_fds_from_environ(environ: MutableMapping[str, str], pid: int) -> list[tuple[int, str]]:
    """``(fd, name)`` for each fd ``LISTEN_*`` in ``environ`` passes to process ``pid``.

    The parsing half of :func:`listen_sockets` (no fd is touched); consumes the variables.

    Raises:
        SystemdError: a variable is malformed or the names do not match the count.
    """
    pid_text = environ.pop("LISTEN_PID", None)
    count_text = environ.pop("LISTEN_FDS", None)
    names_text = environ.pop("LISTEN_FDNAMES", None)
    if pid_text is None or count_text is None:
        return []
    try:
        listen_pid = int(pid_text)
        count = int(count_text)
    except ValueError:
        raise SystemdError(
            f"LISTEN_PID={pid_text!r} / LISTEN_FDS={count_text!r} are not numbers;"
            " start tenement from a .socket unit or unset them"
        ) from None
    if listen_pid != pid:
        log.debug("LISTEN_FDS are for pid %s, not us (%s): ignored", listen_pid, pid)
        return []
    if count < 0:
        raise SystemdError(f"LISTEN_FDS={count} is negative")
    if names_text is None:
        names = [UNKNOWN_FD_NAME] * count
    else:
        names = names_text.split(":")
        if len(names) != count:
            raise SystemdError(
                f"LISTEN_FDNAMES names {len(names)} fds ({names_text!r}) but LISTEN_FDS={count}"
            )
    return [(LISTEN_FDS_START + offset, name) for offset, name in enumerate(names)]


def adopt_listen_socket(fd: int, name: str) -> socket.socket:
    """Wrap ``fd`` as a socket after checking it is a listening stream socket.

    Raises:
        SystemdError: it is not (the fd is left open and untouched then).
    """
    label = f"fd {fd} ({name})"
    try:
        mode = os.fstat(fd).st_mode
    except OSError as error:
        raise SystemdError(
            f"{label} was announced in LISTEN_FDS but is not open: {error}"
        ) from None
    if not stat.S_ISSOCK(mode):
        raise SystemdError(f"{label} is not a socket; tenement.socket must use ListenStream=")
    sock = socket.socket(fileno=fd)
    try:
        kind = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        if kind == socket.SOCK_DGRAM:
            raise SystemdError(
                f"{label} is a datagram socket; tenement.socket must use ListenStream="
            )
        if kind != socket.SOCK_STREAM:
            raise SystemdError(
                f"{label} is not a stream socket (SO_TYPE {kind});"
                " tenement.socket must use ListenStream="
            )
        if sock.family not in _FAMILY_NAMES:
            raise SystemdError(
                f"{label} has address family {sock.family!r}; tenement serves TCP and unix sockets"
            )
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise SystemdError(
                f"{label} is not listening (a connection?); tenement.socket must say Accept=no"
            )
        sock.set_inheritable(False)
    except BaseException:
        sock.detach()  # leave the fd as we found it
        raise
    return sock


class Notifier:
    """Sends sd_notify(3) messages to the service manager over ``NOTIFY_SOCKET``.

    Without ``NOTIFY_SOCKET`` (not run by systemd with ``Type=notify``) every method is a
    no-op, so callers never ask. ``NOTIFY_SOCKET`` is removed from the environ given,
    so tenants and other children cannot talk to systemd in our name.

    A message that cannot be delivered is logged as a warning and dropped: systemd
    enforces its own timeouts on a service that does not report.
    """

    def __init__(self, environ: MutableMapping[str, str]) -> None:
        address = environ.pop("NOTIFY_SOCKET", None) or None
        if address is not None and address.startswith("@"):
            address = "\0" + address[1:]
        if address is not None and not address.startswith(("/", "\0")):
            log.warning("NOTIFY_SOCKET=%r is not a unix socket path; not notifying", address)
            address = None
        self._address = address

    @property
    def enabled(self) -> bool:
        """True when there is a service manager to notify."""
        return self._address is not None

    def notify(self, *fields: str) -> None:
        """Send raw ``KEY=VALUE`` fields in one datagram (a no-op when not enabled)."""
        if self._address is None:
            return
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self._address)
        except OSError as error:
            log.warning("could not notify systemd (%s): %s", fields[0] if fields else "", error)

    def ready(self, status: str | None = None) -> None:
        """``READY=1``: startup (or a reload) finished; we are serving."""
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        """``STATUS=text``: what we are doing, shown by ``systemctl status``."""
        self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> None:
        """``STOPPING=1``: shutdown began."""
        self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def reloading(self) -> None:
        """``RELOADING=1`` with ``MONOTONIC_USEC=``, as systemd 253+ (``Type=notify-reload``) wants.

        Send :meth:`ready` when the reload is done.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def extend_timeout(self, seconds: float) -> None:
        """``EXTEND_TIMEOUT_USEC=``: we need ``seconds`` more (e.g. a long migration)."""
        self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def watchdog(self) -> None:
        """``WATCHDOG=1``: we are alive (see :func:`serve_watchdog`)."""
        self.notify("WATCHDOG=1")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def watchdog_interval(environ: MutableMapping[str, str]) -> float | None:
    """How often to send ``WATCHDOG=1``: half of ``WATCHDOG_USEC``, as systemd advises.

    ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` are removed from ``environ``.

    Returns:
        The ping period in seconds, or None when the unit sets no ``WatchdogSec=`` or the
        variables name another pid.

    Raises:
        SystemdError: the variables are not numbers.
    """
    usec_text = environ.pop("WATCHDOG_USEC", None)
    pid_text = environ.pop("WATCHDOG_PID", None)
    if not usec_text:
        return None
    try:
        usec = int(usec_text)
        pid = int(pid_text) if pid_text else None
    except ValueError:
        raise SystemdError(
            f"WATCHDOG_USEC={usec_text!r} / WATCHDOG_PID={pid_text!r} are not numbers"
        ) from None
    if pid is not None and pid != os.getpid():
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000 / 2


async def serve_watchdog(
    notifier: Notifier,
    interval: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send ``WATCHDOG=1`` every ``interval`` seconds until cancelled.

    Run it in the nursery that would hang if we hung, so a stuck event loop stops the
    pings and systemd restarts us.
    """
    task_status.started()
    while True:
        notifier.watchdog()
        await trio.sleep(interval)


class Lifecycle(enum.Enum):
    """What a signal asks the server to do."""

    STOP = "stop"
    RESTART = "restart"
    RELOAD = "reload"


#: signal -> lifecycle command (see the module docstring)
LIFECYCLE_SIGNALS = {
    signal.SIGTERM: Lifecycle.STOP,
    signal.SIGINT: Lifecycle.STOP,
    signal.SIGUSR2: Lifecycle.RESTART,
    signal.SIGHUP: Lifecycle.RELOAD,
}


@asynccontextmanager
async def open_lifecycle_signals() -> AsyncIterator[AsyncIterator[Lifecycle]]:
    """Catch SIGTERM, SIGINT, SIGUSR2 and SIGHUP and yield them as :class:`Lifecycle`.

    Usage::

        async with open_lifecycle_signals() as commands:
            async for command in commands:
                ...

    The signals are caught (not acted on by their default handlers) from entering the
    block until leaving it; nothing runs inside a signal handler (trio queues them).
    Must be called from trio's main thread.
    """
    with trio.open_signal_receiver(*LIFECYCLE_SIGNALS) as received:

        async def commands() -> AsyncIterator[Lifecycle]:
            async for signum in received:
                command = LIFECYCLE_SIGNALS[signal.Signals(signum)]
                log.info("received %s: %s", signal.Signals(signum).name, command.value)
                yield command

        yield commands()


def under_journal(environ: MutableMapping[str, str], stream_fd: int = 2) -> bool:
    """True when ``JOURNAL_STREAM`` (``dev:ino``) names the file ``stream_fd`` writes to."""
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        info = os.fstat(stream_fd)
        return (int(device), int(inode)) == (info.st_dev, info.st_ino)
    except (ValueError, OSError):
        return False


def configure_logging(
    environ: MutableMapping[str, str], level: int | str = logging.INFO
) -> logging.Handler:
    """Install one handler on the root logger: the journal under systemd, else stderr.

    Under the journal (stderr is the stream ``JOURNAL_STREAM`` names) records go to
    :class:`systemd.journal.JournalHandler`, which turns every record attribute into a
    journal field; journald keeps the valid (UPPERCASE) names, so log with uppercase
    extras: ``log.info("instance exited", extra={"INSTANCE": iid, "EXIT_CODE": rc})``
    makes ``journalctl INSTANCE=notes:alice`` work. ``JOURNAL_STREAM`` is removed from
    ``environ``.

    Returns:
        The handler installed (remove it from the root logger to undo).
    """
    journal = under_journal(environ)
    environ.pop("JOURNAL_STREAM", None)
    handler: logging.Handler
    if journal:
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="tenement")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
