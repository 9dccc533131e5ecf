"""The proxy under hypercorn, in front of real tenant processes."""

from __future__ import annotations

import json
import random
from functools import partial

import httpx
import pytest
import trio

from tenement.config import Service
from tenement.proxy import Proxy
from tests.integration.proxy.proxy_support import (
    DOMAIN,
    Backends,
    Target,
    fallback_app,
    serve_proxy,
    start_backend,
    stop_backend,
    target_for,
)


def host(name: str) -> dict[str, str]:
    return {"host": f"{name}.{DOMAIN}"}


async def start(nursery, backends: Backends, **kwargs):
    server = await serve_proxy(
        nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app, **kwargs)
    )
    return server, httpx.AsyncClient(base_url=server.url, timeout=30)


@pytest.mark.parametrize(
    ("host_header", "status", "body"),
    [
        ("alice.notes.example.test", 200, "ok from a"),
        ("ALICE.Notes.example.test:9999", 200, "ok from a"),
        ("notes.example.test", 200, "ok from b"),
        ("example.test", 200, "fallback"),
        ("127.0.0.1", 200, "fallback"),
        ("a.b.c.example.test", 404, "Not found"),
        ("nobody.notes.example.test", 404, "Not found"),
        ("alice.unknown.example.test", 404, "Not found"),
        ("unknown.example.test", 404, "Not found"),
        ("x..example.test", 400, "Bad request"),
        ("a%2e.example.test", 400, "Bad request"),
        ("x" * 300 + ".example.test", 400, "Bad request"),
    ],
    ids=[
        "direct",
        "direct-uppercase-port",
        "weighted",
        "bare-domain",
        "ip",
        "a.b.c.domain",
        "unknown-tenant",
        "unknown-service-direct",
        "unknown-service-weighted",
        "empty-label",
        "bad-chars",
        "very-long",
    ],
)
async def test_routing(nursery, backends_pool, host_header, status, body) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"], weight=0))
    backends.add(target_for("notes", "bob", backends_pool["b"]))
    _, client = await start(nursery, backends)
    async with client:
        response = await client.get("/", headers={"host": host_header})
    assert (response.status_code, response.text) == (status, body)
    if status >= 400:
        assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_path_query_method_and_body_pass_through(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    _, client = await start(nursery, backends)
    async with client:
        response = await client.request(
            "PATCH", "/headers/%7Efoo?x=1&y=%20", content=b"payload", headers=host("alice.notes")
        )
    seen = response.json()
    assert seen["method"] == "PATCH"
    assert seen["target"] == "/headers/%7Efoo?x=1&y=%20"
    assert seen["body"] == "payload"


async def test_forwarded_headers_and_hop_by_hop(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    _, client = await start(nursery, backends)
    async with client:
        response = await client.get(
            "/headers",
            headers={
                **host("alice.notes"),
                "connection": "keep-alive, x-secret",
                "x-secret": "s",
                "keep-alive": "timeout=3",
                "proxy-authorization": "Basic eA==",
                "te": "trailers",
                "x-forwarded-for": "203.0.113.7",
                "authorization": "Bearer kept",
            },
        )
        hop = await client.get("/hop", headers=host("alice.notes"))
    seen = {}
    for name, value in response.json()["headers"]:
        seen.setdefault(name, []).append(value)
    for dropped in ("x-secret", "keep-alive", "proxy-authorization", "te", "connection"):
        assert dropped not in seen
    assert seen["host"] == [f"alice.notes.{DOMAIN}"]
    assert seen["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [f"alice.notes.{DOMAIN}"]
    assert seen["authorization"] == ["Bearer kept"]
    assert hop.text == "hop"
    assert "x-drop-me" not in hop.headers
    assert "keep-alive" not in hop.headers
    assert hop.headers["x-keep"] == "1"


async def test_keep_alive_reuses_tenant_connections(nursery, fresh_backend) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", fresh_backend))
    server, client = await start(nursery, backends)
    async with client:
        for _ in range(20):
            assert (await client.get("/", headers=host("alice.notes"))).status_code == 200
        seen = (await client.get("/connections", headers=host("alice.notes"))).json()
    assert seen["connections"] < 21
    assert seen["connections"] <= 2
    assert server.proxy.statistics().connections_reused >= 19


async def test_tenant_closing_its_connection_is_not_reused(nursery, fresh_backend) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", fresh_backend))
    server, client = await start(nursery, backends)
    async with client:
        for _ in range(5):
            response = await client.get("/close", headers=host("alice.notes"))
            assert response.text == "closing"
        seen = (await client.get("/connections", headers=host("alice.notes"))).json()
    assert seen["connections"] == 6
    assert server.proxy.statistics().connections_reused == 0


async def test_stale_pooled_connection_is_retried_once(nursery) -> None:
    """The tenant restarts on the same port: the pooled connection is dead, the GET
    still succeeds on a new one."""
    backend = start_backend("127.0.0.1:0", "first")
    backends = Backends()
    backends.add(target_for("notes", "alice", backend))
    _, client = await start(nursery, backends)
    async with client:
        assert (await client.get("/", headers=host("alice.notes"))).text == "ok from first"
        stop_backend(backend)
        second = start_backend(f"127.0.0.1:{backend.port}", "second")
        try:
            response = await client.get("/", headers=host("alice.notes"))
        finally:
            stop_backend(second)
    assert response.text == "ok from second"


async def test_unix_socket_tenant(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["unix"]))
    _, client = await start(nursery, backends)
    async with client:
        response = await client.get("/", headers=host("alice.notes"))
    assert response.text == "ok from unix"


async def test_weighted_route_spreads_by_weight(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "a", backends_pool["a"], weight=25))
    backends.add(target_for("notes", "b", backends_pool["b"], weight=75))
    backends.add(target_for("notes", "c", backends_pool["c"], weight=0))
    _, client = await start(nursery, backends, rng=random.Random(42))
    async with client:
        names = [
            (await client.get("/", headers=host("notes"))).headers["x-backend"] for _ in range(200)
        ]
    assert "c" not in names
    assert 25 <= names.count("a") <= 75  # expected 50
    assert names.count("a") + names.count("b") == 200


async def test_weighted_dead_pick_falls_back_to_a_live_one(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "dead", None))
    backends.add(target_for("notes", "b", backends_pool["b"]))
    _, client = await start(nursery, backends)
    async with client:
        for _ in range(10):
            response = await client.get("/", headers=host("notes"))
            assert response.text == "ok from b"


