"""Answers the proxy relays without h11 (``tenement/wire.py``) and the ones it leaves to
h11, from scripted tenants on real sockets, through ``serve_http`` as ``ten serve`` runs it.

Each tenant connection reads one request head at a time and plays the next step of its
script: a list of byte strings to write, with pauses (floats, in seconds) between them.
"""

from __future__ import annotations

import socket
from functools import partial

import h11
import httpx
import pytest
import trio

from tenement.proxy import Proxy
from tests.integration.proxy.proxy_support import (
    DOMAIN,
    Backends,
    Target,
    fallback_app,
    serve_proxy,
)

HOST = {"host": f"alice.notes.{DOMAIN}"}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

Step = list[bytes | float]


class ScriptedTenant:
    """Answers the n-th request on each connection with ``script[n]``; counts connections."""

    def __init__(self, *script: Step) -> None:
        self.script = script
        self.connections = 0
        self.heads: list[bytes] = []

    async def __call__(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        for step in self.script:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            self.heads.append(head)
            for part in step:
                if isinstance(part, float):
                    await trio.sleep(part)
                else:
                    await stream.send_all(part)
        await stream.aclose()


async def proxy_to(nursery: trio.Nursery, tenant: ScriptedTenant) -> tuple[Proxy, str]:
    listeners = await nursery.start(partial(trio.serve_tcp, tenant, 0, host="127.0.0.1"))
    backends = Backends()
    backends.add(Target("notes:alice", "notes", "alice", listeners[0].socket.getsockname()[1]))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    return server.proxy, server.url


async def test_a_whole_answer_reuses_the_connection_and_sends_valid_headers(nursery) -> None:
    tenant = ScriptedTenant([OK], [OK], [OK])
    proxy, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(3):
            response = await client.get("/a?b=1", headers=HOST)
            assert (response.status_code, response.text) == (200, "ok\n")
            assert response.headers["content-length"] == "3"
            assert "date" in response.headers
    assert tenant.connections == 1
    assert proxy.statistics().connections_reused == 2
    first = tenant.heads[0].split(b"\r\n")
    assert first[0] == b"GET /a?b=1 HTTP/1.1"
    assert b"x-forwarded-for: 127.0.0.1" in first
    assert f"x-forwarded-host: alice.notes.{DOMAIN}".encode() in first


async def test_head_and_body_in_two_writes_are_one_answer(nursery) -> None:
    head, body = OK.split(b"\r\n\r\n")
    tenant = ScriptedTenant([head + b"\r\n\r\n", 0.05, body], [OK])
    _, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(2):
            assert (await client.get("/", headers=HOST)).text == "ok\n"
    assert tenant.connections == 1  # the h11 path pools it as well


async def test_a_head_in_pieces_is_waited_for(nursery) -> None:
    tenant = ScriptedTenant([OK[:5], 0.02, OK[5:20], 0.02, OK[20:]])
    _, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/", headers=HOST)).text == "ok\n"


async def test_bytes_after_the_answer_retire_the_connection(nursery) -> None:
    tenant = ScriptedTenant([OK + b"HTTP/1.1 200 OK\r\n"], [OK])
    _, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(2):
            assert (await client.get("/", headers=HOST)).text == "ok\n"
    assert tenant.connections == 2


async def test_connection_close_from_the_tenant_retires_the_connection(nursery) -> None:
    closing = OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    tenant = ScriptedTenant([closing])
    _, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(2):
            response = await client.get("/", headers=HOST)
            assert response.text == "ok\n"
            assert "connection" not in response.headers  # hop-by-hop: not passed on
    assert tenant.connections == 2


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n"],
            "ok\n",
            id="chunked",
        ),
        pytest.param([b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n", OK], "ok\n", id="1xx"),
        pytest.param([b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"], "ok\n", id="http-1.0"),
    ],
)
async def test_answers_left_to_h11_still_arrive(nursery, answer: Step, text: str) -> None:
    tenant = ScriptedTenant(answer)
    _, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/", headers=HOST)
    assert (response.status_code, response.text) == (200, text)


async def test_a_head_request_gets_the_length_and_no_body(nursery) -> None:
    tenant = ScriptedTenant([b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"], [OK])
    _, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        head = await client.head("/", headers=HOST)
        assert (head.headers["content-length"], head.content) == ("42", b"")
        assert (await client.get("/", headers=HOST)).text == "ok\n"  # still in step
    assert tenant.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param([], id="hang-up"),
        pytest.param([b"this is not http\r\n\r\n"], id="garbage"),
        pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"], id="short-body"),
    ],
)
async def test_a_broken_answer_to_a_get_is_a_502_or_a_cut_connection(nursery, answer: Step) -> None:
    tenant = ScriptedTenant(answer)
    _, url = await proxy_to(nursery, tenant)
    async with httpx.AsyncClient(base_url=url) as client:
        if answer and answer[0].startswith(b"HTTP/1.1 200"):
            # the head went out: the client must see a truncated answer, not a short one
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/", headers=HOST)
        else:
            response = await client.get("/", headers=HOST)
            assert (response.status_code, response.text) == (502, "Bad gateway")


async def test_pipelined_requests_keep_their_order(nursery) -> None:
    """Answers written without h11 leave the next request's bytes for a fresh parser."""
    body = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n%d\n" % n for n in range(3)]
    tenant = ScriptedTenant([body[0]], [body[1]], [body[2]])
    _, url = await proxy_to(nursery, tenant)
    port = int(url.rsplit(":", 1)[1])
    request = f"GET / HTTP/1.1\r\nHost: {HOST['host']}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        await trio.to_thread.run_sync(sock.sendall, request * 3)
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        bodies = []
        while len(bodies) < 3:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await trio.to_thread.run_sync(sock.recv, 65536))
            elif isinstance(event, h11.Data):
                bodies.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                conn.start_next_cycle()
                conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
                conn.send(h11.EndOfMessage())
    assert bodies == [b"0\n", b"1\n", b"2\n"]
