"""serve_http's own HTTP/1.1 (h1.py) beside hypercorn, over real sockets.

Requests for a "fast" host are served by h1.py; everything else, and every request h1.py
does not take (upgrades, Expect, what h11 refuses), by hypercorn with the bytes already
read replayed. The app answers who served it: h1.py's scope has no "extensions" key,
hypercorn's has.
"""

from __future__ import annotations

import contextlib
import functools
import socket

import h11
import trio

from tenement.server.http import serve_http
from tenement.types import ASGIApp, Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    if scope["path"] == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    server = "hypercorn" if "extensions" in scope else "h1"
    answer = f"{server} {scope['method']} {scope['path']} {len(body)}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-echo", body[:20])]})
    await send({"type": "http.response.body", "body": answer})


def is_fast(host: str | None) -> bool:
    return host is not None and host.startswith("fast")


async def start(
    nursery: trio.Nursery, keep_alive: float = 5.0, served_app: ASGIApp = app
) -> tuple[int, trio.Event]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    shutdown = trio.Event()
    await nursery.start(
        functools.partial(
            serve_http,
            served_app,
            [sock],
            shutdown=shutdown,
            grace_seconds=2,
            # as `ten serve`, with a keep-alive time a test can wait out
            config_overrides={"include_server_header": False, "keep_alive_timeout": keep_alive},
            fast_path=is_fast,
        )
    )
    return sock.getsockname()[1], shutdown


