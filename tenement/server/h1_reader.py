"""One HTTP/1.1 connection's requests, read from bytes: no I/O, no clock.

The driver (``h1.py``) reads the socket and hands the bytes here; this says what they
mean. It is the protocol half of the connection, as hypercorn's ``protocol/h11.py`` is
beside its ``trio/tcp_server.py``, so it can be fed any bytes in any pieces by a test.

Bytes come in two ways, and a request is read by one of two parsers:

- :meth:`RequestReader.pend` keeps bytes in :attr:`~RequestReader.pending` until
  :meth:`~RequestReader.whole_request` finds a whole request there
  (``wire.parse_whole_request``: the express lane), or says it is not one;
- otherwise :meth:`~RequestReader.to_h11` gives what is pending to h11,
  :meth:`~RequestReader.feed` gives it later bytes, and
  :meth:`~RequestReader.next_head` and :meth:`~RequestReader.next_body` return what h11
  made of them. A head is checked against ``edge.py`` before it is returned.

Every byte given to h11 since the request began is kept (:meth:`~RequestReader.replay`)
until the request is known to be served here, so that the connection can be handed to
hypercorn as if it had read those bytes itself.
"""

from __future__ import annotations

import enum

import h11

from tenement.server.edge import MAX_CHUNK_SIZE, Refusal, refusal
from tenement.types import Message
from tenement.wire import INCOMPLETE, MAX_HEAD, Incomplete, WholeRequest, parse_whole_request

#: what a client's leaving, or a body h11 refused, reads as
DISCONNECT: Message = {"type": "http.disconnect"}


class Next(enum.Enum):
    """What :meth:`RequestReader.next_head` found besides a request."""

    #: h11 refused the head: hypercorn answers it (with the bytes in ``replay()``)
    HAND_OFF = "hand-off"
    #: the client closed, with no request begun
    CLOSED = "closed"


