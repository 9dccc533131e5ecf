"""Wait until a freshly started tenant accepts connections.

A wake-on-request holds a client's request while the tenant starts, so the moment
it accepts matters: :func:`wait_accepting` tries to connect every few
milliseconds (1 ms at first, then doubling up to :data:`MAX_POLL_SECONDS`). Each
try is one loopback connect that is refused at once while nobody listens; the
connection made when the app does listen is closed without a byte sent.

It has no timeout of its own: the caller wraps it in
``trio.fail_after(service.startup_timeout)``.
"""

from __future__ import annotations

import errno
import os

import trio

from tenement.supervisor.process import SpawnError, TenantProcess

FIRST_POLL_SECONDS = 0.001
MAX_POLL_SECONDS = 0.010

#: connect errors that mean "not listening yet"
_NOT_YET = (errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET, errno.EAGAIN, errno.ENOTSOCK)


async def accepting(port: int | None, socket_path: str | None) -> bool:
    """One try: does ``127.0.0.1:port`` (or, without a port, the Unix socket) accept?"""
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


async def wait_accepting(
    port: int | None,
    socket_path: str | None = None,
    *,
    process: TenantProcess | None = None,
) -> None:
    """Return as soon as the tenant accepts a connection.

    Args:
        port: its TCP port on 127.0.0.1; when None, ``socket_path`` is tried instead.
        socket_path: its Unix socket.
        process: when given, stop waiting if it exits first.

    Raises:
        SpawnError: ``process`` exited before accepting ("exited with code N before
            accepting connections").

    Cancellation: safe; wrap in ``trio.fail_after`` to bound it.
    """
    delay = FIRST_POLL_SECONDS
    while True:
        if await accepting(port, socket_path):
            return
        if process is not None and not process.alive():
            code = process.returncode
            what = "exited" if code is None else f"exited with code {code}"
            raise SpawnError(f"pid {process.pid} {what} before accepting connections")
        await trio.sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)
