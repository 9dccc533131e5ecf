"""A client that hangs up on a stream is no error of the server's.

A log stream through a worker process (`workers = 2`): the worker relays the API to the
leader's control socket, and a client's hang-up closes that relay under the leader's
stream. A proxied body: the client closes (or resets) its connection half way through.
"""

from __future__ import annotations

import functools
import socket
import struct
import sys
import textwrap
from pathlib import Path

import httpx
import trio

from tests.integration.server.test_serve_lifecycle import CONFIG, admin_token
from tests.integration.server.test_switchover import Server

#: a tenant whose ``GET /big`` is far more than the socket buffers between it and a
#: client that stops reading; ``GET /`` answers ``ok``; ``POST /big`` answers as
#: ``GET /big`` without reading the request's body (and closes)
STREAMING_APP = textwrap.dedent(
    """
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    PIECE = b"x" * 65536

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            pieces = 4096 if self.path == "/big" else 0
            body = b"ok" if not pieces else b""
            self.send_response(200)
            self.send_header("content-length", str(pieces * len(PIECE) or len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
                for _ in range(pieces):
                    self.wfile.write(PIECE)
            except OSError:
                pass
            self.close_connection = self.command == "POST"

        do_POST = do_GET

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)
STREAMING_CONFIG = f"""
[settings]
data_dir = "data"
tenant_users = false

[service.stream]
command = "{sys.executable} stream_app.py"
isolation = "process"

[instances]
stream = ["a"]
"""
STREAM_HOST = "a.stream.localhost"


async def test_clients_leaving_their_log_streams_log_no_error(directory: Path) -> None:
    """A regression: each stream whose client hung up logged an ERROR with a 20-line
    traceback (the stream's last, empty part written to a closed socket). Tickets are
    cheap, so any token holder could fill the server's log with them."""
    (directory / "tenement.toml").write_text(
        CONFIG.replace("[settings]\n", "[settings]\nworkers = 2\n", 1)
    )
    token = admin_token(directory)
    server = Server(directory, "serve")
    try:
        await server.wait_ready()
        headers = {"authorization": f"Bearer {token}"}
        for _ in range(6):  # a worker or the leader takes each: some go through the relay
            async with (
                httpx.AsyncClient(base_url=server.url, headers=headers) as client,
                client.stream("GET", "/api/logs/stream") as response,
            ):
                assert response.status_code == 200
        # each stream's task ends on its hang-up; meanwhile the server serves on
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            for _ in range(20):
                assert (await client.get("/api/whoami")).status_code == 200
    finally:
        server.kill()
    log = (directory / "serve.log").read_text()
    assert "Traceback" not in log
    assert " ERROR " not in log


#: a request for the big body whose own body streams (chunked): the proxy writes it to
#: the tenant while it relays the answer
STREAMED_POST = (
    b"POST /big HTTP/1.1\r\nHost: " + STREAM_HOST.encode() + b"\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
)
GET = b"GET /big HTTP/1.1\r\nHost: " + STREAM_HOST.encode() + b"\r\n\r\n"


def read_then_hang_up(port: int, *, reset: bool, request: bytes = GET) -> int:
    """``request`` (by default ``GET /big``) to the streaming tenant; read a part of the
    answer, then close (with ``reset``: SO_LINGER 0, so the server sees a RST, not a
    FIN). Returns bytes read."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        read = 0
        while read < 1 << 20:
            data = sock.recv(65536)
            assert data, "the server closed before the client hung up"
            read += len(data)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return read


async def test_clients_leaving_mid_body_log_no_error(directory: Path) -> None:
    """A regression: a client that hung up in the middle of a proxied body made the
    server log a traceback (the write to its closed socket, BrokenPipeError or
    ConnectionResetError) and count no request. Now it is a client that left, as when
    the server sees it go: counted, its tenant connection closed, and nothing logged."""
    (directory / "stream_app.py").write_text(STREAMING_APP)
    (directory / "tenement.toml").write_text(STREAMING_CONFIG)
    server = Server(directory, "serve")
    try:
        await server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, headers={"host": STREAM_HOST}) as client:
            with trio.fail_after(30):
                while (await client.get("/")).status_code != 200:
                    await trio.sleep(0.05)
            counted = await requests_counted(client)
            for turn in range(4):
                # the first finds the idle pooled connection `GET /` left (the express
                # lane); the second none, as the first's was closed (the ASGI way); the
                # third's body streams (both directions at once); clients that reset,
                # and ones that close
                for reset, request in (
                    (turn % 2 == 0, GET),
                    (turn % 2 == 1, GET),
                    (turn < 2, STREAMED_POST),
                ):
                    hang_up = functools.partial(
                        read_then_hang_up, server.port, reset=reset, request=request
                    )
                    await trio.to_thread.run_sync(hang_up)
                # the server serves another client on, and the tenant too
                response = await client.get("/")
                assert (response.status_code, response.text) == (200, "ok")
            assert await requests_counted(client) == counted + 4 * 4
    finally:
        server.kill()
    log = (directory / "serve.log").read_text()
    assert "Traceback" not in log
    assert " ERROR " not in log


async def requests_counted(client: httpx.AsyncClient) -> int:
    """The proxy's count of requests to the streaming tenant, from ``/metrics``."""
    metrics = (await client.get("/metrics", headers={"host": "localhost"})).text
    for line in metrics.splitlines():
        if line.startswith('tenement_requests_total{instance="a",process="stream"}'):
            return int(float(line.split()[-1]))
    raise AssertionError(f"no request count for stream:a in {metrics}")
