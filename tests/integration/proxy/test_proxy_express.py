"""The express lane (``h1.py`` + ``Proxy.express``): whole requests for a running
tenant are read without h11 and forwarded without an ASGI scope; everything else takes
the ASGI way in. Both must look the same to the client and to the tenant."""

from __future__ import annotations

import ssl
from functools import partial

import trio

from tenement.config import Service
from tenement.proxy import Proxy
from tenement.tls.handshake import ChooseContext
from tests.integration.proxy.proxy_support import (
    DOMAIN,
    Backends,
    Target,
    fallback_app,
    serve_proxy,
)
from tests.integration.proxy.test_proxy_plain import OK, ScriptedTenant

HOST = f"alice.notes.{DOMAIN}".encode()


class CountingProxy(Proxy):
    """Counts the requests the express lane took and the ones it left."""

    taken = 0
    left = 0

    async def express(self, request, client_host, receive, send, send_whole, secure=False) -> bool:  # type: ignore[no-untyped-def]
        served = await super().express(request, client_host, receive, send, send_whole, secure)
        if served:
            self.taken += 1
        else:
            self.left += 1
        return served


async def start(
    nursery: trio.Nursery,
    tenant: ScriptedTenant,
    *,
    request_timeout: float = 30.0,
    tls: ChooseContext | None = None,
) -> tuple[CountingProxy, int]:
    listeners = await nursery.start(partial(trio.serve_tcp, tenant, 0, host="127.0.0.1"))
    backends = Backends()
    backends.services["notes"] = Service(
        name="notes", command="unused", request_timeout=request_timeout
    )
    backends.add(Target("notes:alice", "notes", "alice", listeners[0].socket.getsockname()[1]))
    server = await serve_proxy(
        nursery, CountingProxy(backends, domain=DOMAIN, fallback=fallback_app), tls
    )
    return server.proxy, server.port  # type: ignore[return-value]


async def exchange(port: int, data: bytes, answers: int) -> list[bytes]:
    """Send ``data`` on one connection; the raw bytes of ``answers`` answers (each framed
    by Content-Length, as the scripted tenant's are)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        buffer, out = b"", []
        while len(out) < answers:
            while b"\r\n\r\n" not in buffer:
                chunk = await stream.receive_some(65536)
                assert chunk, f"connection closed after {len(out)} answers"
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(rest) < length:
                rest += await stream.receive_some(65536)
            out.append(head + b"\r\n\r\n" + rest[:length])
            buffer = rest[length:]
        return out


def without_date(answer: bytes) -> bytes:
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(b"date:"))


async def test_both_lanes_send_the_tenant_and_the_client_the_same_bytes(nursery) -> None:
    tenant = ScriptedTenant([OK], [OK])
    proxy, port = await start(nursery, tenant)
    request = (
        b"GET /a?b=1 HTTP/1.1\r\nHost: %s\r\nUser-Agent: t\r\nConnection: keep-alive\r\n\r\n" % HOST
    )
    first, second = await exchange(port, request + request, 2)
    # the first opened the tenant connection the ASGI way; the second found it pooled
    assert (proxy.left, proxy.taken) == (1, 1)
    assert tenant.connections == 1
    assert tenant.heads[0] == tenant.heads[1]
    assert without_date(first) == without_date(second)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\nok\n")
    assert b"x-forwarded-for: 127.0.0.1" in tenant.heads[1].split(b"\r\n")


async def test_the_express_lane_serves_over_tls_and_says_https(nursery, tmp_path) -> None:
    """Over TLS the second request (its tenant connection pooled) takes the express lane
    too, and the tenant is told the client's scheme."""
    from tenement.tls.certs import server_context
    from tests.pebble import make_ca

    ca, cert, key = make_ca(tmp_path)
    context = server_context()
    context.load_cert_chain(cert, key)

    async def choose(hello):  # type: ignore[no-untyped-def]
        return context

    tenant = ScriptedTenant([OK], [OK])
    proxy, port = await start(nursery, tenant, tls=choose)
    request = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    client = ssl.create_default_context(cafile=str(ca))
    stream = trio.SSLStream(
        await trio.open_tcp_stream("127.0.0.1", port), client, server_hostname="localhost"
    )
    async with stream:
        await stream.send_all(request)
        answers = b""
        while answers.count(b"ok\n") < 1:
            answers += await stream.receive_some(65536)
        await stream.send_all(request)
        while answers.count(b"ok\n") < 2:
            answers += await stream.receive_some(65536)
    assert (proxy.left, proxy.taken) == (1, 1)
    for head in tenant.heads:
        assert b"x-forwarded-proto: https" in head.split(b"\r\n")


