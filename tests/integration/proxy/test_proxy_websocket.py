"""WebSockets relayed through the proxy to a real tenant (the reference has none)."""

from __future__ import annotations

import logging
import socket
import struct

import pytest
import trio
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    TextMessage,
)

from tenement.proxy import Proxy
from tests.integration.proxy.proxy_support import (
    DOMAIN,
    Backends,
    WebSocketClient,
    fallback_app,
    serve_proxy,
    start_backend,
    stop_backend,
    target_for,
)

HOST = f"alice.notes.{DOMAIN}"


async def proxy_to(nursery, backend) -> tuple[int, Backends]:
    backends = Backends()
    backends.add(target_for("notes", "alice", backend))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    return server.port, backends


async def test_echo_text_and_bytes(nursery, backends_pool) -> None:
    port, backends = await proxy_to(nursery, backends_pool["a"])
    with trio.fail_after(10):
        client, answer, _ = await WebSocketClient.connect(port, HOST, "/ws", ["chat", "other"])
        assert isinstance(answer, AcceptConnection)
        assert answer.subprotocol == "chat"
        assert (b"x-backend", b"a") in list(answer.extra_headers)
        assert backends.active["notes:alice"] == 1  # counted while open
        await client.send("hello")
        assert await client.receive() == TextMessage(data="hello")
        await client.send(b"\x00\x01" * 100_000)  # bigger than one read
        assert await client.receive() == BytesMessage(data=b"\x00\x01" * 100_000)
        await client.close()
        while backends.active["notes:alice"]:
            await trio.sleep(0.01)


async def test_tenant_close_code_reaches_the_client(nursery, backends_pool) -> None:
    port, _ = await proxy_to(nursery, backends_pool["a"])
    with trio.fail_after(10):
        client, answer, _ = await WebSocketClient.connect(port, HOST, "/ws")
        assert isinstance(answer, AcceptConnection)
        await client.send("close-me")
        closed = await client.receive()
    assert isinstance(closed, CloseConnection)
    assert closed.code == 4001


async def test_tenant_refusal_is_passed_on(nursery, backends_pool) -> None:
    port, _ = await proxy_to(nursery, backends_pool["a"])
    with trio.fail_after(10):
        _, answer, body = await WebSocketClient.connect(port, HOST, "/reject")
    assert isinstance(answer, RejectConnection)
    assert answer.status_code == 403
    assert body == b"nope"


async def test_dead_tenant_refuses_with_503(nursery) -> None:
    backends = Backends()
    backends.add(target_for("notes", "dead", None))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    with trio.fail_after(10):
        _, answer, body = await WebSocketClient.connect(server.port, f"notes.{DOMAIN}", "/ws")
    assert isinstance(answer, RejectConnection)
    assert answer.status_code == 503
    assert body == b"Service temporarily unavailable"


async def test_unknown_host_websocket_goes_to_fallback(nursery, backends_pool) -> None:
    port, _ = await proxy_to(nursery, backends_pool["a"])
    with trio.fail_after(10):
        _, answer, _ = await WebSocketClient.connect(port, DOMAIN, "/ws")
    assert isinstance(answer, RejectConnection)  # the fallback closes before accepting
    assert answer.status_code == 403


async def test_tenant_pings_are_answered_while_messages_flow(nursery) -> None:
    """The tenant pings every 5 ms while the client sends: pongs and messages both
    go to the tenant without tripping over each other."""
    backend = start_backend("127.0.0.1:0", "pinger", "--ws-ping", "0.005")
    try:
        port, _ = await proxy_to(nursery, backend)
        with trio.fail_after(20):
            client, answer, _ = await WebSocketClient.connect(port, HOST, "/ws")
            assert isinstance(answer, AcceptConnection)
            for i in range(300):
                await client.send(f"m{i}" * 1000)
                assert await client.receive() == TextMessage(data=f"m{i}" * 1000)
            await client.close()
    finally:
        stop_backend(backend)


async def test_a_client_that_resets_mid_relay_ends_it_quietly(
    nursery, fresh_backend, caplog: pytest.LogCaptureFixture
) -> None:
    """The client sends without reading until nothing moves any more (the tenant's
    echoes fill every buffer back to the client, so the relay waits to write both ways
    and the server's queue of the client's messages is full), then resets: the relay
    ends (the tenant's connection is let go), nothing is logged as an error, and the
    next WebSocket is relayed."""
    caplog.set_level(logging.WARNING)
    port, backends = await proxy_to(nursery, fresh_backend)
    with trio.fail_after(60):
        client, answer, _ = await WebSocketClient.connect(port, HOST, "/ws")
        assert isinstance(answer, AcceptConnection)
        await _flood_until_stalled(client)
        assert backends.active["notes:alice"] == 1
        client.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await client.stream.aclose()
        while backends.active["notes:alice"]:
            await trio.sleep(0.01)
        client, answer, _ = await WebSocketClient.connect(port, HOST, "/ws")
        assert isinstance(answer, AcceptConnection)
        await client.send("again")
        assert await client.receive() == TextMessage(data="again")
        await client.close()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def _flood_until_stalled(client: WebSocketClient) -> None:
    """Send messages, reading none of the tenant's echoes, until none goes out for half
    a second: every buffer between the client and the tenant is full, both ways."""
    sent = 0

    async def flood() -> None:
        nonlocal sent
        while True:
            await client.send(b"x" * 100_000)
            sent += 1

    async with trio.open_nursery() as flooding:
        flooding.start_soon(flood)
        last = -1
        while sent != last:
            last = sent
            await trio.sleep(0.5)
        flooding.cancel_scope.cancel()


async def test_a_client_that_reads_nothing_does_not_hold_the_server_s_stop(
    fresh_backend,
) -> None:
    """The client floods, reads nothing and stays: the server stops all the same once
    its drain's grace (1 s) is over (hypercorn writes to the client under a shield from
    cancellation, so the connection's socket is closed under it)."""
    backends = Backends()
    backends.add(target_for("notes", "alice", fresh_backend))
    shutdown = trio.Event()
    stopped = trio.Event()

    async def serving(task_status: trio.TaskStatus[int]) -> None:
        async with trio.open_nursery() as nursery:
            proxy = Proxy(backends, domain=DOMAIN, fallback=fallback_app)
            server = await serve_proxy(nursery, proxy, shutdown=shutdown)
            task_status.started(server.port)
        stopped.set()

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serving)
            client, answer, _ = await WebSocketClient.connect(port, HOST, "/ws")
            assert isinstance(answer, AcceptConnection)
            await _flood_until_stalled(client)
            shutdown.set()
            with trio.move_on_after(30):
                await stopped.wait()
            stopped_alone = stopped.is_set()
            await client.stream.aclose()  # lets a server that waited for it stop
    assert stopped_alone, "the server's stop waited for a client that reads nothing"
