"""Accepting connections on a listening socket, as stdlib sockets.

``trio.serve_listeners`` hands out trio streams, whose socket methods yield to the
scheduler after every successful call; the HTTP/1.1 fast path (``h1.py``) reads and
writes the stdlib socket itself, so the accept loop is ours. Its errors are handled as
trio's: a closed listener ends the loop, a connection aborted before it was accepted is
skipped, and running out of descriptors or memory pauses accepting for
:data:`PAUSE_SECONDS` (the connections wait in the kernel's queue) instead of failing.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger(__name__)

#: how long accepting pauses when the process is out of descriptors or memory
PAUSE_SECONDS = 0.1

_CLOSED = frozenset({errno.EBADF, errno.ENOTSOCK, errno.EINVAL})
_SKIPPED = frozenset({errno.ECONNABORTED, errno.EPERM, errno.EPROTO})
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


async def accept_connections(
    listener: socket.socket,
    handler: Callable[[socket.socket], Awaitable[None]],
    nursery: trio.Nursery,
) -> None:
    """Start ``handler(connection)`` in ``nursery`` for every connection accepted on
    ``listener`` (non-blocking), until cancelled or the listener is closed.

    The connection is non-blocking and belongs to the handler.

    Raises:
        OSError: an accept error that is neither routine nor exhaustion.
    """
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            try:
                await trio.lowlevel.wait_readable(listener)
            except trio.ClosedResourceError:
                return
            continue
        except OSError as exc:
            if exc.errno in _CLOSED:
                return
            if exc.errno in _EXHAUSTED:
                log.error("cannot accept connections: %s; retrying in %g s", exc, PAUSE_SECONDS)
                await trio.sleep(PAUSE_SECONDS)
            elif exc.errno not in _SKIPPED:
                raise
            continue
        conn.setblocking(False)
        nursery.start_soon(handler, conn)
        # a busy listener must not starve the connections it starts
        await trio.lowlevel.checkpoint()
