"""The tenant connection pool against real sockets (an in-test trio HTTP server)."""

from __future__ import annotations

import re
from functools import partial

import h11
import pytest
import trio

from tenement.proxy.upstream import Address, Upstream, UpstreamUnavailable


class Server:
    """Answers every request with 200 "ok"; counts connections; can hang up idle ones."""

    def __init__(self) -> None:
        self.connections = 0
        self.streams: list[trio.SocketStream] = []

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        self.streams.append(stream)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.EndOfMessage):
                    await stream.send_all(
                        conn.send(h11.Response(status_code=200, headers=[("content-length", "2")]))
                        + conn.send(h11.Data(data=b"ok"))
                        + conn.send(h11.EndOfMessage())
                    )
                    conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def hang_up_all(self) -> None:
        for stream in self.streams:
            await stream.aclose()


async def serve(nursery) -> tuple[Server, Address]:
    server = Server()
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    return server, Address(listeners[0].socket.getsockname()[1])


async def get(upstream: Upstream, address: Address):
    conn = await upstream.acquire(address)
    await conn.send(h11.Request(method="GET", target="/", headers=[("host", "t")]))
    await conn.send(h11.EndOfMessage())
    while not isinstance(await conn.next_event(), h11.EndOfMessage):
        pass
    return conn


async def test_connections_are_reused(nursery) -> None:
    server, address = await serve(nursery)
    upstream = Upstream()
    for _ in range(10):
        upstream.release(await get(upstream, address))
    assert server.connections == 1
    stats = upstream.statistics()
    assert (stats.connections_opened, stats.connections_reused, stats.idle_connections) == (1, 9, 1)
    await upstream.aclose()
    assert upstream.statistics().idle_connections == 0


async def test_idle_connections_are_bounded(nursery) -> None:
    _, address = await serve(nursery)
    upstream = Upstream(max_idle_per_address=3)
    held = [await get(upstream, address) for _ in range(5)]
    for conn in held:
        upstream.release(conn)
    assert upstream.statistics().idle_connections == 3


async def test_connection_closed_by_the_tenant_is_not_handed_out(nursery) -> None:
    server, address = await serve(nursery)
    upstream = Upstream()
    upstream.release(await get(upstream, address))
    await server.hang_up_all()
    with trio.fail_after(5):
        while upstream.statistics().idle_connections:
            upstream.sweep(trio.current_time())
            await trio.sleep(0.01)
    upstream.release(await get(upstream, address))
    assert server.connections == 2
    assert upstream.statistics().connections_reused == 0


async def test_expired_idle_connections_are_closed(nursery) -> None:
    server, address = await serve(nursery)
    upstream = Upstream(max_idle_seconds=-1.0)  # every idle connection is too old
    upstream.release(await get(upstream, address))
    upstream.release(await get(upstream, address))
    assert server.connections == 2


async def test_unfinished_exchange_is_not_pooled(nursery) -> None:
    _, address = await serve(nursery)
    upstream = Upstream()
    conn = await upstream.acquire(address)
    await conn.send(h11.Request(method="GET", target="/", headers=[("host", "t")]))
    upstream.release(conn)  # request half-sent: closed, not pooled
    assert upstream.statistics().idle_connections == 0


async def test_nothing_listening(nursery) -> None:
    upstream = Upstream()
    with pytest.raises(UpstreamUnavailable, match=re.escape("cannot connect to 127.0.0.1:1")):
        await upstream.acquire(Address(1))
    with pytest.raises(UpstreamUnavailable, match="unix:/nonexistent"):
        await upstream.acquire(Address(None, "/nonexistent/t.sock"))
    await upstream.aclose()
    with pytest.raises(UpstreamUnavailable, match="shutting down"):
        await upstream.acquire(Address(1))
