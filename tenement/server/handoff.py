"""hypercorn, for the connections ``h1.py`` hands over (and every connection of a
:func:`~tenement.server.http.serve_http` given no ``fast_path``).

``h1.py`` serves every HTTP/1.1 request (the proxy's, the API's, the dashboard's) but
those hypercorn serves: upgrades other than ``h2c`` (WebSocket), an ``Expect`` other
than ``100-continue``, HTTP/2 and requests h11 refuses. Its protocol code is imported on the
first of those, not at start: importing all of hypercorn (with h2, hpack and its
multiprocessing helpers) was 80-140 ms of a ~0.45 s start here. Its ``Config`` is made at
start (``hypercorn.config``, ~20 ms), so that a bad override fails the start rather than
the first connection handed over, and its ``keep_alive_timeout`` is ``h1.py``'s too.

How it plugs in (pinned by ``tests/integration/server/test_http_serving.py``): each
connection gets its own ``WorkerContext`` whose ``terminated`` event is a
:class:`_DrainEvent` (see ``http.py`` for the drain). Its stream is watched
(:class:`_WatchedStream`): a WebSocket's app learns at once that its client is gone
(``tenement.asgi.CLIENT_GONE``), and a cancelled connection's socket is closed under
hypercorn's shielded writes (:func:`_cut_when_done`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import trio

from tenement.asgi import CLIENT_GONE
from tenement.errors import TenementError
from tenement.types import ASGIApp, Message, Receive, Scope, Send
from tenement.wire import MAX_HEAD

if TYPE_CHECKING:
    from hypercorn.config import Config
    from hypercorn.typing import Framework

    from tenement.server.h1 import ReplayStream
    from tenement.tls.stream import TlsStream

#: listen() backlog: hypercorn (and we) re-call listen() on every socket, and the kernel
#: queue must hold the connections that arrive while a restart is in progress.
LISTEN_BACKLOG = 4096
#: how long a connection idle at shutdown may take to present one more request
IDLE_DRAIN_SECONDS = 0.25


class ServeConfigError(TenementError, ValueError):
    """``config_overrides`` names a setting hypercorn does not have."""

    exit_code = 2


def make_config(overrides: Mapping[str, Any] | None = None) -> Config:
    """The hypercorn Config :func:`serve_http` uses: backlog :data:`LISTEN_BACKLOG`, the
    same limit on a head as ``h1.py``'s (:data:`tenement.wire.MAX_HEAD`), logs via
    ``logging``.

    Args:
        overrides: hypercorn ``Config`` attributes to set (``keep_alive_timeout``, ...).

    Raises:
        ServeConfigError: an override names no hypercorn setting.
    """
    from hypercorn.config import Config

    config = Config()
    config.backlog = LISTEN_BACKLOG
    # a head h1.py read whole is replayed to hypercorn, which must not refuse it as long
    config.h11_max_incomplete_size = MAX_HEAD
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


class _WatchedStream:
    """A connection's stream as hypercorn sees it, setting ``gone`` when a read or a
    write fails (the client reset it, or went away): see :data:`tenement.asgi.CLIENT_GONE`.
    Everything else (the socket, the TLS questions) is the stream's own."""

    def __init__(self, stream: trio.SocketStream | TlsStream | ReplayStream, gone: trio.Event):
        self._stream = stream
        self._gone = gone

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            return await self._stream.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._gone.set()
            raise

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._gone.set()
            raise


def _closing_when(app: ASGIApp, shutdown: trio.Event, gone: trio.Event) -> ASGIApp:
    """Wrap ``app`` so responses started after ``shutdown`` say ``Connection: close``,
    and a WebSocket's scope carries ``gone`` (:data:`tenement.asgi.CLIENT_GONE`)."""

    async def draining_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            extensions = {**(scope.get("extensions") or {}), CLIENT_GONE: gone}
            await app({**scope, "extensions": extensions}, receive, send)
            return
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


async def _cut_when_done(stream: trio.SocketStream | TlsStream | ReplayStream) -> None:
    """Close the connection's socket once it is served or cancelled (a drain's deadline,
    a stop). hypercorn writes under a shield: a client that reads nothing (a WebSocket's
    echoes backed up) would hold a cancelled connection, and the server's stop, open
    for ever; with its socket closed the write ends at once."""
    try:
        await trio.sleep_forever()
    finally:
        trio.lowlevel.notify_closing(stream.socket)
        stream.socket.close()


class Hypercorn:
    """Serves a connection with hypercorn's protocol code, loaded on first use.

    Raises:
        ServeConfigError: an override names no hypercorn setting (on creation).
    """

    def __init__(
        self, app: ASGIApp, shutdown: trio.Event, overrides: Mapping[str, Any] | None
    ) -> None:
        self.config = make_config(overrides)
        self._app = app
        self._shutdown = shutdown
        self._serve: (
            Callable[[trio.SocketStream | TlsStream | ReplayStream], Awaitable[None]] | None
        ) = None

    def load(self) -> Callable[[trio.SocketStream | TlsStream | ReplayStream], Awaitable[None]]:
        """Import hypercorn's protocol code now (once); returns what serves a stream."""
        if self._serve is not None:
            return self._serve
        from hypercorn.trio.tcp_server import TCPServer
        from hypercorn.trio.worker_context import WorkerContext
        from hypercorn.utils import wrap_app

        config = self.config
        shutdown = self._shutdown

        async def serve(stream: trio.SocketStream | TlsStream | ReplayStream) -> None:
            context = WorkerContext(max_requests=None)
            context.terminated = _DrainEvent(shutdown)
            gone = trio.Event()
            # hypercorn types apps with its own TypedDicts (ours are MutableMappings) and
            # its stream as an SSLStream (it needs only a trio Stream): both casts say so
            app = cast("Framework", _closing_when(self._app, shutdown, gone))
            wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
            ssl_typed = cast("trio.SSLStream[trio.SocketStream]", _WatchedStream(stream, gone))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cut_when_done, stream)
                await TCPServer(wrapped, config, context, {}, ssl_typed).run()
                nursery.cancel_scope.cancel()

        self._serve = serve
        return serve

    async def serve(self, stream: trio.SocketStream | TlsStream | ReplayStream) -> None:
        """Serve the rest of ``stream`` (a :class:`ReplayStream` starts with what was read)."""
        await self.load()(stream)
