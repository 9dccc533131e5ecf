"""Health transitions (pure) and the checks against real sockets."""

from __future__ import annotations

import functools

import pytest
import trio

from tenement.supervisor.health import (
    Health,
    HealthState,
    after_check,
    check,
    check_connect,
    check_http,
    parse_status_line,
)


def test_progression_degraded_then_unhealthy() -> None:
    state = HealthState()
    assert state.health is Health.UNKNOWN
    seen = []
    for _ in range(4):
        state = after_check(state, ok=False)
        seen.append(state.health)
    assert seen == [Health.DEGRADED, Health.DEGRADED, Health.UNHEALTHY, Health.UNHEALTHY]
    state = after_check(state, ok=True)
    assert state == HealthState(Health.HEALTHY, 0)


def test_health_serialises_lowercase() -> None:
    assert [str(h) for h in Health] == ["unknown", "healthy", "degraded", "unhealthy", "failed"]
    assert Health("degraded") is Health.DEGRADED


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", 200),
        (b"HTTP/1.0 204 No Content\r\n", 204),
        (b"HTTP/1.1 500 Internal\r\n\r\n200", 500),
        (b"HTTP/1.1 302\r\n", 302),
        (b"hello 200 world", None),
        (b"", None),
        (b"HTTP/1.1 2000 x\r\n", None),
    ],
)
def test_status_line(reply: bytes, code: int | None) -> None:
    assert parse_status_line(reply) == code


async def _serve_reply(reply: bytes, nursery: trio.Nursery) -> int:
    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some(4096)
            await stream.send_all(reply)

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


@pytest.mark.parametrize(
    ("reply", "healthy"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
        # the reference calls this healthy because the text contains "200"
        (b"HTTP/1.1 503 Unavailable\r\nContent-Length: 3\r\n\r\n200", False),
        (b"garbage", False),
    ],
)
async def test_http_check_reads_the_status_line(
    reply: bytes, healthy: bool, nursery: trio.Nursery
) -> None:
    port = await _serve_reply(reply, nursery)
    with trio.fail_after(5):
        assert await check_http(port, "", "/health") is healthy


async def test_connect_check_without_health_path(nursery: trio.Nursery) -> None:
    port = await _serve_reply(b"", nursery)
    with trio.fail_after(5):
        assert await check(port, "/nonexistent.sock", None)
        nursery.cancel_scope.cancel()


async def test_connect_check_refused() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # bound but not listening: connections are refused
        with trio.fail_after(5):
            assert not await check_connect(port, "")
            assert not await check_http(port, "", "/health")


async def test_unix_socket_when_no_port(tmp_path, nursery: trio.Nursery) -> None:
    path = str(tmp_path / "app.sock")
    sock = trio.socket.socket(trio.socket.AF_UNIX)
    await sock.bind(path)
    sock.listen()
    listener = trio.SocketListener(sock)

    async def serve() -> None:
        async with listener:
            stream = await listener.accept()
            async with stream:
                await stream.receive_some(4096)
                await stream.send_all(b"HTTP/1.1 200 OK\r\n\r\n")

    nursery.start_soon(serve)
    with trio.fail_after(5):
        assert await check_http(None, path, "health")
