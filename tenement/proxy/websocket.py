"""A WebSocket relayed between an ASGI ``websocket`` scope and a tenant (wsproto client).

The reference has no WebSocket support; here a ``websocket`` request on a tenant's host
opens its own connection to the tenant, performs the upgrade with the client's headers
(hop-by-hop and handshake headers replaced, X-Forwarded-* added), and then copies
messages both ways until either side closes:

- the tenant accepts -> the client is accepted with the tenant's subprotocol and headers;
- the tenant refuses (any non-101 answer) -> the client gets the tenant's status and body
  when the server supports the ``websocket.http.response`` extension, else a close (403);
- the client leaves -> the tenant gets a close frame with the client's code; a client
  whose connection breaks while both directions wait on each other (it sent more than
  the tenant reads while the tenant's answers back up) ends the relay all the same, by
  the server's word (:data:`tenement.asgi.CLIENT_GONE`), not the disconnect it queues;
- the tenant closes or its connection drops -> the client is closed with the tenant's
  code (1011 when the connection was lost without a close frame).

Messages are whole (ASGI has no fragments): a fragmented message from the tenant is
gathered up to :data:`MAX_MESSAGE_BYTES`; a bigger one closes both sides with 1009.
Pings from the tenant are answered here.
"""

from __future__ import annotations

import logging

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from tenement.asgi import client_gone
from tenement.proxy.forward import (
    BadRequest,
    ClientGone,
    ForwardFailed,
    ForwardTimedOut,
    request_target,
)
from tenement.proxy.headers import request_headers, response_headers
from tenement.proxy.upstream import Connection
from tenement.sockets import READ_SIZE
from tenement.types import Receive, Scope, Send

log = logging.getLogger(__name__)

#: the largest message relayed from a tenant (hypercorn's default for clients)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: how long a relay whose client is gone reads what the server queued, for its disconnect
DISCONNECT_SECONDS = 5.0

_WS_RESPONSE_OWN = frozenset(
    {b"sec-websocket-accept", b"sec-websocket-extensions", b"sec-websocket-protocol"}
)
_STREAM_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


@attrs.frozen
class Upgrade:
    """The tenant's answer to the upgrade, and the WebSocket state to relay with."""

    ws: WSConnection
    answer: AcceptConnection | RejectConnection


async def upgrade_websocket(
    conn: Connection, scope: Scope, receive: Receive, *, timeout: float
) -> Upgrade:
    """Ask the tenant on ``conn`` to upgrade, with the client's headers.

    Args:
        conn: a fresh or idle connection to the tenant; on success the caller owns it
            (pass it to :func:`relay_websocket`), on failure it is closed here.
        timeout: seconds until the tenant must have answered the upgrade.

    Raises:
        ForwardTimedOut: no answer within ``timeout``.
        ForwardFailed: the tenant could not be reached or answered with something that
            is not HTTP.
        ClientGone: the client left before its handshake arrived.
        BadRequest: the request cannot be expressed as an HTTP/1.1 upgrade.
    """
    try:
        message = await receive()
        if message["type"] != "websocket.connect":
            raise ClientGone
        ws = WSConnection(ConnectionType.CLIENT)
        host = next((v for n, v in scope["headers"] if n == b"host"), b"").decode("latin-1")
        headers = request_headers(
            scope["headers"],
            client_host=scope["client"][0] if scope.get("client") else None,
            scheme=scope.get("scheme", "ws"),
            websocket=True,
        )
        request = Request(
            host=host,
            target=request_target(scope).decode("latin-1"),
            extra_headers=headers,
            subprotocols=list(scope.get("subprotocols") or ()),
        )
        with trio.move_on_after(timeout):
            return Upgrade(ws, await _handshake(conn, ws, request))
        raise ForwardTimedOut(f"{conn.address} did not answer the WebSocket upgrade")
    except BaseException:
        conn.close()
        raise


async def relay_websocket(
    conn: Connection, upgrade: Upgrade, scope: Scope, receive: Receive, send: Send
) -> None:
    """Accept (or refuse, as the tenant did) the client, then copy messages both ways
    until one side closes. Always closes ``conn``."""
    ws, answer = upgrade.ws, upgrade.answer
    try:
        if isinstance(answer, RejectConnection):
            await _refuse(conn, ws, scope, send, answer)
            return
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": answer.subprotocol,
                "headers": [
                    (n, v)
                    for n, v in response_headers(answer.extra_headers)
                    if n.lower() not in _WS_RESPONSE_OWN
                ],
            }
        )
        tenant = _Tenant(conn, ws)
        gone = client_gone(scope)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_client_to_tenant, tenant, receive, nursery.cancel_scope)
            if gone is not None:
                nursery.start_soon(_cancel_when_set, gone, nursery.cancel_scope)
            await _tenant_to_client(tenant, send)
            nursery.cancel_scope.cancel()
        if gone is not None and gone.is_set():
            await _take_the_disconnect(receive)
    finally:
        conn.close()


async def _cancel_when_set(gone: trio.Event, relay: trio.CancelScope) -> None:
    """End the relay once the client's connection broke, whichever side waits: the
    server cannot put the client's disconnect in a queue the relay does not read."""
    await gone.wait()
    relay.cancel()


