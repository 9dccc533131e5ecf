"""One HTTP request forwarded to a tenant over a pooled connection, streamed both ways.

Bodies never sit whole in memory: each ASGI ``http.request`` chunk is written upstream
as it arrives, and each piece read from the tenant (at most
:data:`tenement.sockets.READ_SIZE`) goes to the client before the next read.
Both directions wait for the other side to take the data (the ASGI server's ``send``
returns when the bytes are written), so a slow reader slows the writer instead of
filling memory.

Request framing: ``Content-Length`` passes through; a body of unknown length (the client
sent it chunked) goes upstream chunked; a whole body that fits the first ASGI message gets
an exact ``Content-Length``.

The common case skips h11 (``tenement/wire.py``, where its cost is said): a request
whose body is all here is written as bytes, and an answer that is whole (HTTP/1.1
framed by ``Content-Length``, all of it in what was read) is relayed in two ASGI messages
(in one ``send_whole`` call on ``h1.py``'s express lane). Any other answer is handed to
the connection's h11 with every byte read so far, and streamed as below.

Error handling: failures before the response head become :class:`ForwardFailed` (502) or
:class:`ForwardTimedOut` (504) for the caller to answer. After the head was sent, a broken
tenant connection ends the ASGI call without finishing the body, so the server closes the
client connection and the client sees a truncated response, never a silent short one.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Iterable
from typing import Any, NamedTuple

import h11
import trio

from tenement.asgi import cancel_on_disconnect
from tenement.errors import TenementError
from tenement.proxy.headers import request_headers, response_headers
from tenement.proxy.upstream import Connection, Upstream, UpstreamError
from tenement.types import Receive, Scope, Send, SendWhole
from tenement.wire import WholeRequest, WholeResponse, parsed_request_bytes, request_bytes

log = logging.getLogger(__name__)

#: methods that may be sent twice (RFC 9110 §9.2.2): retried once on a stale connection
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ForwardFailed(TenementError):
    """The tenant failed before sending a response head (-> 502)."""


class ForwardTimedOut(TenementError):
    """The tenant sent no response head within the service's request_timeout (-> 504)."""


class ClientGone(Exception):
    """The client disconnected; nothing is left to answer."""


class BadRequest(TenementError):
    """The request cannot be written as HTTP/1.1 (a target or header h11 refuses, as an
    HTTP/2 client may send) (-> 400)."""


def request_target(scope: Scope) -> bytes:
    """Path and query as the client sent them (``raw_path``, else the encoded path)."""
    path = scope.get("raw_path") or scope["path"].encode("utf-8")
    return _target(path, scope.get("query_string") or b"")


def _target(path: bytes, query: bytes) -> bytes:
    """``path?query``, or the path alone when the query is empty (``/x?`` -> ``/x``)."""
    return path + b"?" + query if query else path


def _client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def forward_http(
    upstream: Upstream,
    conn: Connection,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    timeout: float,
    trailers: bool = False,
) -> float:
    """Send the request in ``scope``/``receive`` over ``conn`` and relay the response.

    A request whose body is whole in the first ASGI message is written, then the
    response is read. A longer body is written by a second task while the response is
    read (full duplex), so a tenant that answers before it has read everything (an
    echo, an early 413) never deadlocks against us.

    A pooled connection that turns out stale (it fails before the tenant sent a byte) is
    replaced once by a new one, for an idempotent request with a whole body.

    Args:
        upstream: the pool ``conn`` came from; it gets the connection back (or closed).
        conn: a connection to the chosen tenant; ownership passes to this function.
        timeout: seconds from now until the response head must have arrived.
        trailers: pass a chunked body's trailer fields on (a standby's API requests to
            the leader: a node's data for a move carries its SHA-256 so); a tenant never
            gets them.

    Returns:
        ``trio.current_time()`` when the response head arrived.

    Raises:
        ForwardFailed: connection or protocol failure before the response head.
        ForwardTimedOut: no response head within ``timeout``.
        ClientGone: the client disconnected before the response head.
        BadRequest: the request cannot be expressed in HTTP/1.1.
    """
    method = scope["method"]
    headers = request_headers(
        scope["headers"], client_host=_client_host(scope), scheme=scope["scheme"]
    )
    try:
        message = await receive()
    except BaseException:
        conn.close()
        raise
    if message["type"] == "http.disconnect":
        upstream.release(conn)  # untouched: still good
        raise ClientGone
    body = message.get("body", b"")
    target = request_target(scope)
    more = message.get("more_body", False)
    # a chunked body short enough to arrive whole still ends with its trailer fields
    ended = None if more or not trailers else list(message.get("trailers", ())) or None
    if not more and ended is None:
        return await _forward_whole_body(
            upstream, conn, method, target, headers, body, receive, send, timeout
        )
    _frame(method, headers, body, more=True)
    try:
        request = h11.Request(method=method, target=target, headers=headers)
    except h11.LocalProtocolError as exc:
        raise _refused(upstream, conn, exc) from exc
    return await _forward_duplex(
        upstream, conn, request, body, receive, send, timeout, trailers=trailers, ended=ended
    )


