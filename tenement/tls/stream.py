"""A trio stream over a handshaken non-blocking ``ssl.SSLSocket``, for what the front
hands to hypercorn (a WebSocket, an ``Expect`` h11 does not know) and for closing.

hypercorn tells TLS from plain streams by duck typing (``do_handshake``,
``selected_alpn_protocol``, ``transport_stream.socket``): this stream answers as a
finished TLS stream, so hypercorn's scopes say ``https``/``wss``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

import trio

from tenement import sockets


class TlsStream(trio.abc.HalfCloseableStream):
    """The stream of one TLS connection; the handshake is done already."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.socket = sock  # hypercorn reads the addresses from it
        self.transport_stream = self
        self._closed = False

    async def do_handshake(self) -> None:
        await trio.lowlevel.checkpoint()

    def selected_alpn_protocol(self) -> str:
        return self.socket.selected_alpn_protocol() or "http/1.1"

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("the connection was closed")
        try:
            return await sockets.receive(self.socket)
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the connection was closed")
        try:
            await sockets.send_all(self.socket, bytes(data))
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self.socket)

    async def send_eof(self) -> None:
        # TLS has no half-close of its own: close_notify ends both directions
        await trio.lowlevel.checkpoint()
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            close_notify(self.socket)
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()
        await trio.lowlevel.checkpoint()


def close_notify(sock: ssl.SSLSocket) -> None:
    """Send TLS's close_notify without waiting for the client's: a client reading to
    the end then sees a clean end, not a truncation (which strict clients refuse)."""
    # the client is gone, or its close_notify is not here yet: sending ours is enough
    with contextlib.suppress(ssl.SSLError, OSError, ValueError):
        sock.unwrap()
