"""The HTTPS front (serve_http with ``tls=``): keep-alive, streaming, uploads, WebSocket
(handed to hypercorn) and ALPN over TLS, with a certificate made by the test."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from functools import partial
from pathlib import Path

import h11
import pytest
import trio
import wsproto
import wsproto.events

from tenement.asgi import cancel_on_disconnect
from tenement.server.http import serve_http
from tenement.tls.certs import server_context
from tenement.tls.clienthello import ClientHello
from tenement.types import Receive, Scope, Send
from tests.pebble import make_ca

CHUNKS = 20
#: the ``/endless`` answers that ended (their client left)
ENDLESS_ENDED: list[str] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": f"{scope['scheme']} {message['text']}"})
        await send({"type": "websocket.close"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if scope["path"] == "/stream":
        for index in range(CHUNKS):
            await send({"type": "http.response.body", "body": b"%d," % index, "more_body": True})
            await trio.sleep(0)
    elif scope["path"] == "/endless":  # until the client leaves, as a proxied stream
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_on_disconnect, receive, nursery.cancel_scope)
            while True:
                piece = {"type": "http.response.body", "body": b"x" * 65536, "more_body": True}
                await send(piece)
        ENDLESS_ENDED.append(scope["path"])
    elif scope["path"] == "/upload":
        await send({"type": "http.response.body", "body": b"%d" % len(body), "more_body": True})
    else:
        await send(
            {"type": "http.response.body", "body": scope["scheme"].encode(), "more_body": True}
        )
    await send({"type": "http.response.body", "body": b""})


async def serving(nursery: trio.Nursery, tmp_path: Path) -> tuple[int, ssl.SSLContext]:
    ca, cert, key = make_ca(tmp_path)
    context = server_context()
    context.load_cert_chain(cert, key)
    hellos: list[ClientHello | None] = []

    async def choose(hello: ClientHello | None) -> ssl.SSLContext:
        hellos.append(hello)
        return context

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    shutdown = trio.Event()
    await nursery.start(
        partial(
            serve_http,
            app,
            [listener],
            shutdown=shutdown,
            grace_seconds=5,
            fast_path=lambda host: True,
            tls=choose,
        )
    )
    client = ssl.create_default_context(cafile=str(ca))
    return port, client


async def connect(
    port: int, client: ssl.SSLContext, alpn: list[str] | None = None
) -> trio.SSLStream:
    if alpn is not None:
        client.set_alpn_protocols(alpn)
    stream = trio.SSLStream(
        await trio.open_tcp_stream("127.0.0.1", port), client, server_hostname="localhost"
    )
    await stream.do_handshake()
    return stream


async def exchange(
    stream: trio.SSLStream, conn: h11.Connection, request: h11.Request, body: bytes = b""
) -> tuple[int, bytes]:
    data = conn.send(request)
    if body:
        data += conn.send(h11.Data(data=body))
    await stream.send_all(data + conn.send(h11.EndOfMessage()))
    status, received = 0, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            received += event.data
        elif isinstance(event, h11.EndOfMessage):
            conn.start_next_cycle()
            return status, received


def get(path: str) -> h11.Request:
    return h11.Request(method="GET", target=path, headers=[("host", "localhost")])


async def test_keep_alive_streaming_and_uploads_over_tls(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        port, client = await serving(nursery, tmp_path)
        with trio.fail_after(20):
            stream = await connect(port, client)
            conn = h11.Connection(h11.CLIENT)
            assert await exchange(stream, conn, get("/")) == (200, b"https")
            assert await exchange(stream, conn, get("/")) == (200, b"https")  # kept alive
            streamed = await exchange(stream, conn, get("/stream"))
            assert streamed == (200, b"".join(b"%d," % i for i in range(CHUNKS)))
            upload = b"x" * (3 * 1024 * 1024)  # many TLS records, many reads
            post = h11.Request(
                method="POST",
                target="/upload",
                headers=[("host", "localhost"), ("content-length", str(len(upload)))],
            )
            assert await exchange(stream, conn, post, upload) == (200, str(len(upload)).encode())
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_a_client_that_resets_mid_body_is_a_client_that_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A regression: the write to a client that reset its TLS connection in the middle
    of a body raised into the app (ERROR, a traceback). Now the app sees the client
    leave, and the server serves on."""
    caplog.set_level(logging.WARNING)
    ENDLESS_ENDED.clear()
    async with trio.open_nursery() as nursery:
        port, client = await serving(nursery, tmp_path)
        with trio.fail_after(20):
            for _ in range(3):
                stream = await connect(port, client)
                await stream.send_all(h11.Connection(h11.CLIENT).send(get("/endless")) or b"")
                received = 0
                while received < 1 << 20:
                    received += len(await stream.receive_some(65536))
                raw = stream.transport_stream
                assert isinstance(raw, trio.SocketStream)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await raw.aclose()
            while len(ENDLESS_ENDED) < 3:
                await trio.sleep(0.01)
            stream = await connect(port, client)
            assert await exchange(stream, h11.Connection(h11.CLIENT), get("/")) == (200, b"https")
            await stream.aclose()
        nursery.cancel_scope.cancel()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_alpn_offers_http11_only(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        port, client = await serving(nursery, tmp_path)
        with trio.fail_after(20):
            stream = await connect(port, client, ["h2", "http/1.1"])
            assert stream.selected_alpn_protocol() == "http/1.1"
            await stream.aclose()
            only_h2 = await connect(
                port, ssl.create_default_context(cafile=str(tmp_path / "ca.pem")), ["h2"]
            )
            assert only_h2.selected_alpn_protocol() is None  # not h2: it is not served
            conn = h11.Connection(h11.CLIENT)
            assert await exchange(only_h2, conn, get("/")) == (200, b"https")
            await only_h2.aclose()
        nursery.cancel_scope.cancel()


async def test_websocket_over_tls_is_wss(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        port, client = await serving(nursery, tmp_path)
        with trio.fail_after(20):
            stream = await connect(port, client)
            ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            await stream.send_all(ws.send(wsproto.events.Request(host="localhost", target="/ws")))
            texts: list[str] = []
            while not texts:
                ws.receive_data(await stream.receive_some(65536))
                for event in ws.events():
                    if isinstance(event, wsproto.events.AcceptConnection):
                        await stream.send_all(ws.send(wsproto.events.TextMessage(data="hi")))
                    elif isinstance(event, wsproto.events.TextMessage):
                        texts.append(event.data)
            assert texts == ["wss hi"]
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_a_drain_closes_connections_that_sent_no_client_hello(tmp_path: Path) -> None:
    """They are idle, as a plain connection that sent nothing is: the drain gives them
    its short idle grace, not the handshake's 10 s (a restart would wait for them)."""
    _, cert, key = make_ca(tmp_path)
    context = server_context()
    context.load_cert_chain(cert, key)

    async def choose(hello: ClientHello | None) -> ssl.SSLContext:
        return context

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    shutdown = trio.Event()
    drained = trio.Event()

    async def serve(task_status: trio.TaskStatus[None]) -> None:
        await serve_http(
            app,
            [listener],
            shutdown=shutdown,
            grace_seconds=60,
            fast_path=lambda host: True,
            tls=choose,
            task_status=task_status,
        )
        drained.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve)
        silent = await trio.open_tcp_stream("127.0.0.1", port)
        async with silent:
            # connections are accepted in order: once a later one is served, the silent
            # one is accepted and waits for its ClientHello
            client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
            with trio.fail_after(10):
                later = await connect(port, client)
                assert await exchange(later, h11.Connection(h11.CLIENT), get("/")) == (
                    200,
                    b"https",
                )
                await later.aclose()
            shutdown.set()
            with trio.fail_after(5):  # the handshake's own deadline is 10 s
                await drained.wait()
                assert await silent.receive_some(10) == b""  # closed by the server


async def test_the_edge_refuses_ambiguous_framing_over_tls_too(tmp_path: Path) -> None:
    """TLS sits in front of the hardened front, not beside it: Content-Length with
    Transfer-Encoding is refused with 400 after decryption as it is without TLS."""
    async with trio.open_nursery() as nursery:
        port, client = await serving(nursery, tmp_path)
        with trio.fail_after(20):
            stream = await connect(port, client)
            await stream.send_all(
                b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive_some(65536)
            assert answer.startswith(b"HTTP/1.1 400 ")
            await trio.aclose_forcefully(stream)
        nursery.cancel_scope.cancel()