def forward_whole(
    upstream: Upstream,
    conn: Connection,
    request: WholeRequest,
    client_host: str | None,
    receive: Receive,
    send: Send,
    send_whole: SendWhole,
    *,
    timeout: float,
    scheme: str = "http",
) -> Coroutine[Any, Any, float]:
    """:func:`forward_http` for a whole request read without h11 (``h1.py``'s express
    lane): the same headers, bytes and answer as the ASGI way in. Its parts were checked
    as they were parsed, so its bytes are written without checking them again; a whole
    answer goes back in one ``send_whole``.

    Not a coroutine function itself: it returns the exchange to await, so a proxied
    request's coroutines are one fewer to make and to pass through on every wait.
    """
    method = request.method.decode("ascii")  # a token: ASCII
    headers = request_headers(request.headers, client_host=client_host, scheme=scheme)
    path, _, query = request.target.partition(b"?")
    target = _target(path, query)
    body = request.body
    _frame(method, headers, body, more=False)
    outgoing = _Outgoing(
        method, target, headers, body, parsed_request_bytes(request.method, target, headers, body)
    )
    return _forward_whole(upstream, conn, outgoing, receive, send, timeout, send_whole)


async def _forward_whole_body(
    upstream: Upstream,
    conn: Connection,
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    receive: Receive,
    send: Send,
    timeout: float,
) -> float:
    """A request whose body is all here, framed and written as bytes
    (:func:`_forward_whole`)."""
    _frame(method, headers, body, more=False)
    try:
        outgoing = _Outgoing.of(method, target, headers, body)
    except h11.LocalProtocolError as exc:
        raise _refused(upstream, conn, exc) from exc
    return await _forward_whole(upstream, conn, outgoing, receive, send, timeout)


def _refused(upstream: Upstream, conn: Connection, exc: h11.LocalProtocolError) -> BadRequest:
    """The error for a request HTTP/1.1 cannot carry; ``conn``, untouched, is pooled."""
    upstream.release(conn)
    return BadRequest(f"cannot forward this request: {exc}")


def _frame(method: str, headers: list[tuple[bytes, bytes]], body: bytes, *, more: bool) -> None:
    """Frame the body for the tenant when the client's framing was hop-by-hop (chunked):
    chunked again while more is coming, else an exact ``Content-Length``."""
    if not (more or body or method in _BODY_METHODS):
        return  # a GET, say: nothing to frame
    for name, _ in headers:
        if name == b"content-length":
            return
    if more:
        headers.append((b"transfer-encoding", b"chunked"))
    else:
        headers.append((b"content-length", str(len(body)).encode()))


