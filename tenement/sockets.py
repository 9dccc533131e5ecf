"""Reading and writing a non-blocking stdlib socket from trio, without trio's socket layer.

trio's socket methods checkpoint around every call: a successful ``send`` or ``recv``
still yields to the scheduler, which on the proxy's hot path is a large share of a
request's cost. These try the call first and wait only on EAGAIN, so that a read or a
write costs one syscall when the kernel is ready for it. Under load it usually is: a wait
first would cost an ``epoll_ctl`` and find the bytes there already; the exception is
where the bytes are known not to be there yet (``wait_first``). Commits fa8087c, 4998d20
and 854e213 have the measurements.

They are checkpoints only when they wait: a loop that may never wait must yield itself
(``h1.py`` does once per request).

A client's connection may be a non-blocking ``ssl.SSLSocket`` (built-in TLS): OpenSSL
then says "wait" with ``SSLWantReadError``/``SSLWantWriteError`` instead of EAGAIN, and
either may come from a read or a write (TLS 1.3 writes its session tickets while
reading), so each is waited on as what it says.
"""

from __future__ import annotations

import socket
import ssl

import trio

#: what a non-blocking read or write raises when it would have to wait
WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
#: bytes asked of the kernel per read, by every read of a client's or a tenant's
#: connection (``h1.py``, the proxy); so also about the largest piece of a streamed body
#: held at once
READ_SIZE = 64 * 1024


async def send_all(sock: socket.socket, data: bytes) -> None:
    """Write all of ``data``, waiting only when the kernel's buffer is full.

    Raises:
        OSError: the write failed (the peer reset the connection, ...).
        trio.ClosedResourceError: the socket was closed while waiting.
    """
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except (BlockingIOError, ssl.SSLWantWriteError):
            await trio.lowlevel.wait_writable(sock)
            continue
        except ssl.SSLWantReadError:
            await trio.lowlevel.wait_readable(sock)
            continue
        view = view[sent:]


async def receive(sock: socket.socket, *, wait_first: bool = False) -> bytes:
    """Up to :data:`READ_SIZE` bytes; ``b""`` at the end of the stream.

    Args:
        wait_first: wait for readability before the first try, where the bytes are
            almost never there yet: a tenant's answer right after its request was
            written, or a read right after one that found nothing; trying first would
            cost a failed ``recv`` each time.

    Raises:
        OSError: the read failed.
        trio.ClosedResourceError: the socket was closed while waiting.
    """
    if wait_first and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
        await trio.lowlevel.wait_readable(sock)
    while True:
        try:
            return sock.recv(READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError):
            await trio.lowlevel.wait_readable(sock)
        except ssl.SSLWantWriteError:
            await trio.lowlevel.wait_writable(sock)
