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

How it plugs into hypercorn (pinned by ``tests/integration/server/test_http_serving.py``):
each connection gets its own ``WorkerContext`` whose ``terminated`` event is a
:class:`_DrainEvent`. hypercorn awaits ``terminated.wait()`` only from the connection's
idle task (returning means "close this idle connection now"), and asks
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
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import parse_socket_addr, repr_socket_addr, wrap_app

from tenement.errors import TenementError
from tenement.server.accept import accept_connections
from tenement.server.h1 import Express, Http1Connection, IdleConnections, ReplayStream
from tenement.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: listen() backlog: hypercorn (and we) re-call listen() on every socket, and the kernel
#: queue must hold the connections that arrive while a restart is in progress.
LISTEN_BACKLOG = 4096

#: how long a connection idle at shutdown may take to present one more request
IDLE_DRAIN_SECONDS = 0.25


class ServeConfigError(TenementError, ValueError):
    """``config_overrides`` names a setting hypercorn does not have."""

    exit_code = 2


def make_config(overrides: Mapping[str, Any] | None = None) -> Config:
    """The hypercorn Config :func:`serve_http` uses: backlog 4096, logs via ``logging``.

    Args:
        overrides: hypercorn ``Config`` attributes to set (``keep_alive_timeout``, ...).

    Raises:
        ServeConfigError: an override names no hypercorn setting.
    """
    config = Config()
    config.backlog = LISTEN_BACKLOG
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    for key, value in (overrides or {}).items():
        if key.startswith("_") or not hasattr(config, key):
            raise ServeConfigError(f"hypercorn has no setting {key!r} (in config_overrides)")
        setattr(config, key, value)
    return config


class _DrainEvent:
    """hypercorn's ``terminated`` event, answered per connection (see the module doc)."""

    def __init__(self, shutdown: trio.Event) -> None:
        self._shutdown = shutdown

    async def wait(self) -> None:
        # hypercorn awaits this only while the connection is idle; a request arriving
        # cancels it. After shutdown, give a request already on its way time to land.
        await self._shutdown.wait()
        await trio.sleep(IDLE_DRAIN_SECONDS)

    def is_set(self) -> bool:
        # After each response hypercorn keeps the connection alive unless this is True.
        # A response started after shutdown says "Connection: close" and h11 closes the
        # connection for that; one started before says nothing, so the client may
        # already be sending its next request on it: keep it open (idle), and the idle
        # wait above gives that request its chance.
        return False

    async def set(self) -> None:  # pragma: no cover - hypercorn sets it only in worker_serve
        raise RuntimeError("a connection's drain state follows the server's shutdown event")

    async def clear(self) -> None:  # pragma: no cover - never called by hypercorn
        raise RuntimeError("a connection's drain state follows the server's shutdown event")


class _ConnectionContext(WorkerContext):
    """A WorkerContext per connection, whose ``terminated`` follows our drain policy."""

    def __init__(self, shutdown: trio.Event) -> None:
        super().__init__(max_requests=None)
        self.terminated = _DrainEvent(shutdown)  # type: ignore[assignment]


def _closing_when(app: ASGIApp, shutdown: trio.Event) -> ASGIApp:
    """Wrap ``app`` so responses started after ``shutdown`` say ``Connection: close``."""

    async def draining_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and shutdown.is_set():
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_closing)

    return draining_app


def describe_socket(sock: socket.socket) -> str:
    """``http://127.0.0.1:8080`` or ``http://unix:/run/tenement/tenement.sock``."""
    return f"http://{repr_socket_addr(sock.family, sock.getsockname())}"


async def serve_http(
    app: ASGIApp,
    sockets: list[socket.socket],
    *,
    shutdown: trio.Event,
    grace_seconds: float,
    config_overrides: Mapping[str, Any] | None = None,
    fast_path: Callable[[str | None], bool] | None = None,
    express: Express | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` over HTTP/1.1 on ``sockets`` until ``shutdown`` is set, then drain.

    Args:
        app: the ASGI application.
        sockets: bound stream sockets (inherited from systemd or bound by the caller);
            ``listen(4096)`` is called on each.
        shutdown: set it to stop: accepting ends at once, accepted connections drain.
        grace_seconds: the most the drain may take; requests still running after it
            are cancelled.
        config_overrides: hypercorn ``Config`` settings (see :func:`make_config`).
        fast_path: requests whose ``Host`` this accepts are served without hypercorn
            (``h1.py``: plain HTTP/1.1 only; everything else still goes to hypercorn).
        express: with ``fast_path``, the proxy's express lane for whole plain requests
            (``h1.py``; ``Proxy.express``).
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
    config = make_config(config_overrides)
    wrapped = wrap_app(_closing_when(app, shutdown), config.wsgi_max_body_size, "asgi")
    binds = [describe_socket(sock) for sock in sockets]
    for sock in sockets:
        sock.listen(config.backlog)
        sock.setblocking(False)

    idle = IdleConnections(shutdown, IDLE_DRAIN_SECONDS)

    async def hypercorn_serves(stream: trio.SocketStream | ReplayStream) -> None:
        await TCPServer(wrapped, config, _ConnectionContext(shutdown), {}, stream).run()

    async def handle(conn: socket.socket) -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
        try:
            if fast_path is None:
                await hypercorn_serves(stream)
            else:
                await serve_fast(stream, conn)
        finally:  # whatever ended it (a cancelled drain included), the connection ends
            await trio.aclose_forcefully(stream)

    async def serve_fast(stream: trio.SocketStream, conn: socket.socket) -> None:
        assert fast_path is not None
        try:
            client = parse_socket_addr(conn.family, conn.getpeername())
            server = parse_socket_addr(conn.family, conn.getsockname())
        except OSError:  # gone already
            return
        await Http1Connection(
            stream,
            conn,
            app,
            is_fast=fast_path,
            handoff=hypercorn_serves,
            idle=idle,
            keep_alive_seconds=config.keep_alive_timeout,
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