class _Outgoing(NamedTuple):
    """A whole request to a tenant: its parts, and its bytes as :func:`request_bytes`
    wrote them (a named tuple: one is made per proxied request)."""

    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    data: bytes

    @classmethod
    def of(
        cls, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> _Outgoing:
        """The request, written by :func:`request_bytes`.

        Raises:
            h11.LocalProtocolError: h11 refuses the request. ``request_bytes`` refuses
                what h11 refuses; h11 is asked only then, for its message.
        """
        data = request_bytes(method.encode("latin-1", "replace"), target, headers, body)
        if data is None:
            events = cls(method, target, headers, body, b"").events()
            scratch = h11.Connection(h11.CLIENT)
            data = b"".join([scratch.send(event) or b"" for event in events])
        return cls(method, target, headers, body, data)

    def events(self) -> list[h11.Event]:
        """The same request as h11 events (for h11 to read an answer that is not whole)."""
        request = h11.Request(method=self.method, target=self.target, headers=self.headers)
        if self.body:
            return [request, h11.Data(data=self.body), h11.EndOfMessage()]
        return [request, h11.EndOfMessage()]


async def _forward_whole(
    upstream: Upstream,
    conn: Connection,
    request: _Outgoing,
    receive: Receive,
    send: Send,
    timeout: float,
    send_whole: SendWhole | None = None,
) -> float:
    """:func:`forward_http` for a request with a whole body, written without h11 (see
    ``tenement/wire.py``). A whole answer is relayed in one ``send_whole`` where
    the server offers it, else in two ASGI messages, and the connection pooled; any
    other answer goes through h11 as before."""
    deadline = trio.current_time() + timeout
    try:
        try:
            answer = await _timed_exchange(upstream, conn, request, deadline, timeout)
        except UpstreamError:
            stale = conn.reused and not conn.received_any
            conn.close()
            if not (stale and request.method in IDEMPOTENT):
                raise
            log.debug("stale pooled connection to %s; retrying once", conn.address)
            with trio.move_on_at(deadline) as opening:  # rare: a cancel scope will do
                conn = await upstream.open(conn.address)
            if opening.cancelled_caught:
                raise _timed_out(conn, timeout) from None
            answer = await _timed_exchange(upstream, conn, request, deadline, timeout)
        head_at = trio.current_time()
        if isinstance(answer, WholeResponse) and send_whole is not None:
            await send_whole(answer.status, response_headers(answer.headers), answer.body)
        elif isinstance(answer, WholeResponse):
            await _send_head(send, answer.status, answer.headers)
            await send({"type": "http.response.body", "body": answer.body})
        else:
            held = _held_body(conn)
            await _send_head(send, answer.status_code, answer.headers)
    except UpstreamError as exc:
        conn.close()
        raise ForwardFailed(str(exc)) from exc
    except BaseException:
        conn.close()
        raise
    if isinstance(answer, WholeResponse):
        if answer.reusable:
            upstream.release(conn, now=head_at)
        else:
            conn.close()
        return head_at
    await _relay_body(upstream, conn, held, receive, send, watch=True)
    return head_at


async def _timed_exchange(
    upstream: Upstream, conn: Connection, request: _Outgoing, deadline: float, timeout: float
) -> WholeResponse | h11.Response:
    """Write the request, then read the answer: a whole answer, else h11's head;
    unless ``deadline`` passes first: then ``conn`` is closed (``upstream.deadlines``,
    cheaper than a cancel scope per request).

    A write that fails still looks for an answer: a tenant may answer early (413) and
    close its side.

    Raises:
        ForwardTimedOut: the deadline passed.
        UpstreamError: the exchange failed (the write's error if the write failed).
    """
    armed = upstream.deadlines.arm(deadline, conn.expire)
    try:
        try:
            await conn.write(request.data)
        except UpstreamError as exc:
            unwritten: UpstreamError | None = exc
        else:
            unwritten = None
        try:
            answer = await conn.receive_whole(
                head_request=request.method == "HEAD", sent=request.events
            )
            return answer if answer is not None else await _read_head(conn)
        except UpstreamError:
            if unwritten is not None:
                raise unwritten from None
            raise
    except UpstreamError:
        if conn.timed_out:
            raise _timed_out(conn, timeout) from None
        raise
    finally:
        upstream.deadlines.disarm(armed)


def _timed_out(conn: Connection, timeout: float) -> ForwardTimedOut:
    return ForwardTimedOut(f"{conn.address} sent no response within {timeout:g} s")


async def _forward_duplex(
    upstream: Upstream,
    conn: Connection,
    request: h11.Request,
    body: bytes,
    receive: Receive,
    send: Send,
    timeout: float,
    *,
    trailers: bool,
    ended: list[tuple[bytes, bytes]] | None,
) -> float:
    """:func:`forward_http` for a streamed request body: one task writes it, this one
    reads the response. The writer, once done, watches for the client leaving.
    ``ended``: the body ended in the first message, with these trailer fields."""
    relaying = False
    failure: TenementError | None = None
    response: h11.Response | None = None
    held: list[h11.Event] = []
    head_at = 0.0
    try:
        async with trio.open_nursery() as nursery:
            # exceptions are turned into `failure` here: a nursery would wrap them in a group
            try:
                with trio.move_on_after(timeout) as deadline:
                    await conn.send(request)
                    if body:
                        await conn.send(h11.Data(data=body))
                    if ended is not None:
                        await conn.send(h11.EndOfMessage(headers=ended))
                    nursery.start_soon(
                        _write_body,
                        conn,
                        receive,
                        nursery.cancel_scope,
                        trailers,
                        ended is not None,
                    )
                    response = await _read_head(conn)
                    held = _held_body(conn)
                if deadline.cancelled_caught:
                    failure = ForwardTimedOut(
                        f"{conn.address} sent no response within {timeout:g} s"
                    )
            except UpstreamError as exc:
                failure = ForwardFailed(str(exc))
            if failure is None and response is not None:
                head_at = trio.current_time()
                await _send_head(send, response.status_code, response.headers)
                relaying = True  # from here on, _relay_body owns conn
                await _relay_body(upstream, conn, held, receive, send, watch=False)
            nursery.cancel_scope.cancel()
    except BaseException:
        if not relaying:
            conn.close()
        raise
    if response is None or failure is not None:
        conn.close()
        if failure is not None:
            raise failure
        raise ClientGone
    return head_at


async def _write_body(
    conn: Connection, receive: Receive, cancel: trio.CancelScope, trailers: bool, done: bool
) -> None:
    """Write the rest of the request body (with its trailer fields if ``trailers``), then
    wait for the client to leave (cancelling the exchange if it leaves first); ``done``:
    all of it was written already."""
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                cancel.cancel()
                return
            if done:
                continue
            chunk = message.get("body", b"")
            if chunk:
                await conn.send(h11.Data(data=chunk))
            if not message.get("more_body", False):
                fields = list(message.get("trailers", ())) if trailers else []
                await conn.send(h11.EndOfMessage(headers=fields))
                done = True
    except UpstreamError:
        # the tenant stopped reading; its answer, or the failure, comes from the reader
        return


async def _send_head(send: Send, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """The response head for the client: the tenant's status and end-to-end headers."""
    await send(
        {"type": "http.response.start", "status": status, "headers": response_headers(headers)}
    )


async def _read_head(conn: Connection) -> h11.Response:
    """The tenant's response head.

    Raises:
        UpstreamError: no head, or one whose framing another parser could read
            differently (``Content-Length`` beside ``Transfer-Encoding``: h11 follows
            the chunks; passing the length on would misframe the answer to the client).
    """
    while True:
        event = await conn.next_event()
        if isinstance(event, h11.Response):
            names = {name for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                raise UpstreamError(
                    f"{conn.address} framed its answer by Content-Length and Transfer-Encoding"
                )
            return event
        if isinstance(event, h11.InformationalResponse):
            continue
        raise UpstreamError(f"unexpected {type(event).__name__} from {conn.address}")


def _held_body(conn: Connection) -> list[h11.Event]:
    """The body events h11 can give without reading (most small answers arrive with
    their head), taken before the head goes on to the client: a body broken from its
    first byte is then a 502, not a head never written and an empty close.

    Raises:
        UpstreamError: the tenant's body is malformed.
    """
    held: list[h11.Event] = []
    while (event := conn.buffered_event()) is not None:
        held.append(event)
        if isinstance(event, h11.EndOfMessage):
            break
    return held


async def _relay_body(
    upstream: Upstream,
    conn: Connection,
    held: list[h11.Event],
    receive: Receive,
    send: Send,
    *,
    watch: bool,
) -> None:
    """Relay the response body; ``conn`` goes back to the pool as soon as the tenant's
    message ended (before the last piece goes to the client), else it is closed.

    What h11 already held (``held``, :func:`_held_body`) is sent without waiting. With
    ``watch``, a body that needs more reads runs beside a task that watches for the
    client's ``http.disconnect``, so that a client who leaves stops the relay.
    """
    pending: bytes | None = None
    relay = _BodyRelay(upstream, conn)
    try:
        for event in held:
            if isinstance(event, h11.Data):
                if pending:
                    await send({"type": "http.response.body", "body": pending, "more_body": True})
                pending = bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                relay.finish()
                await send({"type": "http.response.body", "body": pending or b""})
                return
        # the front writes a head with the first body part: with none here yet, an empty
        # one sends it now (an event stream or a long poll sends its head, then waits)
        await send({"type": "http.response.body", "body": pending or b"", "more_body": True})
        if watch:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_on_disconnect, receive, nursery.cancel_scope)
                await relay.pump(send)
                nursery.cancel_scope.cancel()
        else:
            await relay.pump(send)
    except UpstreamError as exc:
        relay.broke = exc
    finally:
        if not relay.released:
            conn.close()  # the tenant broke off, or the client left mid-body
    if relay.broke is not None:
        log.warning("response body from %s broke off: %s", conn.address, relay.broke)


class _BodyRelay:
    __slots__ = ("broke", "conn", "released", "upstream")

    def __init__(self, upstream: Upstream, conn: Connection) -> None:
        self.upstream = upstream
        self.conn = conn
        self.released = False
        self.broke: UpstreamError | None = None

    def finish(self) -> None:
        self.released = True
        self.upstream.release(self.conn)  # pooled if our request was complete too

    async def pump(self, send: Send) -> None:
        """Read and send body pieces until the end; an upstream failure is kept in
        :attr:`broke` (raising it inside a nursery would wrap it in a group)."""
        try:
            while True:
                event = await self.conn.next_event()
                if isinstance(event, h11.Data):
                    await send(
                        {"type": "http.response.body", "body": bytes(event.data), "more_body": True}
                    )
                elif isinstance(event, h11.EndOfMessage):
                    self.finish()
                    # The last message ends the response, and the server may close the
                    # connection (and tell our disconnect watcher) while this send still
                    # runs. Unshielded, the watcher's cancel would abort that close half
                    # way and leave the client waiting for an EOF that never comes.
                    with trio.CancelScope(shield=True):
                        await send({"type": "http.response.body", "body": b""})
                    return
        except UpstreamError as exc:
            self.broke = exc