async def _take_the_disconnect(receive: Receive) -> None:
    """Read (and drop) what the server queued from the gone client, up to its
    disconnect: the server's reader waits on that queue before it can end the
    connection. Bounded: a server that sends none is left to its own timeouts."""
    with trio.move_on_after(DISCONNECT_SECONDS):
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def _handshake(
    conn: Connection, ws: WSConnection, request: Request
) -> AcceptConnection | RejectConnection:
    try:
        await conn.stream.send_all(ws.send(request))
        while True:
            for event in ws.events():
                if isinstance(event, AcceptConnection | RejectConnection):
                    return event
            data = await conn.stream.receive_some(READ_SIZE)
            if not data:
                raise ForwardFailed(f"{conn.address} closed during the WebSocket upgrade")
            ws.receive_data(data)
    except _STREAM_ERRORS as exc:
        raise ForwardFailed(f"WebSocket upgrade to {conn.address} failed: {exc}") from exc
    except RemoteProtocolError as exc:
        raise ForwardFailed(f"bad WebSocket upgrade answer from {conn.address}: {exc}") from exc
    except LocalProtocolError as exc:
        raise BadRequest(f"cannot forward this WebSocket request: {exc}") from exc


async def _refuse(
    conn: Connection, ws: WSConnection, scope: Scope, send: Send, answer: RejectConnection
) -> None:
    """Pass the tenant's refusal on: its status and body, or a plain close."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    await send(
        {
            "type": "websocket.http.response.start",
            "status": answer.status_code,
            "headers": response_headers(answer.headers),
        }
    )
    finished = not answer.has_body
    while not finished:
        for event in ws.events():
            if isinstance(event, RejectData):
                await send(
                    {"type": "websocket.http.response.body", "body": event.data, "more_body": True}
                )
                finished = event.body_finished
        if finished:
            break
        try:
            data = await conn.stream.receive_some(READ_SIZE)
            ws.receive_data(data or None)
        except (*_STREAM_ERRORS, RemoteProtocolError):
            break
        if not data:
            break
    await send({"type": "websocket.http.response.body", "body": b"", "more_body": False})


class _Tenant:
    """The tenant's side of a relay: both directions write frames (messages one way,
    pongs and the close answer the other), so writes take turns."""

    def __init__(self, conn: Connection, ws: WSConnection) -> None:
        self.conn = conn
        self.ws = ws
        self._lock = trio.Lock()

    async def send(self, event: TextMessage | BytesMessage | CloseConnection | Pong) -> bool:
        """Write ``event``; False when the tenant's side is gone."""
        try:
            async with self._lock:
                await self.conn.stream.send_all(self.ws.send(event))
        except (*_STREAM_ERRORS, LocalProtocolError):
            return False
        return True


async def _client_to_tenant(tenant: _Tenant, receive: Receive, done: trio.CancelScope) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            event: TextMessage | BytesMessage = (
                TextMessage(text) if text is not None else BytesMessage(message.get("bytes") or b"")
            )
            if not await tenant.send(event):
                return  # the tenant side is gone; _tenant_to_client sees it and closes
        elif kind == "websocket.disconnect":
            if tenant.ws.state is ConnectionState.OPEN:
                code = _sendable(message.get("code", 1000), lost=1001)
                with trio.move_on_after(1):
                    await tenant.send(CloseConnection(code=code))
            done.cancel()
            return


async def _tenant_to_client(tenant: _Tenant, send: Send) -> None:
    conn, ws = tenant.conn, tenant.ws
    # the fragments of the message under way (one of the two lists fills)
    texts: list[str] = []
    blobs: list[bytes | bytearray] = []
    size = 0
    while True:
        try:
            data = await conn.stream.receive_some(READ_SIZE)
        except _STREAM_ERRORS:
            data = b""
        try:
            ws.receive_data(data or None)
        except (RemoteProtocolError, LocalProtocolError):
            await send({"type": "websocket.close", "code": 1011})
            return
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                if isinstance(event, TextMessage):
                    texts.append(event.data)
                else:
                    blobs.append(event.data)
                size += len(event.data)
                if size > MAX_MESSAGE_BYTES:
                    log.warning("WebSocket message from %s over %d bytes", conn.address, size)
                    await tenant.send(CloseConnection(code=1009))
                    await send({"type": "websocket.close", "code": 1009})
                    return
                if not event.message_finished:
                    continue
                if isinstance(event, TextMessage):
                    await send({"type": "websocket.send", "text": "".join(texts)})
                else:
                    await send({"type": "websocket.send", "bytes": b"".join(blobs)})
                texts.clear()
                blobs.clear()
                size = 0
            elif isinstance(event, Ping):
                await tenant.send(event.response())
            elif isinstance(event, CloseConnection):
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    await tenant.send(event.response())
                code = _sendable(event.code, lost=1011)
                await send({"type": "websocket.close", "code": code, "reason": event.reason or ""})
                return


def _sendable(code: int, *, lost: int) -> int:
    """A close code that may go in a close frame: 1005 (none given) -> 1000, 1006/1015
    (the connection was lost) and anything out of range -> ``lost``."""
    if code == 1005:
        return 1000
    if code in (1006, 1015) or not 1000 <= code <= 4999:
        return lost
    return code
