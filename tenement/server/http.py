"""HTTP serving on sockets we were given, with a stop that loses no request.

hypercorn 0.18's trio worker (``hypercorn.trio.serve``) starts every accepted connection
as *idle* and closes idle connections the moment shutdown begins. A connection accepted
just before a restart whose request was not read yet is closed with the request bytes
unread, and the client sees a reset. :func:`serve_http` keeps hypercorn's HTTP machinery
(its per-connection ``TCPServer`` and protocol code) but owns the accept loop and the
shutdown, in two phases:

1. **Stop accepting.** The accept loops end and our listening sockets are closed. For a
   socket inherited from systemd (or any fd holder) that closes only our copy: the
   kernel keeps queueing new connections on it for the next process. ``shutdown()`` is
   never called on a listening socket.
2. **Drain.** Every connection already accepted may still deliver a request and gets
   its answer, marked ``Connection: close``; after that response the connection closes.
   A connection that is idle when shutdown begins (accepted but not read yet, or kept
   alive between requests) gets :data:`IDLE_DRAIN_SECONDS` to present a request before
   it is closed. The whole drain is bounded by ``grace_seconds``; what is still running
   then is cancelled.

How it plugs into hypercorn (``handoff.py``; pinned by
``tests/integration/server/test_http_serving.py``): each connection gets its own
``WorkerContext`` whose ``terminated`` event is a ``_DrainEvent``. hypercorn awaits
``terminated.wait()`` only from the connection's idle task (returning means "close this
idle connection now"), and asks
``terminated.is_set()`` after each response (True means "do not keep the connection
alive"; we answer False and let ``Connection: close`` end the connection instead).
HTTP/1.1 is what is drained; an HTTP/2 (h2c) connection is not told to go away, and a
WebSocket is not closed: both are cut at ``grace_seconds``.

Lifespan events are not sent: the caller owns startup and shutdown of what the app uses.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

import trio

from tenement.server.accept import accept_connections
from tenement.server.h1 import BODY_SECONDS, Express, Http1Connection, IdleConnections
from tenement.server.handoff import IDLE_DRAIN_SECONDS, LISTEN_BACKLOG, Hypercorn
from tenement.tls.handshake import ChooseContext, tls_handshake
from tenement.tls.stream import TlsStream
from tenement.types import ASGIApp

log = logging.getLogger(__name__)


def describe_socket(sock: socket.socket, *, secure: bool = False) -> str:
    """``http://127.0.0.1:8080``, ``https://[::1]:443`` or
    ``http://unix:/run/tenement/tenement.sock``."""
    address = sock.getsockname()
    scheme = "https" if secure else "http"
    if sock.family == socket.AF_INET:
        return f"{scheme}://{address[0]}:{address[1]}"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{address[0]}]:{address[1]}"
    if sock.family == socket.AF_UNIX:
        return f"{scheme}://unix:{address}"
    return f"{scheme}://{address}"


def _peer(conn: socket.socket) -> str:
    """The client of ``conn`` for a log line (``127.0.0.1:50312``, ``unix``)."""
    try:
        address = conn.getpeername()
    except OSError:
        return "a client already gone"
    if conn.family in (socket.AF_INET, socket.AF_INET6):
        return f"{address[0]}:{address[1]}"
    return "a Unix socket client"


def _ip_address(family: int, address: Any) -> tuple[str, int] | None:
    """``(host, port)`` of an IP socket address (as ASGI's ``client`` and ``server``);
    None for a Unix socket."""
    if family in (socket.AF_INET, socket.AF_INET6):
        return (address[0], address[1])
    return None


