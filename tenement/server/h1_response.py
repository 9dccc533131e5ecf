"""The ``send`` of one request served by ``h1.py``: a response written to the socket.

A whole response to an HTTP/1.1 request that keeps the connection open is written as
bytes by ``tenement/wire.py`` (the rules h11 would check, without its per-event cost);
everything else (a streamed body, an error, an answer while the server drains, a header
h11 would refuse) is written by h11. ``Date`` is added to every response, as hypercorn
does. The head is written with the first body part, in one write.

A client that is gone (a write to it fails: it closed, or reset the connection) is no
error of the app's: ``send`` drops what it is given from then on, as hypercorn's does,
and tells the connection, whose ``receive`` then says ``http.disconnect``. An app
stops as it does when it sees the client leave, without a write error to catch.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable, Iterable

import h11
import trio

from tenement import sockets
from tenement.types import Message
from tenement.wire import http_date, parsed_response_bytes, reason_phrase, response_bytes


class Date:
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


class Response:
    """The ``send`` of one request: the head is written with the first body part."""

    __slots__ = (
        "_conn",
        "_head_request",
        "_headers",
        "_left",
        "_may_skip_h11",
        "_shutdown",
        "_sock",
        "_status",
        "finished",
        "gone",
        "skipped_h11",
        "started",
    )

    def __init__(
        self,
        conn: h11.Connection | Callable[[], h11.Connection],
        sock: socket.socket,
        shutdown: trio.Event,
        *,
        head_request: bool,
        may_skip_h11: bool,
        left: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._sock = sock
        self._shutdown = shutdown
        self._head_request = head_request
        self._may_skip_h11 = may_skip_h11
        #: told when a write finds the client gone
        self._left = left
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] | None = None
        self.started = False
        self.finished = False
        #: written as bytes without h11 (whose state still waits for a response: the
        #: next request starts it afresh)
        self.skipped_h11 = False
        #: a write found the client gone: nothing more is written
        self.gone = False

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
        would send it; the headers are ones ``wire.parse_whole_response`` checked, so an
        answer that skips h11 is written without checking them again.

        Returns the write to await (not a coroutine function: one coroutine fewer per
        proxied request)."""
        self._start(status, headers)
        return self._body(body, False, checked=True)

    def _start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        if self.started:
            raise RuntimeError("http.response.start sent twice")
        self._status = status
        self._headers = [*headers, (b"date", Date.now())]
        if self._shutdown.is_set():
            self._headers.append((b"connection", b"close"))
        self.started = True

    async def _body(self, body: bytes, more: bool, *, checked: bool = False) -> None:
        if not self.started or self.finished:
            raise RuntimeError("http.response.body outside a response")
        if self.gone:
            # dropped, with a checkpoint all the same: an app relaying a body to a
            # client that is gone must not run on without its disconnect watcher's turn
            await trio.lowlevel.checkpoint()
            return
        out = b""
        headers = self._headers
        if headers is not None:
            self._headers = None
            if not more:
                data = self._whole(headers, body, checked=checked)
                if data is not None:
                    self.skipped_h11 = self.finished = True
                    try:  # (inline, as below: a coroutine fewer on every response)
                        await sockets.send_all(self._sock, data)
                    except (OSError, trio.ClosedResourceError):
                        self._lost()
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
            try:
                await sockets.send_all(self._sock, out)
            except (OSError, trio.ClosedResourceError):
                self._lost()

    def _lost(self) -> None:
        """A write found the client gone (see the module docstring)."""
        self.gone = True
        self.finished = False  # not all of it reached the client: no next request
        self._left()

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
            answer that must not skip h11 (an error's, or one while the server drains).
        """
        status = self._status
        bodiless = self._head_request or status in (204, 304)
        length = str(len(body)).encode()
        framed = False
        skip_h11 = self._may_skip_h11 and status >= 200
        for name, value in headers:  # one pass: this runs for every proxied request
            if name == b"content-length":
                framed = True
                if not bodiless and value != length:
                    skip_h11 = False
            elif name == b"transfer-encoding":
                framed = True
                skip_h11 = False
        if not framed and not bodiless:
            headers.append((b"content-length", length))
        if not skip_h11 or self._shutdown.is_set():
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
        self._may_skip_h11 = False  # h11 writes it, and so ends the connection after it
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
