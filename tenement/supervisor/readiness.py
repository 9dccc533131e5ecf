"""Wait until a freshly started tenant accepts connections.

A wake-on-request holds a client's request while the tenant starts, so the moment
it accepts matters: :func:`wait_accepting` tries to connect every millisecond or two
for the first :data:`FAST_POLL_FOR_SECONDS` (a typical app starts within it, and is
then seen ~1 ms after it listens instead of ~5), then less often, up to every
:data:`MAX_POLL_SECONDS`. Each try is one loopback connect that is refused at once
while nobody listens (tens of microseconds); the connection made when the app does
listen is closed without a byte sent.

A TCP port that accepts is not enough: another program may have taken the port
between its allocation and the tenant's bind (the tenant then exits with "Address
already in use"). So when the tenant's process group is known (``owner``, or
``process``), a successful connect is confirmed with the kernel
(:func:`tenement.supervisor.procfs.listening_sockets`, ``tenant_holds_any``; a scan
of all of /proc, which may take milliseconds, in a worker thread): a listener held only by
other programs does not count, and the wait goes on (until the tenant exits, or the
caller's timeout). Where the tenant's descriptors cannot be read (it runs as a uid of
its own, and the server lacks CAP_SYS_PTRACE, as under its unit), the kernel's owner of
the listening socket decides: it must be the tenant's uid. Where /proc cannot tell
(not Linux), the connect decides.
A Unix socket path is the tenant's own, so it is not checked.

It has no timeout of its own: the caller wraps it in
``trio.fail_after(service.startup_timeout)``.
"""

from __future__ import annotations

import errno
import logging
import os

import trio

from tenement.supervisor.process import SpawnError, TenantProcess
from tenement.supervisor.procfs import listening_sockets, process_uid, tenant_holds_any

log = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.001
FAST_POLL_SECONDS = 0.002
FAST_POLL_FOR_SECONDS = 1.0
MAX_POLL_SECONDS = 0.010

#: connect errors that mean "not listening yet"
_NOT_YET = (errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET, errno.EAGAIN, errno.ENOTSOCK)


async def accepting(port: int | None, socket_path: str | None) -> bool:
    """One try: does ``127.0.0.1:port`` (or, without a port, the Unix socket) accept?"""
    address: tuple[str, int] | str
    if port is not None:
        family, address = trio.socket.AF_INET, ("127.0.0.1", port)
    elif socket_path is not None:
        if not os.path.exists(socket_path):
            return False
        family, address = trio.socket.AF_UNIX, socket_path
    else:
        raise ValueError("wait_accepting needs a port or a socket path")
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        await sock.connect(address)
    except OSError as exc:
        if exc.errno in _NOT_YET:
            return False
        raise
    finally:
        sock.close()
    return True


async def _owner_listens(owner: int, port: int, foreign: set[int]) -> bool:
    """Whether the listener on ``port`` may be the tenant's (True when /proc cannot tell).

    The cheap part (the kernel's listeners, the tenant's process tree) runs inline; a
    scan of all of /proc, needed only when the tree holds none of the listeners, runs in
    a worker thread. ``foreign`` collects the listening sockets found to be other
    programs'; while only those listen, the tenant's processes are not looked through
    again.
    """
    sockets = listening_sockets(port)
    if not sockets:
        return True  # a connect succeeded, yet the kernel shows no listener: cannot tell
    inodes = frozenset(sockets)
    if inodes <= foreign:
        return False
    held = tenant_holds_any(owner, inodes, scan=False)
    if held is False:
        held = await trio.to_thread.run_sync(tenant_holds_any, owner, inodes)
    if held is None:
        # its descriptors are unreadable: whose uid the listening socket is decides
        uid = process_uid(owner)
        held = True if uid is None else uid in sockets.values()
    if held is False:
        foreign.update(inodes)
        return False
    return True


async def wait_accepting(
    port: int | None,
    socket_path: str | None = None,
    *,
    process: TenantProcess | None = None,
    owner: int | None = None,
) -> None:
    """Return as soon as the tenant accepts a connection.

    Args:
        port: its TCP port on 127.0.0.1; when None, ``socket_path`` is tried instead.
        socket_path: its Unix socket.
        process: when given, stop waiting if it exits first.
        owner: the tenant's process group (= session) id: a listener on ``port`` counts
            only when one of that group's or session's processes holds it. Defaults to
            ``process.pgid``; with neither, any listener counts.

    Raises:
        SpawnError: ``process`` exited before accepting ("exited with code N before
            accepting connections").

    Cancellation: safe; wrap in ``trio.fail_after`` to bound it.
    """
    if owner is None and process is not None:
        owner = process.pgid
    delay = FIRST_POLL_SECONDS
    slow_down_at = trio.current_time() + FAST_POLL_FOR_SECONDS
    foreign: set[int] = set()
    while True:
        if await accepting(port, socket_path):
            if port is None or owner is None:
                return
            known = len(foreign)
            if await _owner_listens(owner, port, foreign):
                return
            if len(foreign) > known:
                log.warning(
                    "port %s accepts, but no process of group %s listens on it: "
                    "another program holds it; still waiting for the tenant",
                    port,
                    owner,
                )
        if process is not None and not process.alive():
            code = process.returncode
            what = "exited" if code is None else f"exited with code {code}"
            raise SpawnError(f"pid {process.pid} {what} before accepting connections")
        await trio.sleep(delay)
        limit = FAST_POLL_SECONDS if trio.current_time() < slow_down_at else MAX_POLL_SECONDS
        delay = min(delay * 2, limit)
