"""A node's directory of other nodes' tenants (tenement/server/directory.py) on a real
PostgreSQL: it answers from memory, and no client can make it query per request."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa
import trio

from tenement.config import Fleet
from tenement.proxy.fleet import HERE
from tenement.server.directory import LOOKUP_SECONDS, MAX_LOOKUPS, FleetDirectory
from tenement.store import InstanceRecord, Store, open_store
from tenement.store.nodes import NodeIdentity


def join(store: Store, name: str, advertise: str) -> None:
    joined = store.join_node(
        NodeIdentity(
            name=name,
            advertise=advertise,
            host="h",
            data_dir=f"/d/{name}",
            version="0.3.0",
            cpus=1,
            memory_total=1,
            memory_available=1,
        ),
        10.0,
    )
    assert joined.taken_by is None


def record(iid: str) -> InstanceRecord:
    service, tenant = iid.split(":")
    return InstanceRecord(
        instance_id=iid, service=service, tenant=tenant, pid=1, start_ticks=1, pgid=1,
        port=30001, socket="", state="running", updated_at=time.time(),
    )  # fmt: skip


def directory(store: Store, name: str) -> FleetDirectory:
    return FleetDirectory(
        store, Fleet(node=name, advertise="10.0.0.1:8080", secret_file=Path("/x")), b"s"
    )


async def test_owners_come_from_memory_and_lookups_are_bounded(
    stores: dict[str, Store],
) -> None:
    a, b = stores["a"], stores["b"]
    join(a, "a", "10.0.0.11:8080")
    join(b, "b", "[fd00::12]:8081")
    b.save_instances([record("echo:bob")])
    seen_by_a = directory(a, "a")
    await seen_by_a.refresh()
    peer = await seen_by_a.owner("echo:bob")
    assert peer is not None and peer.node == "b" and peer.up
    assert (peer.address.path, peer.address.port) == ("fd00::12", 8081)
    assert seen_by_a.lookups == 0  # the map had it
    # the weighted pick's view: b's running instance, not a's own ones
    a.save_instances([record("echo:own")])
    await seen_by_a.refresh()
    [remote] = seen_by_a.remote_instances("echo")
    assert (remote.instance_id, remote.weight, remote.peer.node) == ("echo:bob", 100, "b")

    # asked again and again for a tenant nobody has: one lookup until the next look
    for _ in range(500):
        assert await seen_by_a.owner("echo:nobody") is None
    assert seen_by_a.lookups == 1
    # under ever new names: at most MAX_LOOKUPS between two looks
    for i in range(500):
        assert await seen_by_a.owner(f"echo:n{i}") is None
    assert seen_by_a.lookups == MAX_LOOKUPS

    # a tenant placed on b since the last look is found by its one lookup...
    await seen_by_a.refresh()
    b.save_instances([record("echo:new")])
    peer = await seen_by_a.owner("echo:new")
    assert peer is not None and peer.node == "b"
    # ...and a's own rows are a's, looked up or read with the others
    a.save_instances([record("echo:mine")])
    assert await seen_by_a.owner("echo:mine") is HERE
    await seen_by_a.refresh()
    assert await seen_by_a.owner("echo:mine") is HERE
    assert await seen_by_a.owner("echo:new") is not None


async def test_requests_that_arrive_during_a_lookup_wait_for_its_answer(
    stores: dict[str, Store],
) -> None:
    a, b = stores["a"], stores["b"]
    join(a, "a", "10.0.0.11:8080")
    join(b, "b", "10.0.0.12:8080")
    seen_by_a = directory(a, "a")
    await seen_by_a.refresh()
    # placed on b since a's last look: the first of many requests at once looks it up,
    # the others must not be told that nobody runs it (a 404 to their clients)
    b.save_instances([record("echo:fresh")])
    answers: list[object] = []

    async def ask() -> None:
        answers.append(await seen_by_a.owner("echo:fresh"))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(ask)
    assert [getattr(peer, "node", None) for peer in answers] == ["b"] * 20
    assert seen_by_a.lookups == 1


async def test_an_unchanged_fleet_costs_one_read_transaction_per_look(
    stores: dict[str, Store],
) -> None:
    """Scale (bench/fleet_scale.py): every node looks twice a second; an idle look is
    one transaction (the nodes and the rows' signature), not one per query."""
    a = stores["a"]
    join(a, "a", "10.0.0.11:8080")
    a.save_instances([record("echo:one")])
    seen_by_a = directory(a, "a")
    await seen_by_a.refresh()
    began: list[object] = []
    sa.event.listen(a.engine, "begin", began.append)
    for _ in range(3):
        await seen_by_a.refresh()
    assert len(began) == 3


async def test_a_tenant_of_a_node_that_joined_since_the_last_look_is_found(
    stores: dict[str, Store],
) -> None:
    a, b = stores["a"], stores["b"]
    join(a, "a", "10.0.0.11:8080")
    seen_by_a = directory(a, "a")
    await seen_by_a.refresh()  # b is not there yet (the nodes start together)
    join(b, "b", "10.0.0.12:8080")
    b.save_instances([record("echo:early")])
    # a request for b's tenant before a's next look: found, not a 404
    peer = await seen_by_a.owner("echo:early")
    assert peer is not None and peer is not HERE and peer.node == "b" and peer.up


async def test_a_node_declared_down_is_not_up(stores: dict[str, Store]) -> None:
    a, b = stores["a"], stores["b"]
    join(a, "a", "10.0.0.11:8080")
    join(b, "b", "10.0.0.12:8080")
    b.save_instances([record("echo:bob")])
    with a.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE nodes SET heartbeat_at = heartbeat_at - 60 WHERE name = 'b'")
    seen_by_a = directory(a, "a")
    await seen_by_a.refresh()
    peer = await seen_by_a.owner("echo:bob")
    assert peer is not None and not peer.up
    assert seen_by_a.remote_instances("echo") == []  # not picked by a weighted route


async def test_every_directory_sees_where_a_lost_nodes_tenants_went(
    stores: dict[str, Store],
) -> None:
    """A stopped tenant moved by failover is not started (it is woken where it went), so
    no later save tells the directories it moved: the move itself must."""
    a, b, c = stores["a"], stores["b"], stores["c"]
    join(a, "a", "10.0.0.11:8080")
    join(b, "b", "10.0.0.12:8080")
    join(c, "c", "10.0.0.13:8080")
    a.save_instances([attrs.evolve(record("echo:sleepy"), pid=None, state="stopped")])
    a.save_instances([record("db:kept")])
    seen_by_c = directory(c, "c")
    await seen_by_c.refresh()
    peer = await seen_by_c.owner("echo:sleepy")
    assert peer is not None and peer.node == "a"
    with a.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE nodes SET heartbeat_at = heartbeat_at - 60 WHERE name = 'a'")
    [lost] = b.declare_nodes_lost("b", 10.0, {"echo": None})
    [moved] = lost.moved
    assert lost.orphaned == ("db:kept",)
    await seen_by_c.refresh()
    owner = await seen_by_c.owner("echo:sleepy")
    assert owner is HERE if moved.node == "c" else (owner is not None and owner.node == "b")
    assert seen_by_c.lookups == 0


async def test_a_save_stamped_before_the_latest_row_is_seen_all_the_same(
    stores: dict[str, Store],
) -> None:
    """Each node stamps its rows with its own clock when it builds them, and the nodes'
    saves commit in any order: a weighted route's instance, started on b, was left out
    of c's directory (a 503 from c) until some other row changed."""
    a, b, c = stores["a"], stores["b"], stores["c"]
    for store, name in ((a, "a"), (b, "b"), (c, "c")):
        join(store, name, f"10.0.0.1{ord(name) - 96}:8080")
    now = float(int(time.time()))  # whole seconds: the sums below are exact
    b.save_instances([attrs.evolve(record("wt:y"), state="starting", updated_at=now - 2)])
    a.save_instances([attrs.evolve(record("wt:x"), updated_at=now)])  # the latest
    seen_by_c = directory(c, "c")
    await seen_by_c.refresh()
    assert [r.instance_id for r in seen_by_c.remote_instances("wt")] == ["wt:x"]
    # b's start saves y running, stamped before a's save, committed after it
    b.save_instances([attrs.evolve(record("wt:y"), updated_at=now - 1)])
    await seen_by_c.refresh()
    assert sorted(r.instance_id for r in seen_by_c.remote_instances("wt")) == ["wt:x", "wt:y"]

    # a change the signature cannot tell (two stamps moved by as much, either way):
    # found at once by a route that knows no instance, and by a look a while later
    b.save_instances([attrs.evolve(record("wt:y"), state="stopped", updated_at=now - 3)])
    b.save_instances([attrs.evolve(record("wt:z"), state="stopped", updated_at=now - 1)])
    a.save_instances([attrs.evolve(record("wt:x"), state="stopped", updated_at=now + 1)])
    await seen_by_c.refresh()
    assert seen_by_c.remote_instances("wt") == []
    b.save_instances(
        [
            attrs.evolve(record("wt:y"), updated_at=now - 2),
            attrs.evolve(record("wt:z"), state="stopped", updated_at=now - 2),
        ]
    )
    await seen_by_c.refresh()
    assert seen_by_c.remote_instances("wt") == []  # the signature did not move
    [found] = await seen_by_c.find_instances("wt")
    assert found.instance_id == "wt:y"
    # asked again at once for a service that runs nowhere: no read until the next look
    began: list[object] = []
    count = began.append
    sa.event.listen(c.engine, "begin", count)
    for _ in range(100):
        assert await seen_by_c.find_instances("nowhere") == []
    assert len(began) <= 1
    sa.event.remove(c.engine, "begin", count)
    # and the looks read the rows again every reload_seconds, whatever the signature
    b.save_instances([attrs.evolve(record("wt:y"), state="stopped", updated_at=now - 4)])
    await seen_by_c.refresh()
    assert seen_by_c.remote_instances("wt") == []
    b.save_instances(
        [
            attrs.evolve(record("wt:y"), updated_at=now - 2),
            attrs.evolve(record("wt:z"), state="stopped", updated_at=now - 4),
        ]
    )
    seen_by_c.reload_seconds = 1.0
    await seen_by_c.refresh()
    assert seen_by_c.remote_instances("wt") == []
    await trio.sleep(1.1)
    await seen_by_c.refresh()
    assert [r.instance_id for r in seen_by_c.remote_instances("wt")] == ["wt:y"]


async def test_a_move_is_remembered_and_a_forwarded_request_reads_the_row_again(
    stores: dict[str, Store],
) -> None:
    """Each serving process keeps its own map: a request forwarded by a process that has
    read a move may reach one that has not. It reads the row again (one read per such
    request), and a process that saw the tenant change node may forward it once more."""
    a, b, c = stores["a"], stores["b"], stores["c"]
    for store, name in ((a, "a"), (b, "b"), (c, "c")):
        join(store, name, f"10.0.0.1{ord(name) - 96}:8080")
    a.save_instances([record("echo:mover")])
    seen_by_c = directory(c, "c")
    await seen_by_c.refresh()
    assert not seen_by_c.moved_recently("echo:mover")
    [epoch] = [h.epoch for h in a.held_here() if h.instance_id == "echo:mover"]
    assert a.hand_instance_over("echo:mover", epoch, "c", False) == epoch + 1
    # before c's next look: the map still says a, the row says c
    assert getattr(await seen_by_c.owner("echo:mover"), "node", None) == "a"
    before = seen_by_c.lookups
    assert await seen_by_c.recheck("echo:mover") is HERE
    assert seen_by_c.lookups == before + 1
    assert seen_by_c.moved_recently("echo:mover")
    assert await seen_by_c.owner("echo:mover") is HERE  # the map has it now
    # a process that learns of it at a look remembers it the same way
    seen_again = directory(c, "c")
    await seen_again.refresh()
    assert not seen_again.moved_recently("echo:mover")
    assert c.hand_instance_over("echo:mover", epoch + 1, "b", False) == epoch + 2
    await seen_again.refresh()
    assert seen_again.moved_recently("echo:mover")
    assert getattr(await seen_again.owner("echo:mover"), "node", None) == "b"


async def test_a_peer_row_with_a_bad_address_is_skipped_not_fatal(
    stores: dict[str, Store], caplog: pytest.LogCaptureFixture
) -> None:
    # another host (an older or broken version, or a hostile one) wrote the row: the
    # directory runs for the life of the server, an exception there ends the server
    a, b = stores["a"], stores["b"]
    join(a, "a", "10.0.0.11:8080")
    join(b, "b", "<img src=x>")
    b.save_instances([record("echo:bob")])
    seen_by_a = directory(a, "a")
    await seen_by_a.refresh()
    await seen_by_a.refresh()
    assert seen_by_a.peer("b") is None
    assert await seen_by_a.owner("echo:bob") is None
    warnings = [r.getMessage() for r in caplog.records if "<img src=x>" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once, not at every look
    assert "node 'b'" in warnings[0]


async def test_a_database_that_does_not_answer_never_holds_a_request_for_long() -> None:
    """A partition, or a database server that hangs: a request for a tenant the map does
    not have is routed by the map after LOOKUP_SECONDS, however long the read would wait
    (it is left to end on its own), and so is every request that came meanwhile."""
    pytest.importorskip("psycopg")
    with socket.socket() as silent:  # accepts connections, answers nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        url = f"postgresql://ten@127.0.0.1:{port}/ten?connect_timeout=60"
        with open_store(url) as store:
            store.node = "a"
            seen = directory(store, "a")
            answers: list[object] = []

            async def ask(iid: str) -> None:
                answers.append(await seen.owner(iid))

            # far below the read's 60 s: the requests did not wait for it
            with trio.fail_after(LOOKUP_SECONDS + 8):
                async with trio.open_nursery() as nursery:
                    for i in range(10):
                        nursery.start_soon(ask, "echo:fresh")
                        nursery.start_soon(ask, f"echo:other{i}")
                # a node it has not seen yet: the nodes are read again, as long at most
                assert await seen.find_peer("b") is None
            assert answers == [None] * 20
            assert seen.lookups == 11