async def exchange(port: int, data: bytes, responses: int = 1) -> list[tuple[h11.Response, bytes]]:
    """Send ``data`` on one connection; read up to ``responses`` responses (fewer if the
    server closes)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    answers = []
    leftover = b""
    async with stream:
        await stream.send_all(data)
        with trio.fail_after(10):
            while len(answers) < responses:
                # a client state machine per response, primed with a stand-in request
                client = h11.Connection(h11.CLIENT)
                client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
                client.send(h11.EndOfMessage())
                if leftover:
                    client.receive_data(leftover)
                head, body = None, b""
                while True:
                    event = client.next_event()
                    if event is h11.NEED_DATA:
                        client.receive_data(await stream.receive_some(65536))
                    elif isinstance(event, h11.Response):
                        head = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        return answers
                answers.append((head, body))
                if client.their_state is h11.MUST_CLOSE:
                    break
                leftover = client.trailing_data[0]
            return answers


def get(host: str, path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


async def test_fast_hosts_are_served_by_h1_and_others_by_hypercorn(nursery: trio.Nursery) -> None:
    port, _ = await start(nursery)
    data = get("fast.test", "/a%20b?q=1") + get("other.test", "/c")
    (fast, fast_body), (slow, slow_body) = await exchange(port, data, 2)
    assert fast_body == b"h1 GET /a b 0"
    assert slow_body == b"hypercorn GET /c 0"
    # Date either way, no Server header from either; h1.py gives a whole body a length
    for head in (fast, slow):
        names = {name for name, _ in head.headers}
        assert b"date" in names and b"server" not in names
    assert dict(fast.headers)[b"content-length"] == b"13"
    assert fast.reason == b"OK"  # written by tenement.wire, with the standard phrase


async def test_pipelined_requests_are_answered_in_order(nursery: trio.Nursery) -> None:
    port, _ = await start(nursery)
    body = b"hello"
    post = (
        f"POST /p HTTP/1.1\r\nHost: fast.test\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    answers = await exchange(port, get("fast.test", "/1") + post + get("fast.test", "/3"), 3)
    assert [body for _, body in answers] == [b"h1 GET /1 0", b"h1 POST /p 5", b"h1 GET /3 0"]


async def test_a_chunked_upload_is_read_whole(nursery: trio.Nursery) -> None:
    port, _ = await start(nursery)
    chunks = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    request = b"PUT /u HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    ((head, body),) = await exchange(port, request)
    assert body == b"h1 PUT /u 11"
    assert dict(head.headers)[b"x-echo"] == b"hello world"


async def test_expect_continue_is_answered_here_when_the_body_is_wanted(
    nursery: trio.Nursery,
) -> None:
    port, _ = await start(nursery)
    head = (
        b"POST /e HTTP/1.1\r\nHost: fast.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head)
        data = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
            assert data.startswith(b"HTTP/1.1 100 ")
            await stream.send_all(b"hi")
            while not data.endswith(b"h1 POST /e 2"):
                data += await stream.receive_some(65536)


async def test_malformed_requests_go_to_hypercorn(nursery: trio.Nursery) -> None:
    port, _ = await start(nursery)
    ((head, _),) = await exchange(port, b"GET / HTTP/1.1\r\nHost fast.test\r\n\r\n")
    assert head.status_code == 400


async def test_http_1_0_gets_its_answer_and_the_close(nursery: trio.Nursery) -> None:
    port, _ = await start(nursery)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /old HTTP/1.0\r\nHost: fast.test\r\n\r\n")
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"h1 GET /old 0")


async def test_an_app_error_is_a_500_and_the_connection_closes(nursery: trio.Nursery) -> None:
    port, _ = await start(nursery)
    answers = await exchange(port, get("fast.test", "/boom") + get("fast.test", "/after"), 2)
    assert len(answers) == 1
    ((head, body),) = answers
    assert (head.status_code, head.reason) == (500, b"Internal Server Error")  # via h11
    assert body == b"Internal Server Error"


async def test_after_shutdown_the_response_says_close_and_idle_connections_end(
    nursery: trio.Nursery,
) -> None:
    port, shutdown = await start(nursery)
    idle = await trio.open_tcp_stream("127.0.0.1", port)
    busy = await trio.open_tcp_stream("127.0.0.1", port)
    async with idle, busy:
        await idle.send_all(get("fast.test", "/warm"))
        assert (await idle.receive_some(65536)).endswith(b"h1 GET /warm 0")
        shutdown.set()
        # a request arriving during the drain is answered, with Connection: close
        await busy.send_all(get("fast.test", "/late"))
        data = b""
        with trio.fail_after(5):
            while chunk := await busy.receive_some(65536):
                data += chunk
            # the idle keep-alive connection is closed after its short grace
            assert await idle.receive_some(65536) == b""
    assert b"connection: close" in data.lower()
    assert data.endswith(b"h1 GET /late 0")


async def test_no_length_is_made_up_for_204_or_head(nursery: trio.Nursery) -> None:
    port, _ = await start(nursery)
    request = get("fast.test", "/empty") + b"HEAD /h HTTP/1.1\r\nHost: fast.test\r\n\r\n"
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        with trio.fail_after(5):
            while data.count(b"\r\n\r\n") < 2:
                data += await stream.receive_some(65536)
    first, second = data.split(b"\r\n\r\n")[:2]
    assert first.startswith(b"HTTP/1.1 204 ") and b"content-length" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200 ") and b"content-length" not in second.lower()


async def test_a_head_trickled_byte_by_byte_is_cut_at_the_keep_alive_time(
    nursery: trio.Nursery,
) -> None:
    port, _ = await start(nursery, keep_alive=0.5)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        with trio.fail_after(5):
            with contextlib.suppress(trio.BrokenResourceError):
                for byte in b"X-Slow: " + b"a" * 100:
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.05)
            assert await stream.receive_some(65536) == b""  # closed, unanswered


async def test_a_pipelining_client_does_not_starve_the_others(nursery: trio.Nursery) -> None:
    """Reads and writes that never wait are not checkpoints: the connection loop yields
    every few requests, so a second client is served while 200 pipelined requests on
    the first are still being answered."""
    served: list[str] = []

    async def recording_app(scope: Scope, receive: Receive, send: Send) -> None:
        served.append(scope["path"])
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    port, _ = await start(nursery, served_app=recording_app)
    first = await trio.open_tcp_stream("127.0.0.1", port)
    second = await trio.open_tcp_stream("127.0.0.1", port)
    async with first, second:
        await first.send_all(b"".join(get("fast.test", f"/a{n}") for n in range(200)))
        await second.send_all(get("fast.test", "/b"))
        with trio.fail_after(10):
            while len(served) < 201:
                await trio.sleep(0.01)
    assert served.index("/b") < 100, served.index("/b")


async def unreading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers without ever calling ``receive`` (as an API handler for a GET may)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


async def test_the_connection_goes_on_after_an_answer_that_did_not_read_the_request(
    nursery: trio.Nursery,
) -> None:
    port, _ = await start(nursery, served_app=unreading_app)
    post = b"POST /b HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 5\r\n\r\nhello"
    answers = await exchange(port, get("fast.test", "/a") + post + get("fast.test", "/c"), 3)
    assert [body for _, body in answers] == [b"/a", b"/b", b"/c"]
