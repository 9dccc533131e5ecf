"""Routing from any node: three nodes, each in its own network namespace with its own
address, one PostgreSQL in the hub; clients in the hub ask any node for any tenant.

The fleet is started once for the module (a node's start costs seconds); each test
uses its own tenants, and ends by checking that every node still runs and serves
another client. The test that loses a node runs last and starts it again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import trio
import trio_websocket

from tests.fleet.netfleet import PORT, NamespaceBackend, NetFleet, NetNode, namespaced_fleet

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def netfleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetFleet]:
    with namespaced_fleet(tmp_path_factory.mktemp("netfleet"), ["a", "b", "c"]) as fleet:
        trio.run(_spawn, fleet, fleet.nodes[2], "echo", "other")
        yield fleet


async def _spawn(fleet: NetFleet, node: NetNode, service: str, tenant: str) -> int:
    """Spawn ``service:tenant`` through ``node``'s API; its pid, from its row."""
    async with fleet.api(node) as api:
        answer = await api.post(
            "/api/instances/spawn", json={"process": service, "id": tenant, "node": node.name}
        )
        assert answer.status_code == 200, answer.text
    row = fleet.instance_row(f"{service}:{tenant}")
    assert row["node"] == node.name
    return int(row["pid"])


def host(tenant: str, service: str = "echo") -> str:
    return f"{tenant}.{service}.localhost"


async def get(
    fleet: NetFleet, node: NetNode, tenant: str, path: str = "/pid", **kw: object
) -> httpx.Response:
    async with fleet.client(node, host(tenant)) as client:
        return await client.get(path, **kw)  # type: ignore[arg-type]


async def assert_fleet_serves(fleet: NetFleet) -> None:
    """Every node still runs, and serves another client (c's tenant) through itself."""
    pid = int(fleet.instance_row("echo:other")["pid"])
    for node in fleet.nodes:
        assert node.alive, node.log[-3000:]
        answer = await get(fleet, node, "other")
        assert answer.status_code == 200 and int(answer.text) == pid, answer.text


async def test_a_tenant_on_a_is_answered_through_every_node(netfleet: NetFleet) -> None:
    a, b, c = netfleet.nodes
    pid = await _spawn(netfleet, a, "echo", "alice")
    for node in (a, b, c):
        answer = await get(netfleet, node, "alice")
        assert answer.status_code == 200, (node.name, answer.text)
        assert int(answer.text) == pid
    # the tenant sees the original Host, and never the fleet secret
    async with netfleet.client(b, host("alice")) as client:
        seen = (await client.get("/headers")).json()
    headers = {name: value for name, value in seen["headers"]}
    assert headers["host"] == host("alice")
    assert "x-tenement-hop" not in headers
    assert netfleet.secret not in str(seen)
    # a client's own "sent back" header (a stateless move's, node to node) is dropped
    # where a node forwards the request: it counts for nothing
    async with netfleet.client(b, host("alice")) as client:
        sent = await client.get("/headers", headers={"x-tenement-hop-back": "1"})
    assert sent.status_code == 200, sent.text
    assert "x-tenement-hop-back" not in {name for name, _ in sent.json()["headers"]}
    # the client's address once, as the first node saw it (the hub's), not the node's
    assert headers["x-forwarded-for"] == netfleet.network.hub_address
    await assert_fleet_serves(netfleet)


async def test_ten_megabytes_each_way_and_a_streamed_response_through_another_node(
    netfleet: NetFleet,
) -> None:
    a, _b, c = netfleet.nodes
    await _spawn(netfleet, a, "echo", "bulk")
    payload = bytes(range(256)) * (TEN_MB // 256)
    async with netfleet.client(c, host("bulk")) as client:
        counted = await client.post("/count", content=payload)
        assert counted.status_code == 200 and counted.json() == {"received": TEN_MB}
        down = await client.get("/bytes", params={"n": TEN_MB})
        assert down.status_code == 200 and len(down.content) == TEN_MB

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, TEN_MB, 1 << 20):
                yield payload[start : start + (1 << 20)]

        # a body of unknown length (chunked): the streamed way through both nodes
        streamed = await client.post("/count", content=chunks())
        assert streamed.status_code == 200 and streamed.json() == {"received": TEN_MB}
        # and an echo, the answer streaming back while the body still goes up
        echoed = await client.post("/echo", content=payload[: 1 << 18])
        assert echoed.content == payload[: 1 << 18]
        # the head goes on before the body exists: a node that held the answer back
        # would leave this waiting 30 s
        with trio.fail_after(15):
            async with client.stream("GET", "/head-first", params={"seconds": 30}) as head:
                assert head.status_code == 200
    await assert_fleet_serves(netfleet)


async def test_a_websocket_through_another_node(netfleet: NetFleet) -> None:
    a, b, _c = netfleet.nodes
    await _spawn(netfleet, a, "echo", "sockets")
    backend = NamespaceBackend(netfleet.network, netfleet.network.hub)
    stream = await backend.connect_stream(b.address, PORT)
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(nursery, stream, host("sockets"), "/ws")
        for message in ("hello", "x" * 100_000):
            await ws.send_message(message)
            with trio.fail_after(15):
                assert await ws.get_message() == message
        await ws.send_message(b"\x00\x01")
        with trio.fail_after(15):
            assert await ws.get_message() == b"\x00\x01"
        await ws.aclose()
    await assert_fleet_serves(netfleet)