async def test_pipelined_requests_are_answered_in_order(nursery) -> None:
    bodies = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n%d\n" % i for i in range(5)]
    tenant = ScriptedTenant(*([body] for body in bodies))
    proxy, port = await start(nursery, tenant)
    request = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    answers = await exchange(port, request * 5, 5)
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"%d\n" % i for i in range(5)]
    assert proxy.taken == 4


async def test_a_body_sent_in_pieces_is_waited_for(nursery) -> None:
    tenant = ScriptedTenant([OK], [OK])
    proxy, port = await start(nursery, tenant)
    warm = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    post = b"POST /p HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n\r\nhello" % HOST
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(warm)
        assert (await stream.receive_some(65536)).endswith(b"ok\n")
        await stream.send_all(post[:-3])
        await trio.sleep(0.05)
        await stream.send_all(post[-3:])
        assert (await stream.receive_some(65536)).endswith(b"ok\n")
    assert proxy.taken == 1
    assert tenant.heads[1].startswith(b"POST /p HTTP/1.1\r\n")


async def test_an_answer_h11_must_relay_arrives_and_the_connection_goes_on(nursery) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n"
    tenant = ScriptedTenant([OK], [chunked], [OK])
    proxy, port = await start(nursery, tenant)
    request = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        seen = b""
        await stream.send_all(request * 3)
        while seen.count(b"ok\n") < 3:
            data = await stream.receive_some(65536)
            assert data, seen
            seen += data
    assert proxy.taken == 2
    assert tenant.connections == 1


async def test_a_tenant_failing_gets_a_502_from_the_express_lane(nursery) -> None:
    tenant = ScriptedTenant([OK], [])  # hangs up on the second request
    proxy, port = await start(nursery, tenant)
    get = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    # not idempotent: not sent again on a new connection (a GET would be, and succeed)
    post = b"POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n" % HOST
    _, failed = await exchange(port, get + post, 2)
    assert proxy.taken == 1
    assert failed.startswith(b"HTTP/1.1 502 ")
    assert failed.endswith(b"Bad gateway")


async def test_a_slow_tenant_gets_a_504_from_the_express_lane(nursery) -> None:
    tenant = ScriptedTenant([OK], [5.0, OK])  # the second answer comes too late
    proxy, port = await start(nursery, tenant, request_timeout=0.3)
    get = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    began = trio.current_time()
    _, late, third = await exchange(port, get * 3, 3)
    assert proxy.taken == 1
    assert late.startswith(b"HTTP/1.1 504 ") and late.endswith(b"Gateway timeout")
    assert trio.current_time() - began < 5.0  # answered at its deadline, not the tenant's
    # not sent again though idempotent; the next request had a new connection
    assert third.endswith(b"ok\n")
    assert tenant.connections == 2
    assert len(tenant.heads) == 3


async def test_requests_the_lane_does_not_take_go_the_asgi_way(nursery) -> None:
    tenant = ScriptedTenant([OK], [OK], [OK])
    proxy, port = await start(nursery, tenant)
    get = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    chunked = (
        b"POST / HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        % HOST
    )
    answers = await exchange(port, get + get + chunked, 3)
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert b"transfer-encoding: chunked" in tenant.heads[2]  # streamed on, as it came
    # the first GET opened the connection the ASGI way, the second took the lane; the
    # chunked POST never reached it
    assert (proxy.taken, proxy.left) == (1, 1)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % DOMAIN.encode())
        seen = b""
        while b"fallback" not in seen:
            data = await stream.receive_some(65536)
            assert data, seen
            seen += data
    assert (proxy.taken, proxy.left) == (1, 2)  # offered, and left to the API's app


async def test_a_request_sent_ahead_during_an_answer_h11_relays_is_kept(nursery) -> None:
    # The answer is streamed by h11 (chunked, in two pieces): while it is relayed the
    # server watches the client and reads ahead what it sends; that must be served next.
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    tenant = ScriptedTenant([OK], [head, 0.2, b"3\r\nok\n\r\n0\r\n\r\n"], [OK])
    proxy, port = await start(nursery, tenant)
    request = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)  # opens the tenant connection the ASGI way
        seen = b""
        while seen.count(b"ok\n") < 1:
            seen += await stream.receive_some(65536)
        await stream.send_all(request)  # the express lane; its answer is chunked
        await trio.sleep(0.05)  # the answer has begun: send the next request ahead
        await stream.send_all(request)
        with trio.fail_after(5):
            while seen.count(b"ok\n") < 3:
                data = await stream.receive_some(65536)
                assert data, seen
                seen += data
    assert proxy.taken == 2
