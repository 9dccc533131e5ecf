"""Pooled HTTP/1.1 connections to tenants: h11 (or tenement.wire) over non-blocking sockets.

One :class:`Upstream` per proxy keeps, for each address (a TCP port on 127.0.0.1 or a
Unix socket path), a stack of idle keep-alive connections. A connection goes back to
the pool only when both sides finished their message cleanly and the tenant did not
ask to close; anything else (an error, a cancellation, ``Connection: close``) closes it.

Before reusing an idle connection, a zero-timeout ``poll()`` checks that the tenant
has not closed it meanwhile (an idle connection is readable only when the peer sent EOF
or garbage), which spares most stale-connection failures. The rest are handled by the
caller's one retry (``tenement/proxy/forward.py``).

Timeouts belong to the caller: :meth:`Upstream.acquire` and every read and write wait as
long as the surrounding cancel scope allows, or until the connection is closed; the
caller may arm an exchange's deadline in :attr:`Upstream.deadlines` with
:meth:`Connection.expire`, which closes it.
"""

from __future__ import annotations

import logging
import select
import socket
from collections.abc import Callable
from typing import NamedTuple, Protocol

import attrs
import h11
import trio

from tenement import sockets, wire
from tenement.deadlines import Deadlines
from tenement.errors import TenementError

log = logging.getLogger(__name__)

#: idle connections kept per address; more are closed when released
MAX_IDLE_PER_ADDRESS = 32
#: an idle connection older than this is closed instead of reused
MAX_IDLE_SECONDS = 60.0


class UpstreamError(TenementError):
    """The tenant could not be reached or broke the HTTP exchange."""


class UpstreamUnavailable(UpstreamError):
    """Connecting to the tenant failed (nothing listens, or the socket file is gone)."""


class UpstreamProtocolError(UpstreamError):
    """The connection failed, or the tenant spoke something that is not HTTP/1.1."""


class HasAddress(Protocol):
    @property
    def port(self) -> int | None: ...

    @property
    def socket(self) -> str: ...


class Address(NamedTuple):
    """Where a tenant listens: TCP ``127.0.0.1:port``, else the Unix socket ``path``.

    Another fleet node is TCP ``path:port``: with a port, ``path`` is the host (an
    address or a name; empty for 127.0.0.1).

    A named tuple: the pool looks one up per proxied request, and a tuple hashes and
    compares in C (an attrs class's ``__hash__`` and ``__eq__`` are Python calls).
    """

    port: int | None
    path: str = ""

    @classmethod
    def of(cls, target: HasAddress) -> Address:
        if target.port is not None:
            return cls(target.port)
        return cls(None, target.socket)

    def __str__(self) -> str:
        if self.port is None:
            return f"unix:{self.path}"
        if not self.path:
            return f"127.0.0.1:{self.port}"
        return f"[{self.path}]:{self.port}" if ":" in self.path else f"{self.path}:{self.port}"


