"""tenement.sockets and the accept loop (server/accept.py), on real sockets."""

from __future__ import annotations

import socket

import trio

from tenement import sockets
from tenement.server.accept import accept_connections


async def test_send_all_waits_for_a_slow_reader_and_receive_sees_the_end() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    payload = bytes(range(256)) * 40_000  # ~10 MB: far more than the kernel buffers
    received = bytearray()

    async def read_slowly() -> None:
        while True:
            chunk = await sockets.receive(right)
            if not chunk:
                return
            received.extend(chunk)
            await trio.sleep(0)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_slowly)
            await sockets.send_all(left, payload)
            left.shutdown(socket.SHUT_WR)
    assert bytes(received) == payload
    left.close()
    right.close()


async def test_receive_waiting_first_gets_what_is_there_and_what_comes() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    with trio.fail_after(5):
        left.send(b"already here")
        assert await sockets.receive(right, wait_first=True) == b"already here"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sockets.send_all, left, b"later")
            assert await sockets.receive(right, wait_first=True) == b"later"
        left.close()
        assert await sockets.receive(right, wait_first=True) == b""
    right.close()


async def test_accepted_connections_are_non_blocking_and_closing_ends_the_loop() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    blocking: list[bool] = []

    async def handler(conn: socket.socket) -> None:
        blocking.append(conn.getblocking())
        await sockets.send_all(conn, b"hello")
        conn.close()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_connections, listener, handler, nursery)
            for _ in range(3):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                assert await stream.receive_some() == b"hello"
                await stream.aclose()
            trio.lowlevel.notify_closing(listener)
            listener.close()  # the loop returns, and the nursery with it
    assert blocking == [False, False, False]
