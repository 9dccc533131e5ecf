"""A fleet node's relay of API calls for another node's instances (``tenement/api/relay.py``).

One short-lived connection per call to the owner's advertised address: API calls are
rare and small, so they need no pool, and a fresh connection never carries a stale
answer. The call has the hop header with the fleet secret; the owner's answer is read
whole (at most :data:`MAX_ANSWER_BYTES`) and returned as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import h11
import trio

from tenement.api import http
from tenement.api.relay import HOP_HEADER, RelayFailed
from tenement.proxy.fleet import Peer, check_hop, peer_address
from tenement.server.directory import FleetDirectory

#: how long a node that is listed up may take to accept the connection
CONNECT_SECONDS = 2.0
#: how long the owner may take to answer (a spawn waits for its instance's start)
ANSWER_SECONDS = 120.0
#: an API answer is small; a larger one is refused, not buffered
MAX_ANSWER_BYTES = 4 * 1024 * 1024


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
            return "up"
        peer = self._directory.peer(node)
        if peer is None:
            return None
        return "up" if peer.up else "down"

    def live_nodes(self) -> Sequence[str]:
        peers = self._directory.peers()
        return sorted([self.node, *(peer.node for peer in peers if peer.up)])

    async def send(
        self, node: str, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> http.Response:
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
        async with stream:
            try:
                with trio.fail_after(ANSWER_SECONDS):
                    return await _exchange(
                        stream, peer, method, target, headers, body, self._directory.secret
                    )
            except (OSError, trio.BrokenResourceError, trio.TooSlowError, h11.ProtocolError) as exc:
                raise RelayFailed(
                    f"Service temporarily unavailable: fleet node {node} ({peer.advertise}) "
                    f"did not answer the relayed call ({type(exc).__name__}: {exc})",
                    retry_after,
                ) from None


async def _exchange(
    stream: trio.SocketStream,
    peer: Peer,
    method: str,
    target: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    secret: bytes,
) -> http.Response:
    conn = h11.Connection(h11.CLIENT)
    sent = [
        (b"host", peer.advertise.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (HOP_HEADER, secret),
        *headers,
    ]
    out = conn.send(h11.Request(method=method, target=target, headers=sent))
    out += conn.send(h11.Data(data=body)) if body else b""
    out += conn.send(h11.EndOfMessage())
    await stream.send_all(out)
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
                elif name in (b"retry-after", b"etag", b"link", b"allow"):
                    kept.append((name, value))
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_ANSWER_BYTES:
                raise h11.RemoteProtocolError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
            chunks.append(bytes(event.data))
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
    return http.Response(status, b"".join(chunks), content_type, tuple(kept))
