"""HTTP/1.1 for the proxy's requests, without hypercorn in between.

Profiled (py-spy, wrk -c32 through ``ten serve`` to a trivial backend, 632 req/s): trio 48%,
hypercorn 16%, our proxy 13%, h11 11%. A bare trio + h11 relay did 2,600 req/s on the same
machine: most of the cost was the server machinery around each request (task groups,
events and protocol layers per request), not the forwarding. So the connections are read
here first:

- a request h11 parses, for a host ``is_fast(host)`` accepts (``ten serve`` accepts
  every host: tenants', the API's and the dashboard's), without ``Upgrade`` or
  ``Expect``, is given to the ASGI app right here: a minimal scope, ``receive`` reading
  the body from the connection, ``send`` writing the response head and a whole body with
  one write;
- anything else (a host not accepted, a WebSocket or h2c upgrade, ``Expect:
  100-continue``, HTTP/2, a request h11 refuses) hands the connection to hypercorn at that
  request, with every byte read so far replayed to it, so hypercorn serves it as if it had
  read it itself.

A whole response to an HTTP/1.1 request that keeps the connection open is written as
bytes by ``tenement/wire.py`` (h11 would check the same rules, at ~45 us a response).
Everything else is written by h11.

The express lane comes first: bytes read wait in ``_pending`` until a request is whole.
One that ``wire.parse_whole_request`` takes (HTTP/1.1, one Host, a whole body by
Content-Length, nothing h11 would refuse or treat specially) goes straight to the
proxy's ``express`` (``Proxy.express``), which serves it when it is for a running tenant
with an idle pooled connection: no h11 parse, no ASGI scope, ~300 instead of ~500 us of
CPU per proxied request. Anything else, and any request the proxy declines, is given to
h11 with the same bytes and served as above. An answer the lane cannot write as bytes is
written by an h11 connection primed with the request's bytes, as if it had read them.

Keep-alive, pipelining, chunked bodies in both directions and the drain are kept: a
response started after ``shutdown`` says ``Connection: close``; a connection idle at
shutdown gets ``IDLE_DRAIN_SECONDS`` to present one more request (as hypercorn's are, see
``http.py``). ``Date`` is added to every response, as hypercorn does.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote

import h11
import trio

from tenement import sockets
from tenement.deadlines import Armed, Deadlines
from tenement.server.edge import ignores_upgrade, is_http2_preface, refusal
from tenement.types import ASGIApp, Message, Receive, Send, SendWhole
from tenement.wire import (
    INCOMPLETE,
    WholeRequest,
    http_date,
    parse_whole_request,
    parsed_response_bytes,
    reason_phrase,
    response_bytes,
)

log = logging.getLogger(__name__)

#: the proxy's express lane (``Proxy.express``): a whole plain request, the client's
#: address, ``receive``, ``send`` and ``send_whole``; False if it did nothing
Express = Callable[[WholeRequest, str | None, Receive, Send, SendWhole], Awaitable[bool]]

READ_SIZE = 65536
#: what a client waiting on its response may send on meanwhile (the next pipelined
#: request) before reading stops until the response is done
MAX_READ_AHEAD = 1 << 20
#: requests served on a connection between two yields to the scheduler (fairness under
#: pipelined load; a yield per request measured ~0.2 ms more CPU per request at 1 connection)
YIELD_EVERY = 16
#: the limit on a request head (as hypercorn's ``h11_max_incomplete_size``)
MAX_HEAD = 16 * 1024
#: the slowest a request body may arrive on average, once its first
#: ``body_seconds`` are over: a client trickling a byte now and then (slowloris) is cut
#: off, an upload at any real speed is not
MIN_BODY_BYTES_PER_SECOND = 1024
#: the most a request body may pause between two reads, by default
BODY_SECONDS = 30.0
#: how long an error answer's connection reads on before it closes (see _linger)
LINGER_SECONDS = 1.0


class ReplayStream:
    """A connection's stream, with the bytes already read from it returned first."""

    def __init__(self, stream: trio.SocketStream, prefix: bytes) -> None:
        self.socket = stream.socket  # hypercorn reads the addresses from it
        self._stream = stream
        self._prefix = prefix

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