async def serve_http(
    app: ASGIApp,
    sockets: list[socket.socket],
    *,
    shutdown: trio.Event,
    grace_seconds: float,
    config_overrides: Mapping[str, Any] | None = None,
    fast_path: Callable[[str | None], bool] | None = None,
    express: Express | None = None,
    body_seconds: float = BODY_SECONDS,
    tls: ChooseContext | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` over HTTP/1.1 on ``sockets`` until ``shutdown`` is set, then drain.

    Args:
        app: the ASGI application.
        sockets: bound stream sockets (inherited from systemd or bound by the caller);
            ``listen(LISTEN_BACKLOG)`` is called on each (``handoff.py``).
        shutdown: set it to stop: accepting ends at once, accepted connections drain.
        grace_seconds: the most the drain may take; requests still running after it
            are cancelled.
        config_overrides: hypercorn ``Config`` settings (see
            :func:`tenement.server.handoff.make_config`); ``keep_alive_timeout`` is
            ``h1.py``'s too.
        fast_path: requests whose ``Host`` this accepts are served without hypercorn
            (``h1.py``: HTTP/1.1 without an upgrade; everything else still goes to hypercorn,
            whose protocol code is then imported on the first connection handed to it).
        express: with ``fast_path``, the proxy's express lane for whole requests
            (``h1.py``; ``Proxy.express``).
        body_seconds: the most a request body read here may pause between two reads
            (``h1.py``: a slower average rate is cut off too).
        tls: serve HTTPS: every connection starts with a TLS handshake whose context
            this chooses from the ClientHello (``tenement.tls``); None: plain HTTP.
        task_status: ``started(binds)`` once every socket is accepting, with one
            ``http://...`` description per socket.

    Returns:
        When every connection is finished (or cancelled at ``grace_seconds``).

    Raises:
        ServeConfigError: a bad ``config_overrides`` key.

    Resource handling:
        Takes ownership of ``sockets``: they are closed when accepting stops. Closing an
        inherited socket closes this process's descriptor only; the holder's copy keeps
        its queue for the next process. ``shutdown()`` is never called on them.
    """
    hypercorn = Hypercorn(app, shutdown, config_overrides)
    if fast_path is None:
        hypercorn.load()  # it serves every connection
    binds = [describe_socket(sock, secure=tls is not None) for sock in sockets]
    for sock in sockets:
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)

    idle = IdleConnections(shutdown, IDLE_DRAIN_SECONDS)

    async def handle(conn: socket.socket) -> None:
        peer = _peer(conn)
        stream: trio.SocketStream | TlsStream
        if tls is not None:
            try:
                secured = await tls_handshake(conn, tls, greeting=idle.greeting)
            except Exception:  # the barrier, as below
                log.exception("TLS handshake with %s ended by an error", peer)
                secured = None
            if secured is None:
                conn.close()
                return
            conn, stream = secured, TlsStream(secured)
        else:
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
        try:
            if fast_path is None:
                await hypercorn.serve(stream)
            else:
                await serve_fast(stream, conn)
        except Exception:
            # The barrier: each connection is its own fault domain. Whatever a client
            # sends (or a tenant answers) that a protocol layer fails on ends this
            # connection, never the server and the tenants with it. Cancellation (a
            # drain's deadline, a stop) is a BaseException and passes.
            log.exception("connection from %s ended by an error", peer)
        finally:  # whatever ended it (a cancelled drain included), the connection ends
            await trio.aclose_forcefully(stream)

    async def serve_fast(stream: trio.SocketStream | TlsStream, conn: socket.socket) -> None:
        assert fast_path is not None
        try:
            client = _ip_address(conn.family, conn.getpeername())
            server = _ip_address(conn.family, conn.getsockname())
        except OSError:  # gone already
            return
        await Http1Connection(
            stream,
            conn,
            app,
            is_fast=fast_path,
            handoff=hypercorn.serve,
            idle=idle,
            keep_alive_seconds=hypercorn.config.keep_alive_timeout,
            body_seconds=body_seconds,
            client=client,
            server=server,
            express=express,
        ).run()

    async with trio.open_nursery() as connections:
        connections.start_soon(idle.drain_on_shutdown)
        try:
            async with trio.open_nursery() as accepting:
                for sock in sockets:
                    accepting.start_soon(accept_connections, sock, handle, connections)
                for bind in binds:
                    log.info("serving on %s", bind)
                task_status.started(binds)
                await shutdown.wait()
                accepting.cancel_scope.cancel()
        finally:
            for sock in sockets:
                trio.lowlevel.notify_closing(sock)
                sock.close()
            connections.cancel_scope.deadline = trio.current_time() + grace_seconds
        log.info("stopped accepting; draining connections for at most %ss", grace_seconds)
    if connections.cancel_scope.cancelled_caught:
        log.warning("drain took longer than %ss: the connections left were cut", grace_seconds)
    else:
        log.info("drained: every accepted connection finished")