class Connection:
    """One HTTP/1.1 client connection: a trio stream and its h11 state machine.

    Attributes:
        reused: it came from the pool (it served a request before).
        received_any: some bytes arrived during the current exchange; a failure on a
            reused connection before that is a stale connection, safe to retry.
    """

    __slots__ = (
        "address",
        "h11",
        "idle_since",
        "received_any",
        "reused",
        "sock",
        "stream",
        "timed_out",
    )

    def __init__(self, address: Address, sock: socket.socket, stream: trio.SocketStream) -> None:
        self.address = address
        #: the same connection as ``stream``, for the exchange's own reads and writes
        self.sock = sock
        #: for whoever speaks another protocol on it (the WebSocket relay)
        self.stream = stream
        # the same limit on a head as the parser of whole answers (wire.py)
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=wire.MAX_HEAD)
        self.reused = False
        self.received_any = False
        self.idle_since = 0.0
        #: closed by :meth:`expire`
        self.timed_out = False

    async def send(self, event: h11.Event) -> None:
        """Serialise ``event`` with h11 and write it.

        Raises:
            UpstreamProtocolError: h11 refused the event, or the write failed.
        """
        try:
            data = self.h11.send(event)
        except h11.LocalProtocolError as exc:
            raise UpstreamProtocolError(f"cannot send to {self.address}: {exc}") from exc
        if data:
            await self.write(data)

    async def write(self, data: bytes) -> None:
        """Write ``data`` as it is: bytes h11 made (:meth:`send`), or a whole request
        made by :func:`tenement.wire.request_bytes`, which h11 is not told about (see
        :meth:`receive_whole`).

        Raises:
            UpstreamProtocolError: the write failed.
        """
        try:
            await sockets.send_all(self.sock, data)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise UpstreamProtocolError(f"writing to {self.address} failed: {exc}") from exc

    async def receive_whole(
        self, *, head_request: bool, sent: Callable[[], list[h11.Event]]
    ) -> wire.WholeResponse | None:
        """Read the answer to a request of :func:`tenement.wire.request_bytes`, written
        with :meth:`write`.

        Returns:
            The answer, when it is whole (:func:`tenement.wire.parse_whole_response`);
            the connection's h11 is untouched then, ready for the next request. Otherwise
            None: h11 has been given the request's events (``sent()``) and every byte read,
            and the answer is read on with :meth:`next_event`.

        Raises:
            UpstreamProtocolError: the read failed, or h11 refused ``sent()``.
        """
        buffer = b""
        while True:
            try:
                chunk = await sockets.receive(self.sock, wait_first=not buffer)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise UpstreamProtocolError(f"reading from {self.address} failed: {exc}") from exc
            if chunk:
                self.received_any = True
                buffer += chunk
                answer = wire.parse_whole_response(buffer, head_request=head_request)
                if answer is wire.INCOMPLETE:
                    continue
                if answer is not None:
                    return answer
            try:
                for event in sent():
                    self.h11.send(event)
            except h11.LocalProtocolError as exc:
                raise UpstreamProtocolError(f"cannot send to {self.address}: {exc}") from exc
            self.h11.receive_data(buffer)
            if not chunk:
                self.h11.receive_data(b"")
            return None

    async def next_event(self) -> h11.Event:
        """The next event from the tenant, reading from the socket when h11 needs data.

        Raises:
            UpstreamProtocolError: the read failed, or the tenant broke the protocol
                (including closing before its response was complete).
        """
        conn = self.h11
        try:
            while True:
                event = conn.next_event()
                if event is not h11.NEED_DATA:
                    return event  # type: ignore[return-value]
                data = await sockets.receive(self.sock)
                if data:
                    self.received_any = True
                conn.receive_data(data)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise UpstreamProtocolError(f"reading from {self.address} failed: {exc}") from exc
        except h11.RemoteProtocolError as exc:
            raise UpstreamProtocolError(f"bad response from {self.address}: {exc}") from exc

    def buffered_event(self) -> h11.Event | None:
        """The next event if h11 can produce it without reading, else None."""
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise UpstreamProtocolError(f"bad response from {self.address}: {exc}") from exc
        return None if event is h11.NEED_DATA else event  # type: ignore[return-value]

    @property
    def finished_cleanly(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def close(self) -> None:
        """Close the socket now (synchronous; never fails)."""
        self.stream.socket.close()

    def expire(self) -> None:
        """Its exchange outlived its deadline (``tenement/deadlines.py``): close it, so
        that what waits on it gets ``trio.ClosedResourceError`` (trio's ``close``
        wakes the waiters), and say so in :attr:`timed_out`."""
        self.timed_out = True
        self.close()


def _peer_closed(poller: select.poll, conn: Connection) -> bool:
    """True when an idle connection is readable: EOF or unexpected bytes from the tenant.

    ``poll``, not ``select``: a busy server has descriptors above select's 1024 limit.
    """
    try:
        fd = conn.sock.fileno()
        if fd < 0:
            return True
        poller.register(fd, select.POLLIN)
        try:
            return bool(poller.poll(0))
        finally:
            poller.unregister(fd)
    except (OSError, ValueError):
        return True


@attrs.frozen
class UpstreamStatistics:
    connections_opened: int
    connections_reused: int
    idle_connections: int


class Upstream:
    """Connection pools to tenants, one per :class:`Address`.

    Resource handling: owns every connection it opened; :meth:`aclose` closes the idle
    ones. A connection handed out by :meth:`acquire` belongs to the caller until it is
    given back with :meth:`release` (which keeps or closes it).
    """

    def __init__(
        self,
        *,
        max_idle_per_address: int = MAX_IDLE_PER_ADDRESS,
        max_idle_seconds: float = MAX_IDLE_SECONDS,
    ) -> None:
        self._idle: dict[Address, list[Connection]] = {}
        self._max_idle = max_idle_per_address
        self._max_idle_seconds = max_idle_seconds
        self._opened = 0
        self._reused = 0
        self._closed = False
        self._poller = select.poll()
        self._last_sweep = 0.0
        #: the deadlines of exchanges over these connections (``tenement/deadlines.py``)
        self.deadlines = Deadlines()

    async def acquire(self, address: Address) -> Connection:
        """A live idle connection to ``address``, or a new one.

        Raises:
            UpstreamUnavailable: nothing accepts connections at ``address``.
        """
        conn = self.take_idle(address)
        if conn is None:
            return await self.open(address)
        try:
            await trio.lowlevel.checkpoint()
        except BaseException:
            conn.close()
            raise
        return conn

    def take_idle(self, address: Address, now: float | None = None) -> Connection | None:
        """A live idle connection to ``address`` from the pool, or None. Never blocks.

        Args:
            now: ``trio.current_time()``, if the caller has it (one less clock read).
        """
        idle = self._idle.get(address)
        if not idle:
            return None
        if now is None:
            now = trio.current_time()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since > self._max_idle_seconds:
                # the stack is oldest-first below this one: drop them all
                conn.close()
                for old in idle:
                    old.close()
                idle.clear()
                break
            if _peer_closed(self._poller, conn):
                conn.close()
                continue
            conn.reused = True
            conn.received_any = False
            self._reused += 1
            return conn
        del self._idle[address]
        return None

    async def open(self, address: Address) -> Connection:
        """A new connection to ``address``, never from the pool.

        Raises:
            UpstreamUnavailable: the connect failed.
        """
        if self._closed:
            raise UpstreamUnavailable("the proxy is shutting down")
        tcp = address.port is not None
        remote = tcp and bool(address.path)
        if not tcp:
            family = socket.AF_UNIX
        elif remote and ":" in address.path:
            family = socket.AF_INET6
        else:
            family = socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if remote:
            # a fleet peer across a network: a request's head and body go as written,
            # not held back for an acknowledgement that is itself delayed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = trio.socket.from_stdlib_socket(sock)
        try:
            if not tcp:
                await wrapped.connect(address.path)
            else:
                await wrapped.connect((address.path or "127.0.0.1", address.port))
        except OSError as exc:
            wrapped.close()
            raise UpstreamUnavailable(f"cannot connect to {address}: {exc}") from exc
        except BaseException:
            wrapped.close()
            raise
        self._opened += 1
        return Connection(address, sock, trio.SocketStream(wrapped))

    def release(self, conn: Connection, now: float | None = None) -> None:
        """Give ``conn`` back: pooled if its exchange ended cleanly and the tenant keeps
        it open, closed otherwise.

        Args:
            now: ``trio.current_time()``, if the caller has it (one less clock read).
        """
        state = conn.h11
        if self._closed:
            conn.close()
            return
        if state.our_state is not h11.IDLE or state.their_state is not h11.IDLE:
            if not conn.finished_cleanly:
                conn.close()
                return
            try:
                state.start_next_cycle()
            except h11.LocalProtocolError:
                conn.close()
                return
        idle = self._idle.setdefault(conn.address, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        if now is None:
            now = trio.current_time()
        conn.idle_since = now
        idle.append(conn)
        if now - self._last_sweep > self._max_idle_seconds / 2:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Close idle connections that expired or that their tenant closed (a stopped
        tenant's connections would otherwise hold descriptors until its next request).

        Runs from :meth:`release` at most twice per ``max_idle_seconds``.
        """
        self._last_sweep = now
        for address, idle in list(self._idle.items()):
            keep = []
            for conn in idle:
                if now - conn.idle_since > self._max_idle_seconds or _peer_closed(
                    self._poller, conn
                ):
                    conn.close()
                else:
                    keep.append(conn)
            if keep:
                self._idle[address] = keep
            else:
                del self._idle[address]

    def statistics(self) -> UpstreamStatistics:
        return UpstreamStatistics(
            connections_opened=self._opened,
            connections_reused=self._reused,
            idle_connections=sum(len(v) for v in self._idle.values()),
        )

    async def aclose(self) -> None:
        """Close every idle connection and refuse new ones. Idempotent."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        await trio.lowlevel.checkpoint()
