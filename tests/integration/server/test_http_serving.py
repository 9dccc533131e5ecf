"""serve_http loses no request across restarts on a held socket (tenement.server.http).

A real child process (serving_app.py) serves on sockets held by tests/fdholder.py, the
way systemd's socket unit holds them, and is restarted under a load of concurrent
clients: one request per connection, and keep-alive clients reusing connections.
"""

from __future__ import annotations

import signal
import socket
import struct
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from tenement.server.handoff import ServeConfigError, make_config
from tenement.server.http import serve_http
from tenement.types import Receive, Scope, Send
from tests.fdholder import FdHolder, open_fd_holder
from tests.loadgen import Load, keep_alive_client, one_shot_client

SERVING_APP = str(Path(__file__).with_name("serving_app.py"))

ONE_SHOT_CLIENTS = 8
KEEP_ALIVE_CLIENTS = 4
RESTARTS = 6
#: bare hypercorn loses a few requests per restart; 3 restarts show it every time
BARE_RESTARTS = 3


async def run_restarts_under_load(holder: FdHolder, restarts: int) -> Load:
    """Start clients, restart the child ``restarts`` times (each serving some load)."""
    load = Load()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(ONE_SHOT_CLIENTS):
            nursery.start_soon(one_shot_client, holder.port, load, stop)
        for _ in range(KEEP_ALIVE_CLIENTS):
            nursery.start_soon(keep_alive_client, holder.url, load, stop)
        with trio.fail_after(60):
            await load.wait_for_more(50)
            for _ in range(restarts):
                await holder.restart(signal.SIGTERM)
                await load.wait_for_more(50)
        stop.set()
    return load


async def start_serving(holder: FdHolder, *args: str) -> None:
    await holder.start([sys.executable, SERVING_APP, *args])
    with trio.fail_after(20):
        await holder.wait_notify("READY=1")


async def test_restarts_under_load_lose_no_request(tmp_path: Path) -> None:
    async with open_fd_holder(tmp_path) as holder:
        await start_serving(holder)
        load = await run_restarts_under_load(holder, RESTARTS)
        with trio.fail_after(20):
            assert await holder.stop() == 0
    print(f"{RESTARTS} restarts, {load.sent} requests sent, {load.ok} ok, {load.failures}")
    assert dict(load.failures) == {}
    assert len(load.pids) == RESTARTS + 1, "every process served part of the load"
    assert holder.starts == RESTARTS + 1


async def test_slow_request_in_flight_completes_across_sigterm(tmp_path: Path) -> None:
    async with open_fd_holder(tmp_path, unix=True) as holder:
        await start_serving(holder)
        served_by = str(holder.process.pid)
        results: list[httpx.Response] = []

        async def slow_request() -> None:
            async with httpx.AsyncClient(base_url=holder.url) as client:
                results.append(await client.get("/slow"))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_request)
                await holder.wait_notify("STATUS=slow request started")
                assert await holder.stop(signal.SIGTERM) == 0
        [response] = results
        assert response.status_code == 200
        assert response.text == f"ok {served_by}"
        assert response.headers["connection"] == "close", "the client is told not to reuse it"
        assert "STOPPING" in holder.notifications[-1].fields


async def test_unix_socket_is_served_and_survives_a_restart(tmp_path: Path) -> None:
    async with open_fd_holder(tmp_path, unix=True) as holder:
        await start_serving(holder)
        transport = httpx.AsyncHTTPTransport(uds=holder.unix_path)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenement") as client:
            first = await client.get("/")
            with trio.fail_after(20):
                await holder.restart()
            second = await client.get("/")
    assert first.status_code == second.status_code == 200
    assert first.text != second.text, "served by two processes"


async def test_bare_hypercorn_018_loses_requests_on_restart(tmp_path: Path) -> None:
    """Why serve_http exists: plain ``hypercorn.trio.serve`` under the same load loses some.

    hypercorn 0.18 closes connections it has accepted but not read at once when shutdown
    begins (and keep-alive connections without ``Connection: close``). If this starts
    failing after a hypercorn upgrade, its shutdown may be fixed: re-check whether the
    drain in tenement/server/http.py is still needed.
    """
    async with open_fd_holder(tmp_path) as holder:
        await start_serving(holder, "--naive", "--grace", "2")
        load = await run_restarts_under_load(holder, BARE_RESTARTS)
    print(
        f"bare hypercorn: {BARE_RESTARTS} restarts, {load.sent} sent, {load.ok} ok, {load.failures}"
    )
    assert sum(load.failures.values()) > 0


