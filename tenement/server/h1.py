"""HTTP/1.1 connections, served without hypercorn in between: the driver.

The bytes are interpreted by ``h1_reader.py`` (no I/O), responses written by
``h1_response.py``; this module owns the socket's reads, the deadlines of every wait for
the client, and the calls into the app.

- A request ``wire.parse_whole_request`` takes as whole (HTTP/1.1, one Host, a
  whole body by Content-Length, nothing h11 would refuse or treat specially) goes
  straight to the proxy's ``express`` (``Proxy.express``), which serves it when it is for
  a running tenant with an idle pooled connection: no h11 parse, no ASGI scope.
- Any other request, and any the proxy declines, is read by h11 from the same bytes
  and, for a host ``is_fast(host)`` accepts (``ten serve`` accepts every host: tenants',
  the API's and the dashboard's), given to the ASGI app right here.
- Anything else (a WebSocket upgrade, an expectation other than ``100-continue``,
  HTTP/2's preface, a head h11 refuses) hands the connection to hypercorn at that
  request, with every byte read so far replayed to it.
- A request whose framing two parsers could read differently is refused (``edge.py``).

Every wait for the client has a deadline: the keep-alive time for the next request and
its head; ``body_seconds`` between reads of a body, and a least average rate after that
(:data:`MIN_BODY_BYTES_PER_SECOND`). The app is called only once the body has begun.

Keep-alive, pipelining, chunked bodies in both directions and the drain are kept: a
response started after ``shutdown`` says ``Connection: close``; a connection idle at
shutdown gets ``IDLE_DRAIN_SECONDS`` to present one more request (as hypercorn's are, see
``http.py``).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import h11
import trio

from tenement import sockets
from tenement.deadlines import Armed, Deadlines
from tenement.server.edge import Refusal, ignores_upgrade, is_http2_preface, origin_form
from tenement.server.h1_reader import DISCONNECT, Next, RequestReader
from tenement.server.h1_response import Response
from tenement.tls.stream import TlsStream
from tenement.types import ASGIApp, Message, Receive, Send, SendWhole
from tenement.wire import WholeRequest

log = logging.getLogger(__name__)

#: the proxy's express lane (``Proxy.express``): a whole request, the client's
#: address, ``receive``, ``send`` and ``send_whole``; False if it did nothing
#: (request, client host, receive, send, send_whole, over TLS) -> served
Express = Callable[[WholeRequest, str | None, Receive, Send, SendWhole, bool], Awaitable[bool]]

#: what a client waiting on its response may send on meanwhile (the next pipelined
#: request) before reading stops until the response is done
MAX_READ_AHEAD = 1 << 20
#: requests served on a connection between two yields to the scheduler (fairness under
#: pipelined load: reads and writes that need not wait do not yield)
YIELD_EVERY = 16
#: the most a request body may pause between two reads, by default
BODY_SECONDS = 30.0
#: the slowest a request body may arrive on average, once its first ``body_seconds``
#: are over: a client trickling a byte now and then (slowloris) is cut off, an upload
#: at any real speed is not
MIN_BODY_BYTES_PER_SECOND = 1024
#: how long an error answer's connection reads on before it closes (see _linger)
LINGER_SECONDS = 1.0


class ReplayStream:
    """A connection's stream, with the bytes already read from it returned first.

    Over TLS it answers hypercorn's duck-typed TLS questions as the TLS stream does.
    """

    def __init__(self, stream: trio.SocketStream | TlsStream, prefix: bytes) -> None:
        self.socket = stream.socket  # hypercorn reads the addresses from it
        self._stream = stream
        self._prefix = prefix
        if isinstance(stream, TlsStream):
            self.transport_stream = stream
            self.do_handshake = stream.do_handshake
            self.selected_alpn_protocol = stream.selected_alpn_protocol

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class IdleConnections:
    """The deadlines of the connections' waits for a request, and which of them wait
    idle (no part of a request yet), so that a shutdown can give each of those
    :data:`IDLE_DRAIN_SECONDS` at once."""

    def __init__(self, shutdown: trio.Event, idle_drain_seconds: float) -> None:
        self.shutdown = shutdown
        self.idle_drain_seconds = idle_drain_seconds
        self.deadlines = Deadlines()
        self.waiting: set[Http1Connection | Greeting] = set()

    def greeting(self, waiting: trio.CancelScope) -> Greeting:
        """A TLS connection waits for its ClientHello under ``waiting``: idle too, for
        the drain (see ``tenement.tls.handshake``); a context manager."""
        return Greeting(self, waiting)

    async def drain_on_shutdown(self) -> None:
        await self.shutdown.wait()
        deadline = trio.current_time() + self.idle_drain_seconds
        for conn in self.waiting:
            conn.hurry(deadline)


class Greeting:
    """While entered: a TLS connection that has not sent its ClientHello, idle as the
    drain sees it (a class, not a generator: it is entered once per handshake)."""

    __slots__ = ("_idle", "_waiting")

    def __init__(self, idle: IdleConnections, waiting: trio.CancelScope) -> None:
        self._idle = idle
        self._waiting = waiting

    def __enter__(self) -> None:
        idle = self._idle
        if idle.shutdown.is_set():
            self.hurry(trio.current_time() + idle.idle_drain_seconds)
        idle.waiting.add(self)

    def __exit__(self, *exc_info: object) -> None:
        self._idle.waiting.discard(self)

    def hurry(self, deadline: float) -> None:
        self._waiting.deadline = min(self._waiting.deadline, deadline)


class Http1Connection:
    """One client connection, served until it closes or is handed to hypercorn.

    Args:
        stream: the accepted connection, for hypercorn and for closing it.
        sock: the same connection, read and written directly here (trio's socket
            methods yield to the scheduler after every call, even one that need not wait).
        app: the ASGI app for the requests served here.
        is_fast: whether a request with this ``Host`` (None: none) is served here.
        handoff: serves the rest of the connection (a :class:`ReplayStream`) with hypercorn.
        idle: the server's idle connections (and its shutdown event).
        keep_alive_seconds: how long a connection may sit idle between requests, and
            the most a request head may take to arrive.
        body_seconds: the most a request body may pause between two reads (and the
            grace before :data:`MIN_BODY_BYTES_PER_SECOND` applies).
        client, server: the ASGI scope's addresses.
        express: the proxy's express lane, if any.
    """

    def __init__(
        self,
        stream: trio.SocketStream | TlsStream,
        sock: socket.socket,
        app: ASGIApp,
        *,
        is_fast: Callable[[str | None], bool],
        handoff: Callable[[ReplayStream], Awaitable[None]],
        idle: IdleConnections,
        keep_alive_seconds: float,
        body_seconds: float,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        express: Express | None = None,
    ) -> None:
        self._stream = stream
        self._sock = sock
        self._app = app
        self._is_fast = is_fast
        self._express = express
        self._handoff = handoff
        self._idle = idle
        self._keep_alive = keep_alive_seconds
        self._body_seconds = body_seconds
        self._client = client
        self._secure = isinstance(stream, TlsStream)
        self._server = server
        self._reader = RequestReader()
        self._handed_off = False
        # when the current body's first read was awaited (0: not yet)
        self._body_started = 0.0
        # the first body message, read before the app is called (see _exchange)
        self._ahead: Message | None = None
        # cancelled when a wait for the client outlives its deadline (see _read_within)
        self._waiting = trio.CancelScope()
        self._armed: Armed | None = None
        # the app's wait for the client to leave (see _wait_disconnect), while it waits
        self._watching: trio.CancelScope | None = None

    async def run(self) -> None:
        try:
            with self._waiting:  # a deadline that passes ends the connection here
                await self._serve()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            if not self._handed_off:
                await trio.aclose_forcefully(self._stream)

    async def _serve(self) -> None:
        reader = self._reader
        served = 0
        while True:
            # Reads and writes wait only when the kernel says so (tenement/sockets.py):
            # under load whole exchanges may never wait, so yield now and then.
            served += 1
            if served % YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            if self._express is not None and not self._idle.shutdown.is_set():
                done = await self._serve_express(self._express)
                if done is not None:
                    if reader.next_cycle(finished=done.finished, skipped_h11=done.skipped_h11):
                        continue
                    return
            reader.to_h11()
            request = await self._next_request()
            if request is Next.CLOSED:
                return
            if isinstance(request, h11.Request):
                request = _in_origin_form(request)
            if isinstance(request, Refusal):
                await self._refuse(request.status, request.reason)
                return
            if request is Next.HAND_OFF or not self._serves(request):
                self._handed_off = True  # hypercorn owns the stream now
                await self._handoff(ReplayStream(self._stream, reader.replay()))
                return
            reader.serving()
            response = await self._exchange(request)
            finished, skipped_h11 = response.finished, response.skipped_h11
            if not reader.next_cycle(finished=finished, skipped_h11=skipped_h11):
                return

    async def _serve_express(self, express: Express) -> Response | None:
        """The express lane: a whole request (``wire.parse_whole_request``) for a
        running tenant goes to the proxy without h11 or an ASGI scope.

        Returns:
            its response once served; None when the request is not for this lane (it
            stays pending, for h11), or when the client left.
        """
        reader = self._reader
        deadline = None  # the head must be whole by then: set at the first wait
        in_body = False
        while True:
            request = reader.whole_request()
            if isinstance(request, WholeRequest):
                break
            if request is None or reader.eof:
                return None
            if not self._take_waiting():
                if not in_body and reader.head_is_whole():
                    # the head is whole, the body is on its way: a body's deadlines now
                    in_body = True
                    self._body_started = 0.0
                if in_body:
                    wait_until = self._body_deadline(len(reader.pending))
                else:
                    if deadline is None:
                        deadline = trio.current_time() + self._keep_alive
                    wait_until = deadline
                await self._read_within(
                    wait_until, started=bool(reader.pending), read=self._take_pending
                )

        def prime() -> h11.Connection:
            return reader.prime(request)

        async def receive() -> Message:
            reader.prime(request)
            return await self._receive()

        response = Response(
            prime,
            self._sock,
            self._idle.shutdown,
            head_request=request.method == b"HEAD",
            may_skip_h11=True,
            left=self._client_left,
        )
        client = self._client[0] if self._client else None
        try:
            served = await express(
                request, client, receive, response.send, response.send_whole, self._secure
            )
        except Exception:
            log.exception("error in the proxy serving %r", request.target)
            served = True
            if not response.started:
                await response.error(500)
        if not served:
            return None
        reader.served(request)
        return response

    def _serves(self, request: h11.Request) -> bool:
        """The request is served here (not by hypercorn)."""
        if is_http2_preface(request.method, request.target, request.http_version):
            return False  # hypercorn speaks HTTP/2
        host = None
        for name, value in request.headers:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"expect":
                if value.lower() != b"100-continue":
                    return False  # an expectation h11 does not know: hypercorn's call
            elif name == b"upgrade" and not ignores_upgrade(request.headers):
                return False
        return request.method != b"CONNECT" and self._is_fast(host)

    async def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` (the connection closes after it): a request refused at the
        edge, before any of it reached an app or a tenant."""
        log.info("refused a request from %s: %s (%d)", self._client_name(), reason, status)
        response = Response(
            self._reader.h11,
            self._sock,
            self._idle.shutdown,
            head_request=False,
            may_skip_h11=False,
            left=self._client_left,
        )
        await response.error(status, reason)
        await self._linger()

    async def _linger(self) -> None:
        """Before closing after an error: stop writing, and read what the client is
        still sending for a moment. Closing with unread bytes makes the kernel reset the
        connection, and the client may lose the answer before it reads it."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        with trio.move_on_after(LINGER_SECONDS):
            read = 0
            while read < MAX_READ_AHEAD:
                data = await sockets.receive(self._sock)
                if not data:
                    return
                read += len(data)

    def _client_name(self) -> str:
        return f"{self._client[0]}:{self._client[1]}" if self._client else "a Unix socket client"

    # ---- reading ----------------------------------------------------------------------------

    async def _read(self) -> int:
        """Wait for bytes for h11."""
        data = await sockets.receive(self._sock)
        self._reader.feed(data)
        return len(data)

    async def _take_pending(self) -> int:
        """Wait for bytes for the express lane: only after :meth:`_take_waiting` found
        none (so the first try is a wait, not a second failed ``recv``)."""
        data = await sockets.receive(self._sock, wait_first=True)
        self._reader.pend(data)
        return len(data)

    def _take_waiting(self) -> bool:
        """Take for the express lane what the kernel holds already; False if nothing (no
        deadline needs arming for bytes that are here)."""
        try:
            data = self._sock.recv(sockets.READ_SIZE)
        except sockets.WOULD_BLOCK:
            return False
        self._reader.pend(data)
        return True

    async def _read_within(
        self, deadline: float, *, started: bool, read: Callable[[], Awaitable[int]]
    ) -> None:
        """``read()`` unless ``deadline`` passes first (or, while the server drains, the
        idle connection's short grace does): then the connection ends (``run``).

        A connection with no part of a request yet counts as idle: the drain closes it.
        The deadline is armed in ``tenement/deadlines.py``, not set on a cancel scope
        (one timer task checks them all).
        """
        idle = self._idle
        if idle.shutdown.is_set() and not started:
            deadline = min(deadline, trio.current_time() + idle.idle_drain_seconds)
        self._armed = idle.deadlines.arm(deadline, self._waiting.cancel)
        if not started:
            idle.waiting.add(self)
        try:
            await read()
        finally:
            idle.waiting.discard(self)
            idle.deadlines.disarm(self._armed)
            self._armed = None

    def hurry(self, deadline: float) -> None:
        """The wait for the client under way ends by ``deadline`` at the latest (the
        drain of an idle connection)."""
        if self._armed is not None:
            self._armed = self._idle.deadlines.advance(self._armed, deadline)

    async def _next_request(self) -> h11.Request | Refusal | Next:
        """The next request head (``h1_reader.RequestReader.next_head``), read within
        the keep-alive time: a client trickling a head does not hold the connection."""
        reader = self._reader
        deadline = trio.current_time() + self._keep_alive
        while True:
            head = reader.next_head()
            if head is not None:
                return head
            await self._read_within(deadline, started=reader.begun(), read=self._read)

    async def _receive(self) -> Message:
        """The app's ``receive``: the request body within its deadlines, then (once it
        is all read) a wait for the client to leave. A read or write that finds the
        client gone (a reset) is its leaving: ``http.disconnect``, not an error."""
        ahead = self._ahead
        if ahead is not None:
            self._ahead = None
            return ahead
        reader = self._reader
        try:
            if reader.body_done():
                return await self._wait_disconnect()
            while True:
                message = reader.next_body()
                if message is not None:
                    return message
                continue_ = reader.continue_bytes()  # the body is wanted: say so
                if continue_:
                    await sockets.send_all(self._sock, continue_)
                deadline = self._body_deadline(reader.body_bytes)
                await self._read_within(deadline, started=True, read=self._read)
        except (OSError, trio.ClosedResourceError):
            self._client_left()
            return DISCONNECT

    def _client_left(self) -> None:
        """The client is gone (a read or a write to it failed): it sends nothing more,
        and an app waiting for it to leave is told now (``Response`` calls this)."""
        self._reader.eof = True
        if self._watching is not None:
            self._watching.cancel()

    def _body_deadline(self, received: int) -> float:
        """When the next read of a request body (``received`` bytes of it so far) must
        have delivered: ``body_seconds`` from now, and no later than the body's average
        rate allows (:data:`MIN_BODY_BYTES_PER_SECOND` after the first ``body_seconds``)."""
        now = trio.current_time()
        if not self._body_started:
            self._body_started = now
        by_rate = self._body_started + self._body_seconds + received / MIN_BODY_BYTES_PER_SECOND
        return min(now + self._body_seconds, by_rate)

    async def _wait_disconnect(self) -> Message:
        """After the request: block until the client closes (reading ahead for the next
        request up to :data:`MAX_READ_AHEAD`), or until a write finds it gone."""
        with trio.CancelScope() as self._watching:
            try:
                ahead = 0
                while not self._reader.eof and ahead < MAX_READ_AHEAD:
                    ahead += await self._read()
                if not self._reader.eof:
                    await trio.sleep_forever()
            finally:
                self._watching = None
        return DISCONNECT

    # ---- one request --------------------------------------------------------------------------

    async def _exchange(self, request: h11.Request) -> Response:
        """Serve one request; its response says whether it was finished, and how."""
        target = request.target
        path, _, query = target.partition(b"?")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version.decode("ascii"),
            "method": request.method.decode("ascii"),
            "scheme": "https" if self._secure else "http",
            "path": unquote(path.decode("ascii", "replace")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": list(request.headers),
            "client": self._client,
            "server": self._server,
        }
        reader = self._reader
        response = Response(
            reader.h11,
            self._sock,
            self._idle.shutdown,
            head_request=request.method == b"HEAD",
            may_skip_h11=_keeps_alive(request),
            left=self._client_left,
        )
        # The app is called once the body has begun (or is known to be empty): a
        # client that announces a body and sends nothing holds no tenant connection,
        # only this one, until the body deadline ends it.
        self._body_started = 0.0
        first = await self._receive()
        bad_body = reader.bad_body  # (read again after the app: its reads may set it)
        if bad_body is not None:
            await self._refuse(400, f"a malformed request body: {bad_body}")
            return response
        if first["type"] == "http.disconnect":
            return response  # the client left before its body: nobody to answer
        self._ahead = first
        failed = False
        try:
            await self._app(scope, self._receive, response.send)
        except Exception:
            failed = True
            log.exception("error in the ASGI app serving %s %s", scope["method"], scope["path"])
        self._ahead = None
        if not response.started:
            if reader.bad_body is not None:
                await response.error(400, f"a malformed request body: {reader.bad_body}")
                await self._linger()
            elif not failed and reader.eof:
                pass  # the app saw the client leave (its EOF) and gave up: nobody to answer
            else:
                await response.error(500)
        return response


def _in_origin_form(request: h11.Request) -> h11.Request | Refusal:
    """``request``, with an absolute-form target made origin-form and its authority as
    ``Host`` (``edge.origin_form``)."""
    converted = origin_form(request.target, request.headers)
    if converted is None:
        return request
    if isinstance(converted, Refusal):
        return converted
    target, headers = converted
    return h11.Request(
        method=request.method,
        target=target,
        headers=headers,
        http_version=request.http_version,
    )


def _keeps_alive(request: h11.Request) -> bool:
    """An HTTP/1.1 request that does not ask to close: its answer may skip h11 (written
    as bytes, h11's state then started afresh for the next request)."""
    if request.http_version != b"1.1":
        return False
    for name, value in request.headers:
        if name == b"connection" and b"close" in value.lower():
            return False
    return True