async def test_a_sleeping_tenant_is_woken_by_its_owner_through_another_node(
    netfleet: NetFleet,
) -> None:
    a, _b, c = netfleet.nodes
    first = await _spawn(netfleet, a, "sleepy", "zed")
    with trio.fail_after(30):  # idle_timeout 2 s: a stops it
        while netfleet.instance_row("sleepy:zed")["pid"] is not None:
            await trio.sleep(0.1)
    async with netfleet.client(c, host("zed", "sleepy")) as client:
        answer = await client.get("/pid")
    assert answer.status_code == 200, answer.text
    row = netfleet.instance_row("sleepy:zed")
    assert row["node"] == "a"  # woken where it lives, not on c
    assert int(answer.text) == row["pid"] != first
    await assert_fleet_serves(netfleet)


async def test_a_weighted_route_picks_among_the_instances_of_every_node(
    netfleet: NetFleet,
) -> None:
    a, b, c = netfleet.nodes
    on_a = await _spawn(netfleet, a, "wt", "x")
    on_b = await _spawn(netfleet, b, "wt", "y")
    for node in (a, b, c):  # c runs none of them, a and b one each
        seen: set[int] = set()
        async with netfleet.client(node, "wt.localhost") as client:
            with trio.fail_after(60):
                while seen != {on_a, on_b}:
                    answer = await client.get("/pid")
                    assert answer.status_code == 200, (node.name, answer.text)
                    seen.add(int(answer.text))
    await assert_fleet_serves(netfleet)


async def test_a_hop_header_without_the_secret_is_refused(netfleet: NetFleet) -> None:
    a, b, _c = netfleet.nodes
    await _spawn(netfleet, a, "echo", "guarded")
    forged = [
        [("x-tenement-hop", "garbage")],
        [("x-tenement-hop", "")],
        [("x-tenement-hop", "x" * 6000)],
        [("x-tenement-hop", netfleet.secret[:-1])],
        [("X-Tenement-Hop", netfleet.secret + "x")],
        # the right secret twice, or beside a wrong one: a hop carries exactly one
        [("x-tenement-hop", netfleet.secret), ("x-tenement-hop", netfleet.secret)],
        [("x-tenement-hop", "nope"), ("x-tenement-hop", netfleet.secret)],
    ]
    for node in (a, b):  # the owner itself, and a node that would forward
        for headers in forged:
            async with netfleet.client(node, host("guarded")) as client:
                answer = await client.get("/pid", headers=headers)
            assert answer.status_code == 403, (node.name, headers[0][1][:20], answer.text)
            assert "without the fleet secret" in answer.text
    # the express lane (a whole request) and the streamed one refuse alike
    async with netfleet.client(b, host("guarded")) as client:
        answer = await client.post(
            "/count", content=b"x" * 100_000, headers={"x-tenement-hop": "forged"}
        )
    assert answer.status_code == 403
    assert "hop header without the fleet secret" in b.log
    await assert_fleet_serves(netfleet)


async def test_a_second_hop_is_a_loop_answered_508(netfleet: NetFleet) -> None:
    """A request that carries a valid hop (as one from a node does) to a node that does
    not run the tenant is never forwarded again."""
    a, b, _c = netfleet.nodes
    await _spawn(netfleet, a, "echo", "looped")
    async with netfleet.client(b, host("looped")) as client:
        answer = await client.get("/pid", headers={"x-tenement-hop": netfleet.secret})
    assert answer.status_code == 508, answer.text
    assert "Loop detected" in answer.text and "fleet node a runs it" in answer.text
    # one a node sent back (a stateless move's new node, while its copy starts) is
    # routed as the node's own: forwarded once more, to the owner, which serves it
    back = {"x-tenement-hop": netfleet.secret, "x-tenement-hop-back": "1"}
    async with netfleet.client(b, host("looped")) as client:
        answer = await client.get("/pid", headers=back)
    assert answer.status_code == 200, answer.text
    assert int(answer.text) == int(netfleet.instance_row("echo:looped")["pid"])
    # the owner serves a valid hop itself
    async with netfleet.client(a, host("looped")) as client:
        answer = await client.get("/pid", headers={"x-tenement-hop": netfleet.secret})
    assert answer.status_code == 200
    await assert_fleet_serves(netfleet)


async def test_an_owner_that_is_down_is_a_503_with_retry_after(netfleet: NetFleet) -> None:
    a, b, c = netfleet.nodes
    await _spawn(netfleet, a, "echo", "lost")
    a.kill()
    try:
        for node in (b, c):
            answer = await get(netfleet, node, "lost")
            assert answer.status_code == 503, answer.text
            assert "echo:lost runs on fleet node a" in answer.text
            assert int(answer.headers["retry-after"]) >= 1
            # other clients are served meanwhile
            assert (await get(netfleet, node, "other")).status_code == 200
        # once declared down, the answer says so at once
        with trio.fail_after(30):
            while True:
                answer = await get(netfleet, b, "lost")
                assert answer.status_code == 503
                if "which is down" in answer.text:
                    break
                await trio.sleep(0.2)
    finally:
        a.spawn_server()
        await a.wait_healthy()
    with trio.fail_after(30):  # back: b's directory sees a up again
        while (await get(netfleet, b, "lost")).status_code != 200:
            await trio.sleep(0.2)
    await assert_fleet_serves(netfleet)
