"""The HTTP/1.1 front against hostile and odd clients (tenement/server/edge.py, h1.py).

Each case was found by attacking ``ten serve``; here they run against ``serve_http``
itself, over real sockets, and every test ends by checking that a second client is
still served: the server outlives whatever one connection sent.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable

import pytest
import trio

from tenement.server.http import serve_http
from tenement.types import ASGIApp
from tests.integration.server.test_h1 import app, exchange, get, is_fast


async def express(request, client, receive, send, send_whole, secure=False) -> bool:  # type: ignore[no-untyped-def]
    """An express lane (``Proxy.express``'s place) that serves every whole request."""
    answer = b"express %s %s %d" % (request.method, request.target, len(request.body))
    await send_whole(200, [(b"content-type", b"text/plain")], answer)
    return True


def every_host(host: str | None) -> bool:
    """``ten serve``'s fast path: every request, a Host or none."""
    return True


async def start(
    nursery: trio.Nursery,
    served: ASGIApp = app,
    *,
    body_seconds: float = 30.0,
    fast: Callable[[str | None], bool] = is_fast,
    lane: bool = True,
) -> int:
    """A server of ``served`` (the express lane unless not ``lane``); returns its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await nursery.start(
        functools.partial(
            serve_http,
            served,
            [sock],
            shutdown=trio.Event(),
            grace_seconds=2,
            config_overrides={"include_server_header": False, "keep_alive_timeout": 5.0},
            fast_path=fast,
            express=express if lane else None,
            body_seconds=body_seconds,
        )
    )
    return sock.getsockname()[1]


async def raw(port: int, data: bytes, *, seconds: float = 10) -> bytes:
    """Send ``data``, half-close, and read until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    out = b""
    async with stream:
        await stream.send_all(data)
        with trio.fail_after(seconds):
            while chunk := await stream.receive_some(65536):
                out += chunk
    return out


async def still_served(port: int) -> None:
    ((head, body),) = await exchange(port, get("fast.test", "/alive"))
    assert head.status_code == 200 and body.endswith(b" GET /alive 0")


@pytest.mark.parametrize(
    "request_",
    [
        # 0.CL: h11 reads the chunks, a tenant would read the length
        b"POST / HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: fast.test\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        # a folded line: h11 joins it, other parsers split or refuse it
        b"GET / HTTP/1.1\r\nHost: fast.test\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: fast.test\r\nX-A: 1\r\n\tb\r\n\r\n",
        # a bad chunk size, first and later
        b"POST / HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n",
        b"POST / HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"FFFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n",
    ],
    ids=["cl-te", "te-cl", "obs-fold-te", "obs-fold", "chunk-0x", "chunk-negative", "chunk-huge"],
)
async def test_ambiguous_framing_is_refused_with_400(
    nursery: trio.Nursery, request_: bytes
) -> None:
    port = await start(nursery)
    answer = await raw(port, request_)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert answer.count(b"HTTP/1.1") == 1  # nothing after it was read as a request
    await still_served(port)


async def test_a_version_other_than_1_x_is_refused_with_505(nursery: trio.Nursery) -> None:
    port = await start(nursery)
    answer = await raw(port, b"GET / HTTP/3.0\r\nHost: fast.test\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 505 ")
    await still_served(port)


@pytest.mark.parametrize("settings", [b"AAIAAAAC", b"AAUAAAAB", b"AASAAAAA", b"AAA"])
async def test_an_h2c_upgrade_is_answered_in_http_1_1(
    nursery: trio.Nursery, settings: bytes
) -> None:
    # these settings once ended the whole server through hypercorn's h2 upgrade
    port = await start(nursery)
    request = get(
        "fast.test",
        "/h2c",
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        f"HTTP2-Settings: {settings.decode()}\r\n",
    )
    ((head, body),) = await exchange(port, request)
    assert (head.status_code, body) == (200, b"h1 GET /h2c 0")
    await still_served(port)


async def test_a_connection_that_breaks_hypercorn_ends_alone(nursery: trio.Nursery) -> None:
    # An expectation h11 does not know sends the request to hypercorn, which still
    # takes the h2c upgrade and fails on these settings: the barrier keeps it to this
    # one connection.
    port = await start(nursery)
    request = get(
        "fast.test",
        "/",
        "Expect: something\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAIAAAAC\r\n",
    )
    await raw(port, request)
    await still_served(port)
    await still_served(port)


async def test_http2_with_prior_knowledge_is_spoken(nursery: trio.Nursery) -> None:
    # it was read as an HTTP/1.1 request "PRI *" (401, then 400 for the rest)
    port = await start(nursery, fast=every_host)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    answer = b""
    async with stream:
        await stream.send_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        with trio.fail_after(5):
            while len(answer) < 9:  # a frame header
                answer += await stream.receive_some(65536)
    assert answer[3:4] == b"\x04"  # the server's first frame: SETTINGS
    await still_served(port)


async def test_bare_lf_line_ends_are_served(nursery: trio.Nursery) -> None:
    # the express lane waited for a CRLF CRLF that never came, then closed unanswered
    port = await start(nursery)
    answer = await raw(port, b"GET /lf HTTP/1.1\nHost: fast.test\nConnection: close\n\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"h1 GET /lf 0")
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:  # keep-alive: answered without waiting for the connection's end
        await stream.send_all(b"GET /lf HTTP/1.1\nHost: fast.test\n\n")
        data = b""
        with trio.fail_after(3):
            while not data.endswith(b"h1 GET /lf 0"):
                data += await stream.receive_some(65536)


async def test_a_slow_small_body_is_served(nursery: trio.Nursery) -> None:
    # The express lane once gave a whole request the keep-alive time (5 s) and reset
    # the connection after it. Here the body takes longer than that keep-alive time.
    port = await start(nursery)
    head = b"POST /slow HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 6\r\n\r\n"
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head)
        for part in (b"ab", b"cd", b"ef"):
            await trio.sleep(2.2)  # the client's pace, not a wait for the server
            await stream.send_all(part)
        data = b""
        with trio.fail_after(10):
            while not data.endswith(b"express POST /slow 6"):
                data += await stream.receive_some(65536)


@pytest.mark.parametrize(
    "head",
    [
        b"POST /b HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 100000\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 10\r\nConnection: close\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 10\r\n\r\n",
    ],
    ids=["chunked", "large", "close", "small"],
)
async def test_a_body_that_never_comes_ends_the_connection_without_the_app(
    nursery: trio.Nursery, head: bytes
) -> None:
    calls = []

    async def counting(scope, receive, send):  # type: ignore[no-untyped-def]
        calls.append(scope.get("path"))
        await app(scope, receive, send)

    port = await start(nursery, counting, body_seconds=1.0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head)
        with trio.fail_after(10):  # closed by the body deadline, not by us
            while await stream.receive_some(65536):
                pass
    assert calls == []  # no app (so no tenant connection) waited on the silent body
    ((answer, _),) = await exchange(port, get("fast.test", "/after"))
    assert answer.status_code == 200


async def test_a_trickled_body_is_cut_off_by_its_rate(nursery: trio.Nursery) -> None:
    # a byte every half second never pauses for body_seconds, but averages far below
    # the least rate a body may arrive at
    port = await start(nursery, body_seconds=1.0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    closed = False
    async with stream:
        await stream.send_all(
            b"POST /t HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 100000\r\n\r\n"
        )
        with trio.move_on_after(15):
            while True:
                await trio.sleep(0.5)  # the client's pace
                try:
                    await stream.send_all(b"x")
                except trio.BrokenResourceError:
                    closed = True
                    break
                with trio.move_on_after(0):
                    if await stream.receive_some(65536) == b"":
                        closed = True
                        break
    assert closed
    await still_served(port)


async def test_a_chunk_size_over_63_bits_is_refused(nursery: trio.Nursery) -> None:
    # h11 takes any size and would wait for that much body (a 504 from the proxy)
    port = await start(nursery)
    answer = await raw(
        port,
        b"POST /c HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"FFFFFFFFFFFFFFFFFFFF\r\nabcde\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    await still_served(port)


async def test_connect_is_refused_not_tunnelled(nursery: trio.Nursery) -> None:
    port = await start(nursery, fast=every_host)
    answer = await raw(port, b"CONNECT fast.test:443 HTTP/1.1\r\nHost: fast.test:443\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405 "), answer
    await still_served(port)


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"http://fast.b/p?q=1", b"/p"),
        (b"HTTPS://fast.b", b"/"),
        (b"http://fast.b?x", b"/"),
    ],
)
async def test_an_absolute_form_target_is_routed_by_its_own_authority(
    nursery: trio.Nursery, target: bytes, path: bytes
) -> None:
    # RFC 9112 3.2.2: Host is ignored; the express lane leaves such targets to h11
    seen = []

    async def host_echo(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append((dict(scope["headers"])[b"host"], scope["raw_path"]))
        await app(scope, receive, send)

    port = await start(nursery, host_echo)
    request = b"GET " + target + b" HTTP/1.1\r\nHost: fast.a\r\nConnection: close\r\n\r\n"
    answer = await raw(port, request)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert seen == [(b"fast.b", path)]


async def test_a_target_that_is_no_path_nor_url_is_refused(nursery: trio.Nursery) -> None:
    port = await start(nursery)
    answer = await raw(port, b"GET ftp://fast.test/x HTTP/1.1\r\nHost: fast.test\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer


async def test_an_app_that_gives_up_on_a_half_closed_client_gets_no_500(
    nursery: trio.Nursery,
) -> None:
    # The proxy takes a client's EOF for its leaving (as nginx does) and answers nothing;
    # "500 Internal Server Error" was written to it anyway.
    async def gives_up(scope, receive, send):  # type: ignore[no-untyped-def]
        while (await receive())["type"] != "http.disconnect":
            pass

    port = await start(nursery, gives_up, lane=False)  # h11's way
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(
            b"POST /p HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 3\r\n\r\nabc"
        )
        await stream.send_eof()
        with trio.fail_after(10):
            assert await stream.receive_some(65536) == b""