class RequestReader:
    """The reading state of one connection (see the module docstring)."""

    __slots__ = ("bad_body", "body_bytes", "eof", "h11", "pending", "raw", "recording")

    def __init__(self) -> None:
        self.h11 = _server_connection()
        #: bytes read and not given to h11 yet: between requests, the next ones
        self.pending = bytearray()
        #: every byte given to h11 since the current request began (for a hand-off),
        #: until the request is known to be served here
        self.raw = bytearray()
        self.recording = True
        #: the client closed its side
        self.eof = False
        #: why h11 refused the current request's body (a bad chunk), if it did
        self.bad_body: str | None = None
        #: how much of the current request's body h11 has returned
        self.body_bytes = 0

    # ---- bytes in --------------------------------------------------------------------------

    def pend(self, data: bytes) -> None:
        """Keep bytes read for the express lane (``b""``: the client closed)."""
        if not data:
            self.eof = True
        self.pending += data

    def feed(self, data: bytes) -> None:
        """Give bytes read to h11 (``b""``: the client closed)."""
        if not data:
            self.eof = True
        if self.recording:
            self.raw += data
        self.h11.receive_data(data)

    def to_h11(self) -> None:
        """From here on h11 reads this request: give it what is pending."""
        if self.pending:  # (b"" would tell h11 of an EOF)
            self.h11.receive_data(bytes(self.pending))
            self.raw += self.pending
            self.pending.clear()
        if self.eof:
            self.h11.receive_data(b"")

    # ---- the express lane ------------------------------------------------------------------

    def whole_request(self) -> WholeRequest | Incomplete | None:
        """The whole request (``wire.py``'s sense) at the start of :attr:`pending`;
        ``INCOMPLETE`` while it may still become one; None when h11 must read these
        bytes."""
        # nothing read yet (the usual case: the last request took it all): no parse
        return parse_whole_request(self.pending) if self.pending else INCOMPLETE

    def head_is_whole(self) -> bool:
        """The pending request's head has arrived (its body has not)."""
        return b"\r\n\r\n" in self.pending

    def prime(self, request: WholeRequest) -> h11.Connection:
        """h11 (untouched until now) as if it had read ``request``: for an answer h11
        must write, or for reading on after it. Once only: what is read ahead
        meanwhile goes into that same h11."""
        conn = self.h11
        if conn.their_state is h11.IDLE:
            # the request is still at the start of pending: it leaves once served
            conn.receive_data(bytes(self.pending[: request.length]))
            # to its end (their_state DONE): the request's events, read and dropped
            while not isinstance(conn.next_event(), h11.EndOfMessage):
                pass
        return conn

    def served(self, request: WholeRequest) -> None:
        """``request`` (at the start of :attr:`pending`) was served by the express lane."""
        del self.pending[: request.length]

    # ---- h11's way ---------------------------------------------------------------------------

    def next_head(self) -> h11.Request | Refusal | Next | None:
        """The next request head; a :class:`Refusal` for one ``edge.py`` refuses;
        None to read more; :attr:`Next.HAND_OFF` when h11 refuses the head
        (hypercorn answers it); :attr:`Next.CLOSED` when the client left between
        requests."""
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError:
            return Next.HAND_OFF
        if isinstance(event, h11.Request):
            refused = refusal(
                event.method, event.target, event.http_version, event.headers, self.raw
            )
            return event if refused is None else refused
        if event is h11.NEED_DATA and not self.eof:
            return None
        return Next.CLOSED  # ConnectionClosed (or PAUSED, which a new cycle never is)

    def begun(self) -> bool:
        """Some of the next request has arrived (its wait is no longer idle)."""
        return bool(self.raw)

    def serving(self) -> None:
        """The request is served here: stop recording its bytes for a hand-off."""
        self.recording = False
        self.bad_body = None
        self.body_bytes = 0

    def replay(self) -> bytes:
        """The bytes of the current request so far, for hypercorn to read again."""
        return bytes(self.raw)

    def body_done(self) -> bool:
        """The whole request, body included, has been read."""
        return self.h11.their_state is h11.DONE

    def next_body(self) -> Message | None:
        """The next piece of the request body as an ASGI message, or None to read more.

        A body h11 refuses reads as a disconnect, with :attr:`bad_body` saying why.
        """
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            self.bad_body = str(exc)
            return DISCONNECT
        if event is h11.NEED_DATA:
            return DISCONNECT if self.eof else None
        if isinstance(event, h11.Data):
            if event.chunk_start and _chunk_left(self.h11) + len(event.data) > MAX_CHUNK_SIZE:
                self.bad_body = "a chunk size over 63 bits"
                return DISCONNECT
            self.body_bytes += len(event.data)
            return {"type": "http.request", "body": bytes(event.data), "more_body": True}
        if isinstance(event, h11.EndOfMessage):
            if event.headers:  # a chunked body's trailer (not in ASGI: ours, by this name)
                return {
                    "type": "http.request",
                    "body": b"",
                    "more_body": False,
                    "trailers": list(event.headers),
                }
            return {"type": "http.request", "body": b"", "more_body": False}
        return DISCONNECT

    def continue_bytes(self) -> bytes:
        """``100 Continue`` when the client waits for it before its body, else ``b""``."""
        conn = self.h11
        if not conn.they_are_waiting_for_100_continue:
            return b""
        return conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""

    # ---- between requests --------------------------------------------------------------------

    def next_cycle(self, *, finished: bool, skipped_h11: bool) -> bool:
        """After a response (``skipped_h11``: written as bytes without h11): ready for
        the next request; False when the connection must end."""
        if not finished:
            return False
        conn = self.h11
        theirs = conn.their_state
        if theirs is h11.SEND_BODY:
            self._skip_received_body()
            theirs = conn.their_state
        if not skipped_h11:  # written by h11: it says whether the connection goes on
            if theirs is not h11.DONE or conn.our_state is not h11.DONE:
                return False  # a body left unread, or Connection: close
        elif theirs is not h11.DONE and theirs is not h11.IDLE:
            return False  # a body left unread (IDLE: an express request, h11 never saw it)
        if theirs is not h11.IDLE:  # h11 read (or was primed with) it
            # what the client sent ahead: after anything read before h11 held the request
            self.pending += conn.trailing_data[0]
            self.h11 = _server_connection()
        if self.raw:
            self.raw = bytearray()
        self.recording = True
        return True

    def _skip_received_body(self) -> None:
        """What is left of a request the app did not read (the end of a bodiless GET or
        DELETE, or a body that is all here) is read past, so the connection goes on; a
        body still on its way ends the connection."""
        conn = self.h11
        while conn.their_state is h11.SEND_BODY:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return


def _chunk_left(conn: h11.Connection) -> int:
    """What is left of the chunk h11 is reading. h11 exposes no chunk size, so this
    reads its chunked reader's count (0 if h11 ever names it otherwise: then the check
    is off, and tests/integration/server/test_h1_edge.py fails on the huge chunk)."""
    return int(getattr(getattr(conn, "_reader", None), "_bytes_in_chunk", 0))


def _server_connection() -> h11.Connection:
    return h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