class _Date:
    """The ``Date`` header value, formatted once a second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second = second
            cls.value = http_date(second)
        return cls.value


class IdleConnections:
    """The deadlines of the connections' waits for a request, and which of them wait
    idle (no part of a request yet), so that a shutdown can give each of those
    :data:`IDLE_DRAIN_SECONDS` at once."""

    def __init__(self, shutdown: trio.Event, idle_drain_seconds: float) -> None:
        self.shutdown = shutdown
        self.idle_drain_seconds = idle_drain_seconds
        self.deadlines = Deadlines()
        self.waiting: set[Http1Connection] = set()

    async def drain_on_shutdown(self) -> None:
        await self.shutdown.wait()
        deadline = trio.current_time() + self.idle_drain_seconds
        for conn in self.waiting:
            conn.hurry(deadline)


class _Disconnected(Exception):
    pass


class Http1Connection:
    """One client connection, served until it closes or is handed to hypercorn.

    Args:
        stream: the accepted connection, for hypercorn and for closing it.
        sock: the same connection, read and written directly here (trio's socket
            methods yield to the scheduler after every call: ~10% of a request's CPU).
        app: the ASGI app for the requests served here.
        is_fast: whether a request with this ``Host`` (None: none) is served here.
        handoff: serves the rest of the connection (a :class:`ReplayStream`) with hypercorn.
        idle: the server's idle connections (and its shutdown event).
        keep_alive_seconds: how long a connection may sit idle between requests, and
            the most a request head may take to arrive.
        body_seconds: the most a request body may pause between two reads (and the
            grace before :data:`MIN_BODY_BYTES_PER_SECOND` applies).
    """

    def __init__(
        self,
        stream: trio.SocketStream,
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
        # the request body being read: when its first byte was awaited, bytes so far
        self._body_started = 0.0
        self._body_bytes = 0
        # the first body event, read before the app is called (see _exchange)
        self._ahead: Message | None = None
        # a request body h11 refused (a bad chunk): the answer is 400, not the app's
        self._bad_body: str | None = None
        self._client = client
        self._server = server
        self._h11 = _server_connection()
        # bytes read and not given to h11 yet: between requests, the next ones
        self._pending = bytearray()
        # every byte given to h11 since the current request began, until the request is
        # known to be served here (then it would only grow with the body): for a hand-off
        self._raw = bytearray()
        self._recording = True
        self._eof = False
        self._handed_off = False
        # cancelled when a wait for the client outlives its deadline (see _read_within)
        self._waiting = trio.CancelScope()
        self._armed: Armed | None = None

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
        served = 0
        while True:
            # Reads and writes wait only when the kernel says so (tenement/sockets.py):
            # under load whole exchanges may never wait, so yield now and then.
            served += 1
            if served % YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            if self._express is not None and not self._idle.shutdown.is_set():
                done = await self._serve_express()
                if done is not None:
                    if self._next_cycle(done):
                        continue
                    return
            if self._pending:  # h11 reads this request (b"" would tell it of an EOF)
                self._h11.receive_data(bytes(self._pending))
                self._raw += self._pending
                self._pending.clear()
            if self._eof:
                self._h11.receive_data(b"")
            try:
                request = await self._next_request()
            except h11.RemoteProtocolError:
                request = _HAND_OFF
            if request is None:
                return
            if isinstance(request, h11.Request):
                refused = refusal(
                    request.method,
                    request.target,
                    request.http_version,
                    request.headers,
                    bytes(self._raw),
                )
                if refused is not None:
                    await self._refuse(refused.status, refused.reason)
                    return
            if request is _HAND_OFF or not self._serves(request):
                self._handed_off = True  # hypercorn owns the stream now
                await self._handoff(ReplayStream(self._stream, bytes(self._raw)))
                return
            self._recording = False
            if not self._next_cycle(await self._exchange(request)):
                return

    def _next_cycle(self, response: _Response) -> bool:
        """After a response: ready the connection for the next request; False: end it."""
        if not response.finished:
            return False
        theirs = self._h11.their_state
        if theirs is h11.SEND_BODY:
            self._skip_received_body()
            theirs = self._h11.their_state
        if not response.plain:  # written by h11: it says whether the connection goes on
            if theirs is not h11.DONE or self._h11.our_state is not h11.DONE:
                return False  # a body left unread, or Connection: close
        elif theirs is not h11.DONE and theirs is not h11.IDLE:
            return False  # a body left unread (IDLE: an express request, h11 never saw it)
        if theirs is not h11.IDLE:  # h11 read (or was primed with) it
            # what the client sent ahead: after anything read before h11 held the request
            self._pending += self._h11.trailing_data[0]
            self._h11 = _server_connection()
        if self._raw:
            self._raw = bytearray()
        self._recording = True
        return True

    def _skip_received_body(self) -> None:
        """After a response: what is left of a request the app did not read (the end of a
        bodiless GET or DELETE, or a body that is all here) is read past, so the
        connection goes on; a body still on its way ends the connection, as before."""
        conn = self._h11
        while conn.their_state is h11.SEND_BODY:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return

    async def _serve_express(self) -> _Response | None:
        """The express lane: a whole plain request (``wire.parse_whole_request``) for a
        running tenant goes to the proxy without h11 or an ASGI scope.

        Returns:
            its response once served; None when the request is not for this lane (it
            stays in ``_pending``), or when the client left.
        """
        deadline = None  # the head must be whole by then: set at the first wait
        in_body = False
        while True:
            # nothing read yet (the usual case: the last request took it all): no parse
            request = parse_whole_request(self._pending) if self._pending else INCOMPLETE
            if isinstance(request, WholeRequest):
                break
            if request is None or self._eof:
                return None
            if not self._take_waiting():
                if not in_body and b"\r\n\r\n" in self._pending:
                    # the head is whole, the body is on its way: a body's deadlines now
                    in_body = True
                    self._body_started = 0.0
                if in_body:
                    wait_until = self._body_deadline()
                    self._body_bytes = len(self._pending)
                else:
                    if deadline is None:
                        deadline = trio.current_time() + self._keep_alive
                    wait_until = deadline
                await self._read_within(
                    wait_until, started=bool(self._pending), read=self._take_pending
                )

        def prime() -> h11.Connection:
            """The connection's h11 (untouched until now), as if it had read this request:
            for an answer h11 must write, or for reading on after it. Once only: what is
            read ahead meanwhile goes into that same h11."""
            conn = self._h11
            if conn.their_state is h11.IDLE:
                # the request is still at the start of _pending: it leaves once served
                conn.receive_data(bytes(self._pending[: request.length]))
                while conn.their_state is not h11.DONE:
                    conn.next_event()
            return conn

        async def receive() -> Message:
            prime()
            return await self._receive()

        response = _Response(
            prime,
            self._sock,
            self._idle.shutdown,
            head_request=request.method == b"HEAD",
            may_be_plain=True,
        )
        client = self._client[0] if self._client else None
        try:
            served = await self._express(
                request, client, receive, response.send, response.send_whole
            )
        except Exception:
            log.exception("error in the proxy serving %r", request.target)
            served = True
            if not response.started:
                await response.error(500)
        if not served:
            return None
        del self._pending[: request.length]
        return response

    def _serves(self, request: h11.Request) -> bool:
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
        response = _Response(
            self._h11, self._sock, self._idle.shutdown, head_request=False, may_be_plain=False
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
            while not self._eof and read < MAX_READ_AHEAD:
                data = await sockets.receive(self._sock)
                self._eof = not data
                read += len(data)

    def _client_name(self) -> str:
        return f"{self._client[0]}:{self._client[1]}" if self._client else "a Unix socket client"

    # ---- reading ----------------------------------------------------------------------------

    async def _read(self) -> int:
        data = await sockets.receive(self._sock)
        self._take(data)
        return len(data)

    def _take(self, data: bytes) -> None:
        """Give bytes read to h11 (and to the record kept for a hand-off)."""
        if not data:
            self._eof = True
        if self._recording:
            self._raw += data
        self._h11.receive_data(data)

    async def _take_pending(self) -> int:
        """Wait for bytes, then read them into ``_pending``: only after
        :meth:`_take_waiting` found none (trying again at once was a second failed
        ``recv`` for 85% of requests at 32 connections)."""
        data = await sockets.receive(self._sock, wait_first=True)
        self._pend(data)
        return len(data)

    def _take_waiting(self) -> bool:
        """Read into ``_pending`` what the kernel holds already; False if nothing (no
        deadline needs arming for bytes that are here)."""
        try:
            data = self._sock.recv(sockets.READ_SIZE)
        except BlockingIOError:
            return False
        self._pend(data)
        return True

    def _pend(self, data: bytes) -> None:
        """Keep bytes read for the express lane (``b""``: the client closed)."""
        if not data:
            self._eof = True
        self._pending += data

    async def _read_within(
        self, deadline: float, *, started: bool, read: Callable[[], Awaitable[int]]
    ) -> None:
        """``read()`` unless ``deadline`` passes first (or, while the server drains, the
        idle connection's short grace does): then the connection ends (``run``).

        A connection with no part of a request yet counts as idle: the drain closes it.
        The deadline is armed in ``tenement/deadlines.py``, not set on a cancel scope (a
        scope's deadline set and reset for each wait was ~7 us of a proxied request).
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

    async def _next_request(self) -> object:
        """The next request head; None when the client is gone or the connection idled out.

        The whole head must arrive within the keep-alive time (a client trickling bytes
        does not hold the connection forever).
        """
        conn = self._h11
        deadline = trio.current_time() + self._keep_alive
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                return event
            if event is not h11.NEED_DATA:
                return None  # ConnectionClosed (or PAUSED, which a new cycle never is)
            if self._eof:
                return None
            # bool(self._raw): some of the next request is here
            await self._read_within(deadline, started=bool(self._raw), read=self._read)

    async def _receive(self) -> Message:
        ahead = self._ahead
        if ahead is not None:
            self._ahead = None
            return ahead
        conn = self._h11
        if conn.their_state is h11.DONE:
            return await self._wait_disconnect()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._bad_body = str(exc)  # a bad chunk: answered 400 if nothing was yet
                return {"type": "http.disconnect"}
            if event is h11.NEED_DATA:
                if self._eof:
                    return {"type": "http.disconnect"}
                if conn.they_are_waiting_for_100_continue:  # the body is wanted: say so
                    continue_ = h11.InformationalResponse(status_code=100, headers=[])
                    await sockets.send_all(self._sock, conn.send(continue_) or b"")
                await self._read_within(self._body_deadline(), started=True, read=self._read)
                continue
            if isinstance(event, h11.Data):
                self._body_bytes += len(event.data)
                return {"type": "http.request", "body": bytes(event.data), "more_body": True}
            if isinstance(event, h11.EndOfMessage):
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.disconnect"}

    def _body_deadline(self) -> float:
        """When the next read of a request body must have delivered: ``body_seconds``
        from now, and no later than the body's average rate allows
        (:data:`MIN_BODY_BYTES_PER_SECOND` after the first ``body_seconds``)."""
        now = trio.current_time()
        if not self._body_started:
            self._body_started, self._body_bytes = now, 0
        by_rate = (
            self._body_started + self._body_seconds + self._body_bytes / MIN_BODY_BYTES_PER_SECOND
        )
        return min(now + self._body_seconds, by_rate)

    async def _wait_disconnect(self) -> Message:
        """After the request: block until the client closes (reading ahead for the next
        request up to :data:`MAX_READ_AHEAD`)."""
        ahead = 0
        while not self._eof and ahead < MAX_READ_AHEAD:
            ahead += await self._read()
        if not self._eof:
            await trio.sleep_forever()
        return {"type": "http.disconnect"}

    # ---- one request --------------------------------------------------------------------------

    async def _exchange(self, request: h11.Request) -> _Response:
        """Serve one request; its response says whether it was finished, and how."""
        target = request.target
        path, _, query = target.partition(b"?")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version.decode("ascii"),
            "method": request.method.decode("ascii"),
            "scheme": "http",
            "path": unquote(path.decode("ascii", "replace")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": list(request.headers),
            "client": self._client,
            "server": self._server,
        }
        response = _Response(
            self._h11,
            self._sock,
            self._idle.shutdown,
            head_request=request.method == b"HEAD",
            may_be_plain=_keeps_alive(request),
        )
        # The app is called once the body has begun (or is known to be empty): a
        # client that announces a body and sends nothing holds no tenant connection,
        # only this one, until the body deadline ends it.
        self._body_started, self._body_bytes, self._bad_body = 0.0, 0, None
        first = await self._receive()
        if self._bad_body is not None:
            await self._refuse(400, f"a malformed request body: {self._bad_body}")
            return response
        if first["type"] == "http.disconnect":
            return response  # the client left before its body: nobody to answer
        self._ahead = first
        try:
            await self._app(scope, self._receive, response.send)
        except Exception:
            log.exception("error in the ASGI app serving %s %s", scope["method"], scope["path"])
        self._ahead = None
        if not response.started:
            if self._bad_body is not None:
                await response.error(400, f"a malformed request body: {self._bad_body}")
                await self._linger()
            else:
                await response.error(500)
        return response


_HAND_OFF = object()


def _keeps_alive(request: h11.Request) -> bool:
    """An HTTP/1.1 request that does not ask to close: its answer may be written plainly."""
    if request.http_version != b"1.1":
        return False
    for name, value in request.headers:
        if name == b"connection" and b"close" in value.lower():
            return False
    return True


def _server_connection() -> h11.Connection:
    return h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)


class _Response:
    """The ``send`` of one request: the head is written with the first body part."""

    __slots__ = (
        "_conn",
        "_head_request",
        "_headers",
        "_may_be_plain",
        "_shutdown",
        "_sock",
        "_status",
        "finished",
        "plain",
        "started",
    )

    def __init__(
        self,
        conn: h11.Connection | Callable[[], h11.Connection],
        sock: socket.socket,
        shutdown: trio.Event,
        *,
        head_request: bool,
        may_be_plain: bool,
    ) -> None:
        self._conn = conn
        self._sock = sock
        self._shutdown = shutdown
        self._head_request = head_request
        self._may_be_plain = may_be_plain
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] | None = None
        self.started = False
        self.finished = False
        #: written without h11 (whose state still waits for a response: start afresh)
        self.plain = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._start(message["status"], message.get("headers", ()))
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        await self._body(message.get("body", b""), message.get("more_body", False))

    def send_whole(
        self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes
    ) -> Awaitable[None]:
        """A whole answer at once, as ``http.response.start`` and one last body part
        would send it; the headers are ones ``wire.parse_whole_response`` checked, so a
        plain answer is written without checking them again.

        Returns the write to await (not a coroutine function: one coroutine fewer per
        proxied request)."""
        self._start(status, headers)
        return self._body(body, False, checked=True)

    def _start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        if self.started:
            raise RuntimeError("http.response.start sent twice")
        self._status = status
        self._headers = [*headers, (b"date", _Date.now())]
        if self._shutdown.is_set():
            self._headers.append((b"connection", b"close"))
        self.started = True

    async def _body(self, body: bytes, more: bool, *, checked: bool = False) -> None:
        if not self.started or self.finished:
            raise RuntimeError("http.response.body outside a response")
        out = b""
        headers = self._headers
        if headers is not None:
            self._headers = None
            if not more:
                data = self._whole(headers, body, checked=checked)
                if data is not None:
                    self.plain = self.finished = True
                    await sockets.send_all(self._sock, data)
                    return
            head = h11.Response(
                status_code=self._status, headers=headers, reason=reason_phrase(self._status)
            )
            out = self._h11().send(head) or b""
        conn = self._h11()
        if body and not self._head_request:  # a HEAD answer carries no body, as hypercorn's
            out += conn.send(h11.Data(data=body)) or b""
        if not more:
            out += conn.send(h11.EndOfMessage()) or b""
            self.finished = True
        if out:
            await sockets.send_all(self._sock, out)

    def _h11(self) -> h11.Connection:
        """The connection's h11, made ready for an express request's answer on first use."""
        if not isinstance(self._conn, h11.Connection):
            self._conn = self._conn()
        return self._conn

    def _whole(
        self, headers: list[tuple[bytes, bytes]], body: bytes, *, checked: bool
    ) -> bytes | None:
        """For a body sent whole: ``headers`` get a Content-Length where the body may be
        announced by one (RFC 9110 8.6: not for 204 and 304, and a HEAD answer's would
        describe a body it does not carry) and no header frames it yet.

        Returns:
            The whole response as bytes, written without h11 (``tenement/wire.py``); None
            when h11 must write (or refuse) it: Transfer-Encoding, a Content-Length that is
            not the body's, a body where none may be, a status or header h11 would refuse
            (unless ``checked``: the headers were checked as they were parsed), or an
            answer that must not be plain (an error's, or one while the server drains).
        """
        status = self._status
        bodiless = self._head_request or status in (204, 304)
        length = str(len(body)).encode()
        framed = False
        plain = self._may_be_plain and status >= 200
        for name, value in headers:  # one pass: this runs for every proxied request
            if name == b"content-length":
                framed = True
                if not bodiless and value != length:
                    plain = False
            elif name == b"transfer-encoding":
                framed = True
                plain = False
        if not framed and not bodiless:
            headers.append((b"content-length", length))
        if not plain or self._shutdown.is_set():
            return None
        if bodiless:
            if body and not self._head_request:
                return None
            body = b""
        if checked:
            return parsed_response_bytes(status, headers, body)
        return response_bytes(status, headers, body)

    async def error(self, status: int, detail: str = "") -> None:
        """Answer ``status`` (with ``detail`` after its reason phrase) and close
        (nothing was sent yet)."""
        self.started = False
        self._may_be_plain = False  # h11 writes it, and so ends the connection after it
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")],
            }
        )
        text = reason_phrase(status)
        if detail:
            text += b": " + detail.encode("utf-8", "replace")
        await self.send({"type": "http.response.body", "body": text})