async def test_started_reports_binds_and_shutdown_without_connections_returns(
    nursery: trio.Nursery,
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shutdown = trio.Event()
    done = trio.Event()

    async def serve(task_status: trio.TaskStatus[list[str]]) -> None:
        await serve_http(app, [sock], shutdown=shutdown, grace_seconds=5, task_status=task_status)
        done.set()

    binds = await nursery.start(serve)
    assert binds == [f"http://127.0.0.1:{port}"]
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 204
    shutdown.set()
    with trio.fail_after(5):
        await done.wait()
    assert sock.fileno() == -1, "serve_http owns and closes the sockets"


async def app_ok(scope, receive, send):
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


async def read_response(stream: trio.SocketStream) -> tuple[bytes, bytes]:
    """(head, body) of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")
        ).split(b":")[1]
    )
    while len(body) < length:
        body += await stream.receive_some()
    return head.lower(), body


def accept_queue_length(listening: socket.socket) -> int:
    """Connections waiting in the kernel for accept() (tcp_info.tcpi_unacked on a listener)."""
    info = listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 24)[0]


@pytest.fixture
async def server(nursery: trio.Nursery):
    """serve_http on 127.0.0.1 (holding a copy of the socket, as systemd would)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held = sock.dup()
    shutdown = trio.Event()
    done = trio.Event()

    async def serve(task_status: trio.TaskStatus[None]) -> None:
        await serve_http(
            app_ok, [sock], shutdown=shutdown, grace_seconds=30, task_status=task_status
        )
        done.set()

    await nursery.start(serve)
    yield held, shutdown, done
    held.close()


async def test_connection_accepted_but_unread_at_shutdown_is_answered(server) -> None:
    held, shutdown, done = server
    stream = await trio.open_tcp_stream(*held.getsockname())
    with trio.fail_after(10):
        while accept_queue_length(held):  # until serve_http has accepted it
            await trio.sleep(0.001)
        shutdown.set()
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = await read_response(stream)
        assert await stream.receive_some() == b"", "then a clean close"
        await done.wait()
    assert head.startswith(b"http/1.1 200")
    assert b"\r\nconnection: close" in head
    assert body == b"ok"


async def test_keep_alive_connection_idle_at_shutdown_gets_one_more_answer(server) -> None:
    held, shutdown, done = server
    request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*held.getsockname())
        await stream.send_all(request)
        first, _ = await read_response(stream)
        shutdown.set()
        await stream.send_all(request)
        second, body = await read_response(stream)
        assert await stream.receive_some() == b""
        await done.wait()
    assert b"connection: close" not in first
    assert b"\r\nconnection: close" in second
    assert body == b"ok"


async def test_idle_keep_alive_connection_is_closed_cleanly(server) -> None:
    held, shutdown, done = server
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*held.getsockname())
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await read_response(stream)
        shutdown.set()
        assert await stream.receive_some() == b"", "EOF, not a reset"
        await done.wait()


async def test_new_connections_wait_in_the_queue_after_shutdown(server) -> None:
    held, shutdown, done = server
    shutdown.set()
    with trio.fail_after(10):
        await done.wait()
    late = socket.create_connection(held.getsockname())
    with late:
        assert accept_queue_length(held) == 1, "queued for the next process"


async def test_a_request_running_past_the_grace_is_cut(nursery: trio.Nursery) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    started = trio.Event()

    async def hanging_app(scope, receive, send):
        started.set()
        await trio.sleep_forever()

    shutdown = trio.Event()
    with trio.fail_after(10):
        await nursery.start(
            partial(serve_http, hanging_app, [sock], shutdown=shutdown, grace_seconds=0.2)
        )
        stream = await trio.open_tcp_stream(*sock.getsockname())
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await started.wait()
        shutdown.set()
        # serve_http returns at the grace deadline; the client sees the connection end
        assert await stream.receive_some() == b""


def test_config_overrides_are_checked() -> None:
    assert make_config().backlog >= 4096
    assert make_config({"keep_alive_timeout": 7}).keep_alive_timeout == 7
    with pytest.raises(ServeConfigError, match="no setting 'keep_alive_timout'"):
        make_config({"keep_alive_timout": 7})


async def test_a_bad_override_fails_the_start_even_with_h1_serving() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    with pytest.raises(ServeConfigError, match="no setting 'keep_alive_timout'"):
        await serve_http(
            _ok_app,
            [sock],
            shutdown=trio.Event(),
            grace_seconds=1,
            config_overrides={"keep_alive_timout": 7},
            fast_path=lambda host: True,
        )
    sock.close()


async def _ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