async def test_weight_zero_is_never_a_fallback(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "dead", None))
    backends.add(target_for("notes", "drained", backends_pool["a"], weight=0))
    server, client = await start(nursery, backends)
    async with client:
        response = await client.get("/", headers=host("notes"))
    assert (response.status_code, response.text) == (503, "Service temporarily unavailable")
    assert server.proxy.statistics().responses_by_status == ((503, 1),)


async def test_weighted_with_no_instance_is_503(nursery) -> None:
    backends = Backends({"notes": Service(name="notes", command="x")})
    _, client = await start(nursery, backends)
    async with client:
        response = await client.get("/", headers=host("notes"))
    assert (response.status_code, response.text) == (503, "Service temporarily unavailable")


async def test_slow_tenant_gives_504(nursery, backends_pool) -> None:
    backends = Backends({"notes": Service(name="notes", command="x", request_timeout=0.3)})
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    server, client = await start(nursery, backends)
    async with client:
        response = await client.get("/slow?seconds=5", headers=host("alice.notes"))
    assert (response.status_code, response.text) == (504, "Gateway timeout")
    (series,) = server.proxy.statistics().series
    assert series.requests_total == 1


async def _broken_tenant(stream: trio.SocketStream) -> None:
    """Reads the request, answers garbage, hangs up."""
    await stream.receive_some(65536)
    await stream.send_all(b"this is not http\r\n\r\n")
    await stream.aclose()


async def _hangup_tenant(stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    await stream.aclose()


@pytest.mark.parametrize("handler", [_broken_tenant, _hangup_tenant], ids=["garbage", "hangup"])
async def test_broken_tenant_gives_502(nursery, handler) -> None:
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    backends = Backends()
    backends.add(Target("notes:alice", "notes", "alice", port))
    _, client = await start(nursery, backends)
    async with client:
        response = await client.post("/", content=b"x", headers=host("alice.notes"))
    assert (response.status_code, response.text) == (502, "Bad gateway")


async def test_truncated_body_breaks_the_client_connection(nursery) -> None:
    """A tenant that dies mid-body must not look like a complete short response."""

    async def truncating(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 1000)
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, truncating, 0, host="127.0.0.1"))
    backends = Backends()
    backends.add(Target("notes:alice", "notes", "alice", listeners[0].socket.getsockname()[1]))
    _, client = await start(nursery, backends)
    async with client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/", headers=host("alice.notes"))


