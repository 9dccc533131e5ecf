"""A fleet node's relay of API calls for another node's instances (``tenement/api/relay.py``).

One short-lived connection per call to the owner's advertised address: API calls are
rare and small, so they need no pool, and a fresh connection never carries a stale
answer. The call has the hop header with the fleet secret; the owner's answer is read
whole (at most :data:`MAX_ANSWER_BYTES`) and returned as it is, or, for a stream (the
live log), passed on piece by piece as it comes: one piece of at most
:data:`STREAM_PIECE_BYTES` is in memory at a time, the next is read only once the caller
took it, and the caller leaving closes the owner's connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import h11
import trio

from tenement.api import http
from tenement.api.relay import HOP_HEADER, RelayFailed
from tenement.asgi import cancel_on_disconnect
from tenement.proxy.fleet import Peer, check_hop, peer_address
from tenement.server.directory import FleetDirectory
from tenement.types import Receive, Send

#: how long a node that is listed up may take to accept the connection
CONNECT_SECONDS = 2.0
#: how long the owner may take to answer (a spawn waits for its instance's start)
ANSWER_SECONDS = 120.0
#: an API answer is small; a larger one is refused, not buffered
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: what a stream reads from the owner at a time
STREAM_PIECE_BYTES = 65536
#: a stream the owner sent nothing on for this long is ended: the owner sends a
#: keep-alive every 15 s (``tenement.api.sse``), so it is gone (a partition sends no FIN)
STREAM_IDLE_SECONDS = 60.0
#: the owner's headers passed on with its answer (the length is the caller's server's)
PASSED_HEADERS = (b"retry-after", b"etag", b"link", b"allow")
STREAM_HEADERS = (b"content-type", b"cache-control", b"x-accel-buffering", *PASSED_HEADERS)

#: a body made as it is sent (a tenant's data being packed): given the function that
#: sends a piece, it sends them all, and returns the trailer fields that end the body
#: (what is known only at the end: the data's SHA-256); sent chunked
Producer = Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[list[tuple[bytes, bytes]]]]


class FleetRelay:
    """Implements :class:`tenement.api.relay.Relay` with the node's fleet directory."""

    def __init__(self, directory: FleetDirectory) -> None:
        self._directory = directory
        self.node = directory.node

    @property
    def node_timeout(self) -> float:
        return self._directory.node_timeout

    def hop(self, headers: list[tuple[bytes, bytes]]) -> str:
        return check_hop(headers, self._directory.secret).value

    async def owner_of(self, instance_id: str) -> str | None:
        owner = await self._directory.owner(instance_id)
        return owner.node if isinstance(owner, Peer) else None

    def node_state(self, node: str) -> str | None:
        if node == self.node:
            return "draining" if self._directory.own_state == "draining" else "up"
        peer = self._directory.peer(node)
        if peer is None:
            return None
        if not peer.up:
            return "down"
        return "draining" if peer.state == "draining" else "up"

    def live_nodes(self) -> Sequence[str]:
        peers = self._directory.peers()
        return sorted([self.node, *(peer.node for peer in peers if peer.up)])

    async def _open(self, node: str) -> tuple[Peer, trio.SocketStream]:
        """A new connection to ``node``'s advertised address."""
        retry_after = self._directory.retry_after_seconds
        peer = self._directory.peer(node)
        if peer is None or not peer.up:
            where = f" ({peer.advertise})" if peer is not None else ""
            raise RelayFailed(
                f"Service temporarily unavailable: the call is for fleet node {node}{where}, "
                "which is down; retry once it is back (ten nodes shows it)",
                retry_after,
            )
        try:
            with trio.fail_after(CONNECT_SECONDS):
                address = peer_address(peer.advertise)
                stream = await trio.open_tcp_stream(address.path, address.port or 0)
        except (OSError, trio.TooSlowError) as exc:
            why = (
                "does not answer"
                if isinstance(exc, trio.TooSlowError)
                else f"cannot be reached ({exc})"
            )
            raise RelayFailed(
                f"Service temporarily unavailable: the call is for fleet node {node} "
                f"({peer.advertise}), which {why}",
                retry_after,
            ) from None
        return peer, stream

    def _silent(self, peer: Peer, exc: Exception) -> RelayFailed:
        return RelayFailed(
            f"Service temporarily unavailable: fleet node {peer.node} ({peer.advertise}) "
            f"did not answer the relayed call ({type(exc).__name__}: {exc})",
            self._directory.retry_after_seconds,
        )

    async def send(
        self,
        node: str,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | Producer,
        *,
        answer_seconds: float = ANSWER_SECONDS,
    ) -> http.Response:
        """The owner's answer (see :class:`tenement.api.relay.Relay`); ``body`` a
        :data:`Producer` is sent as it makes it (a tenant's data on its way to another
        node)."""
        peer, stream = await self._open(node)
        async with stream:
            try:
                with trio.fail_after(answer_seconds):
                    return await _exchange(
                        stream, peer, method, target, headers, body, self._directory.secret
                    )
            except (OSError, trio.BrokenResourceError, trio.TooSlowError, h11.ProtocolError) as exc:
                raise self._silent(peer, exc) from None

    async def stream(
        self,
        node: str,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        peer, stream = await self._open(node)
        async with stream:
            conn = h11.Connection(h11.CLIENT)
            try:
                with trio.fail_after(ANSWER_SECONDS):
                    await stream.send_all(
                        _request(conn, peer, method, target, headers, b"", self._directory.secret)
                    )
                    head = await _next_event(conn, stream)
                    if not isinstance(head, h11.Response):
                        raise h11.RemoteProtocolError("the connection closed before an answer")
            except (OSError, trio.BrokenResourceError, trio.TooSlowError, h11.ProtocolError) as exc:
                raise self._silent(peer, exc) from None
            kept = [(name, value) for name, value in head.headers if name in STREAM_HEADERS]
            await send({"type": "http.response.start", "status": head.status_code, "headers": kept})
            # the head goes out now, not with the first piece: an event stream's caller
            # waits for it (the owner has sent it: it listens)
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            ended = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_on_disconnect, receive, nursery.cancel_scope)
                await _pass_body(conn, stream, send)
                ended = True
                nursery.cancel_scope.cancel()
            if ended:  # else the caller left: the connection to the owner closes here
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> object:
    """The next h11 event of the owner's answer, reading at most a piece at a time."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(STREAM_PIECE_BYTES))


async def _pass_body(conn: h11.Connection, stream: trio.SocketStream, send: Send) -> None:
    """Send the owner's body on until it ends; an owner that breaks off, or is silent for
    :data:`STREAM_IDLE_SECONDS`, ends it too (the head is out: there is no status left
    to tell it with)."""
    try:
        while True:
            event = None
            with trio.move_on_after(STREAM_IDLE_SECONDS):
                event = await _next_event(conn, stream)
            if event is None:
                return
            if isinstance(event, h11.Data):
                piece = bytes(event.data)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return
    except (OSError, trio.BrokenResourceError, h11.ProtocolError):
        return


def _request(
    conn: h11.Connection,
    peer: Peer,
    method: str,
    target: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    secret: bytes,
) -> bytes:
    out = _head(conn, peer, method, target, headers, len(body), secret)
    out += conn.send(h11.Data(data=body)) if body else b""
    out += conn.send(h11.EndOfMessage())
    return out


def _head(
    conn: h11.Connection,
    peer: Peer,
    method: str,
    target: str,
    headers: list[tuple[bytes, bytes]],
    length: int | None,
    secret: bytes,
) -> bytes:
    framing = (
        (b"transfer-encoding", b"chunked")
        if length is None
        else (b"content-length", b"%d" % length)
    )
    sent = [
        (b"host", peer.advertise.encode()),
        framing,
        (b"connection", b"close"),
        (HOP_HEADER, secret),
        *headers,
    ]
    return conn.send(h11.Request(method=method, target=target, headers=sent))


async def _send_produced(
    stream: trio.SocketStream,
    conn: h11.Connection,
    peer: Peer,
    method: str,
    target: str,
    headers: list[tuple[bytes, bytes]],
    produce: Producer,
    secret: bytes,
) -> None:
    """The request with a body made as it is sent, chunked, its trailer at the end."""
    await stream.send_all(_head(conn, peer, method, target, headers, None, secret))

    async def send_piece(piece: bytes) -> None:
        # the piece itself goes to the socket, between its chunk's framing: no join
        for part in conn.send_with_data_passthrough(h11.Data(data=piece)) or ():
            await stream.send_all(part)

    trailers = await produce(send_piece)
    await stream.send_all(conn.send(h11.EndOfMessage(headers=trailers)))


async def _exchange(
    stream: trio.SocketStream,
    peer: Peer,
    method: str,
    target: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes | Producer,
    secret: bytes,
) -> http.Response:
    conn = h11.Connection(h11.CLIENT)
    if callable(body):
        await _send_produced(stream, conn, peer, method, target, headers, body, secret)
    else:
        await stream.send_all(_request(conn, peer, method, target, headers, body, secret))
    status = 0
    content_type: str | None = None
    kept: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            for name, value in event.headers:
                if name == b"content-type":
                    content_type = value.decode("latin-1")
                elif name in PASSED_HEADERS:
                    kept.append((name, value))
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_ANSWER_BYTES:
                raise h11.RemoteProtocolError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
            chunks.append(bytes(event.data))
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
    return http.Response(status, b"".join(chunks), content_type, tuple(kept))