async def test_wake_starts_a_real_tenant(nursery) -> None:
    backends = Backends()
    backends.services["notes"] = Service(name="notes", command="x")
    backends.wakeable.add(("notes", "alice"))
    started = []

    async def wake(service: str, tenant: str) -> Target:
        backend = await trio.to_thread.run_sync(start_backend, "127.0.0.1:0", "woken")
        started.append(backend)
        return target_for(service, tenant, backend)

    backends.wake_with = wake
    _, client = await start(nursery, backends)
    try:
        async with client:
            first = await client.get("/", headers=host("alice.notes"))
            second = await client.get("/", headers=host("alice.notes"))
            stranger = await client.get("/", headers=host("mallory.notes"))
    finally:
        for backend in started:
            stop_backend(backend)
    assert first.text == second.text == "ok from woken"
    assert backends.wakes == 1
    assert stranger.status_code == 404


async def test_failed_wake_gives_503(nursery) -> None:
    backends = Backends({"notes": Service(name="notes", command="x")})
    backends.wakeable.add(("notes", "alice"))
    _, client = await start(nursery, backends)
    async with client:
        response = await client.get("/", headers=host("alice.notes"))
    assert (response.status_code, response.text) == (503, "Service temporarily unavailable")
    assert backends.wakes == 1


async def test_dead_direct_target_waits_for_the_restart(nursery, backends_pool) -> None:
    """The instance is dead; the supervisor brings it back on another port while the
    request waits (the reference's v0.2.2 retry)."""
    backends = Backends()
    backends.add(target_for("notes", "alice", None))
    server, client = await start(nursery, backends)

    async def restart_when_requested() -> None:
        # the proxy has found the dead port once it counted the request
        while server.proxy.statistics().requests_total == 0:
            await trio.sleep(0.01)
        backends.add(target_for("notes", "alice", backends_pool["c"]))

    nursery.start_soon(restart_when_requested)
    async with client:
        response = await client.get("/", headers=host("alice.notes"))
    assert response.text == "ok from c"


async def test_active_connections_are_counted(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    _, client = await start(nursery, backends)
    async with client, trio.open_nursery() as inner:
        for _ in range(5):
            inner.start_soon(partial(client.get, "/slow?seconds=0.3", headers=host("alice.notes")))
    # The client has its responses a moment before each proxy task leaves its connection
    # count; every count must still come back to 0.
    with trio.fail_after(5):
        while backends.active["notes:alice"] != 0:
            await trio.sleep(0.01)
    assert backends.max_active["notes:alice"] >= 2


async def test_metrics_count_per_instance(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    backends.add(target_for("notes", "bob", backends_pool["b"]))
    server, client = await start(nursery, backends)
    async with client:
        for _ in range(3):
            await client.get("/", headers=host("alice.notes"))
        await client.get("/", headers=host("bob.notes"))
        await client.get("/", headers=host("nobody.notes"))
    stats = server.proxy.statistics()
    counts = {s.instance_id: s.requests_total for s in stats.series}
    assert counts == {"notes:alice": 3, "notes:bob": 1}
    assert stats.requests_total == 5
    assert stats.responses_by_status == ((404, 1),)
    assert json.dumps([s.p99_ms for s in stats.series])


async def test_head_and_empty_post(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    _, client = await start(nursery, backends)
    async with client:
        head = await client.head("/bytes?n=5000", headers=host("alice.notes"))
        post = await client.post("/headers", headers=host("alice.notes"))
        after = await client.get("/", headers=host("alice.notes"))
    assert head.status_code == 200
    assert head.headers["content-length"] == "5000"
    assert head.content == b""
    assert ["content-length", "0"] in post.json()["headers"]
    assert after.text == "ok from a"


async def test_connection_close_request_gets_its_eof(nursery, fresh_backend) -> None:
    """A client that asks for ``Connection: close`` and reads to EOF gets the EOF, also
    when the body arrives after the head (the relay then watches for a disconnect, and
    that watch must not abort the server's closing of the connection)."""
    backends = Backends()
    backends.add(target_for("notes", "alice", fresh_backend))
    server, client = await start(nursery, backends)
    await client.aclose()
    port = int(server.url.rsplit(":", 1)[1])
    request = (
        f"GET /bytes?n=200000 HTTP/1.1\r\nHost: alice.notes.{DOMAIN}\r\nConnection: close\r\n\r\n"
    ).encode()
    for _ in range(20):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(request)
            received = 0
            with trio.fail_after(10):
                while chunk := await stream.receive_some(65536):
                    received += len(chunk)
        assert received > 200000
