"""The fleet's decisions in the database, raced for real: several stores (each its own
connection pool, as separate nodes have) on one PostgreSQL database."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from tenement.store import InstanceRecord, Store, is_at_head, migrate_to_head, open_store
from tenement.store.nodes import DRAINING, RESTART_GRACE_S, RESTARTING, NodeIdentity
from tests.postgresql import Cluster

T = TypeVar("T")


def identity(name: str, host: str = "host-1", data_dir: str = "/var/lib/t") -> NodeIdentity:
    return NodeIdentity(
        name=name, advertise=f"10.0.0.1:{8000 + ord(name[0])}", host=host, data_dir=data_dir,
        version="0.3.0", cpus=2, memory_total=8 << 30, memory_available=4 << 30,
    )  # fmt: skip


def silence(store: Store, name: str, seconds: float) -> None:
    """Move ``name``'s last heartbeat back by ``seconds`` (as if it had been silent)."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE nodes SET heartbeat_at = heartbeat_at - {seconds} WHERE name = '{name}'"
        )


def race(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_silent_node_is_declared_down_by_exactly_one_of_its_racing_peers(
    stores: dict[str, Store],
) -> None:
    for name, store in stores.items():
        assert store.join_node(identity(name), 3).taken_by is None
    for _ in range(15):
        silence(stores["a"], "a", 10)
        found = race(
            [lambda s=stores[p], p=p: s.declare_silent_nodes_down(p, 3) for p in "bc"]  # type: ignore[misc]
        )
        winners = [peer for peer, rows in zip("bc", found, strict=True) if rows]
        assert len(winners) == 1, found
        [row] = found["bc".index(winners[0])]
        assert (row.name, row.state, row.down_by) == ("a", "down", winners[0])
        assert row.silent_s >= 10
        # a beats again: up, and told who had declared it down
        was = stores["a"].node_heartbeat(identity("a"))
        assert was is not None and (was.state, was.down_by) == ("down", winners[0])
    rows = {row.name: row for row in stores["b"].list_nodes()}
    assert [rows[n].state for n in "abc"] == ["up", "up", "up"]
    assert rows["a"].down_by is None and rows["a"].instances == 0


def test_a_live_node_is_never_declared_down_and_its_clock_is_not_asked(
    stores: dict[str, Store],
) -> None:
    for name, store in stores.items():
        store.join_node(identity(name), 3)
    assert stores["b"].declare_silent_nodes_down("b", 3) == []
    with stores["a"].engine.connect() as conn:
        database_now = conn.exec_driver_sql("SELECT extract(epoch from now())").scalar()
    row = {row.name: row for row in stores["a"].list_nodes()}["a"]
    # the heartbeat is the database's time, whatever this process's clock says
    assert abs(row.heartbeat_at - float(database_now)) < 60
    assert 0 <= row.silent_s < 60


def test_a_restarting_node_is_given_its_grace_and_then_declared_down(
    stores: dict[str, Store],
) -> None:
    for name, store in stores.items():
        assert store.join_node(identity(name), 3).taken_by is None
    # a's server leaves its tenants to the next one: silent past node_timeout, not down
    stores["a"].node_heartbeat(identity("a"), RESTARTING)
    silence(stores["a"], "a", 10)
    assert stores["b"].declare_silent_nodes_down("b", 3) == []
    [row] = [row for row in stores["b"].list_nodes() if row.name == "a"]
    assert row.state == RESTARTING and row.alive(3)
    # nor may another host take its name meanwhile
    assert stores["c"].join_node(identity("a", host="host-2"), 3).taken_by is not None
    # past the grace: down, as a silent node is
    silence(stores["a"], "a", RESTART_GRACE_S)
    [down] = stores["b"].declare_silent_nodes_down("b", 3)
    assert (down.name, down.state, down.down_by) == ("a", "down", "b")
    assert not down.alive(3)
    # the next server of the same node joins it up, and keeps its start time
    stores["a"].node_heartbeat(identity("a"), RESTARTING)
    started = {row.name: row.started_at for row in stores["b"].list_nodes()}["a"]
    assert stores["a"].join_node(identity("a"), 3).was is not None
    [back] = [row for row in stores["b"].list_nodes() if row.name == "a"]
    assert (back.state, back.started_at) == ("up", started)


def test_a_name_is_refused_to_another_host_while_its_node_lives(stores: dict[str, Store]) -> None:
    a = stores["a"]
    assert a.join_node(identity("a"), 3).taken_by is None
    taken = stores["b"].join_node(identity("a", host="host-2"), 3).taken_by
    assert taken is not None and (taken.host, taken.advertise) == ("host-1", "10.0.0.1:8097")
    # the same host and data dir is the same node (a restart, a standby): let in
    again = stores["c"].join_node(identity("a"), 3)
    assert again.taken_by is None and again.was is not None and again.was.state == "up"
    # another data dir on the same host is another node
    assert stores["c"].join_node(identity("a", data_dir="/srv/t2"), 3).taken_by is not None
    # silent past the timeout, the name may be taken over (the node was replaced)
    silence(a, "a", 10)
    moved = stores["b"].join_node(identity("a", host="host-2"), 3)
    assert moved.taken_by is None and moved.was is not None and moved.was.host == "host-1"
    assert a.node_heartbeat(identity("a")) is None  # not host-1's row any more


def test_instances_leases_and_servers_are_kept_to_their_node(stores: dict[str, Store]) -> None:
    a, b = stores["a"], stores["b"]
    now = time.time()

    def record(iid: str, pid: int) -> InstanceRecord:
        service, tenant = iid.split(":")
        return InstanceRecord(
            instance_id=iid, service=service, tenant=tenant, pid=pid, start_ticks=1,
            pgid=pid, port=30000 + pid, socket="", state="running", updated_at=now,
        )  # fmt: skip

    a.save_instances([record("echo:alice", 1)])
    b.save_instances([record("echo:bob", 2)])
    assert [r.instance_id for r in a.load_instances()] == ["echo:alice"]
    assert [r.instance_id for r in b.load_instances()] == ["echo:bob"]
    assert a.instances_signature()[0] == 1
    # b saving a's tenant changes nothing of a's row; b deleting it deletes nothing
    b.save_instance(record("echo:alice", 99))
    kept = a.get_instance("echo:alice")
    assert kept is not None and (kept.pid, kept.node) == (1, "a")
    assert not b.delete_instance("echo:alice")
    assert b.claim_instance("echo:alice", "echo", "alice", now) == "a"
    assert a.claim_instance("echo:alice", "echo", "alice", now) is None
    assert a.get_instance("echo:alice") == kept
    # both nodes hold their own supervisor lease at once
    assert a.try_acquire_lease("host:1:a", 30, now) and b.try_acquire_lease("host:2:b", 30, now)
    assert a.lease_holder(now) == "host:1:a" and b.lease_holder(now) == "host:2:b"
    assert a.lease_holders(now) == ["host:1:a", "host:2:b"]
    # a leader hands over only to a server of its own node
    a.register_server("host:1:a", 1, "unix:/a", now)
    b.register_server("host:2:b", 2, "unix:/b", now)
    assert [s.server_id for s in a.live_servers(now, 10)] == ["host:1:a"]


def test_rows_from_before_the_fleet_go_to_the_one_node_that_claims_them_first(
    stores: dict[str, Store],
) -> None:
    single = stores["c"]
    single.node = None  # as a single host wrote them
    now = time.time()
    single.save_instances(
        [
            InstanceRecord(
                instance_id=f"echo:t{i}",
                service="echo",
                tenant=f"t{i}",
                pid=None,
                start_ticks=None,
                pgid=None,
                port=None,
                socket="",
                state="stopped",
                updated_at=now,
            )
            for i in range(50)
        ]
    )
    claimed = race([stores["a"].claim_unowned_instances, stores["b"].claim_unowned_instances])
    assert sorted(claimed) == [0, 50]
    owner = "a" if claimed[0] else "b"
    assert len(stores[owner].load_instances()) == 50
    with single.engine.connect() as conn:
        nodes = {n for (n,) in conn.exec_driver_sql("SELECT DISTINCT node FROM instances")}
    assert nodes == {owner}


def test_two_nodes_starting_one_tenant_at_once_cannot_both_own_it(
    stores: dict[str, Store],
) -> None:
    """The same [instances] on every host: each node claims each tenant before it starts
    it; exactly one node may."""
    for round_ in range(20):
        tenant = f"t{round_}"
        iid = f"echo:{tenant}"
        owners = race(
            [functools.partial(stores[n].claim_instance, iid, "echo", tenant, 0.0) for n in "abc"]
        )
        winners = [n for n, owner in zip("abc", owners, strict=True) if owner is None]
        assert len(winners) == 1, owners
        assert {owner for owner in owners if owner is not None} == set(winners)
        row = stores["a"].get_instance(iid)
        assert row is not None and (row.node, row.state) == (winners[0], "stopped")


def test_nodes_starting_at_once_on_a_new_database_migrate_it_once(pg_cluster: Cluster) -> None:
    """Two servers (a fleet's nodes) migrating one empty PostgreSQL database at once:
    one creates the schema, the other waits and finds it done."""
    url = pg_cluster.socket_url(pg_cluster.new_database())
    with open_store(url) as first, open_store(url) as second:
        reports = race(
            [
                functools.partial(migrate_to_head, first, backup_dir=None),
                functools.partial(migrate_to_head, second, backup_dir=None),
            ]
        )
        assert sorted(report.created for report in reports) == [False, True]
        assert is_at_head(first) and is_at_head(second)


def _running(iid: str, pid: int) -> InstanceRecord:
    service, tenant = iid.split(":")
    return InstanceRecord(
        instance_id=iid, service=service, tenant=tenant, pid=pid, start_ticks=1, pgid=pid,
        port=30000 + pid, socket="", state="running", updated_at=time.time(),
    )  # fmt: skip


def test_a_lost_nodes_stateless_tenants_are_re_placed_once_and_the_rest_orphaned(
    stores: dict[str, Store],
) -> None:
    """The peer that wins the declaration re-places ``web`` (failover) on the live node
    with the most free memory, epoch + 1, to be started there; ``db`` (its data on the
    lost disk) is orphaned; a stopped ``web`` moves too, stopped."""
    a, b, c = stores["a"], stores["b"], stores["c"]
    a.join_node(identity("a"), 3)
    b.join_node(identity("b"), 3)
    roomy = attrs.evolve(identity("c"), memory_available=6 << 30)
    c.join_node(roomy, 3)
    a.save_instances([_running("web:one", 1), _running("db:one", 2)])
    a.save_instances([attrs.evolve(_running("web:two", 3), pid=None, state="stopped")])
    silence(a, "a", 10)
    found = race(
        [lambda s=stores[p], p=p: s.declare_nodes_lost(p, 3, {"web": None}) for p in "bc"]  # type: ignore[misc]
    )
    [lost] = [entry for results in found for entry in results]
    assert lost.node.name == "a"
    assert [(m.instance_id, m.node, m.epoch, m.start) for m in lost.moved] == [
        ("web:one", "c", 1, True),
        ("web:two", "c", 1, False),
    ]
    assert lost.orphaned == ("db:one",)
    held = {row.instance_id: row for row in c.held_here()}
    assert sorted(held) == ["web:one", "web:two"]
    assert held["web:one"].placed and held["web:one"].epoch == 1
    assert not held["web:two"].placed
    owners = a.owners(["web:one", "db:one", "nope:x"])
    assert owners["web:one"].node == "c" and owners["db:one"].node == "a"
    assert "nope:x" not in owners
    [db] = [r for r in a.load_instances() if r.instance_id == "db:one"]
    assert (db.state, db.pid) == ("orphaned", 2)  # its node re-adopts it by this pid
    # a, back, cannot write over the row c owns now
    a.save_instances([_running("web:one", 1)])
    assert c.owners(["web:one"])["web:one"].node == "c"


def test_a_lost_nodes_tenant_goes_only_to_a_node_its_service_allows(
    stores: dict[str, Store],
) -> None:
    """``[service.X] nodes``: ``web`` may run on b only, so it goes there although c has
    more room; ``pin`` may run on a only (down): orphaned, and said to be stranded;
    ``free`` goes by room (c)."""
    a, b, c = stores["a"], stores["b"], stores["c"]
    a.join_node(identity("a"), 3)
    b.join_node(identity("b"), 3)
    c.join_node(attrs.evolve(identity("c"), memory_available=6 << 30), 3)
    a.save_instances([_running("web:one", 1), _running("pin:one", 2), _running("free:one", 3)])
    silence(a, "a", 10)
    [lost] = b.declare_nodes_lost("b", 3, {"web": ("b",), "pin": ("a",), "free": None})
    assert [(m.instance_id, m.node) for m in lost.moved] == [("free:one", "c"), ("web:one", "b")]
    assert lost.orphaned == lost.stranded == ("pin:one",)
    assert a.get_instance("pin:one").state == "orphaned"  # type: ignore[union-attr]


def test_placing_a_new_tenant_spreads_by_room_and_is_decided_once(
    stores: dict[str, Store],
) -> None:
    """The policy a failover uses places a spawn: fewest live instances among nodes with
    about the same memory, only among the nodes allowed; the same tenant placed through
    three nodes at once gets one row and one node."""
    for name, store in stores.items():
        store.join_node(identity(name), 3)
    a = stores["a"]
    a.save_instances([_running("web:busy", 1)])  # a runs one already
    first = a.place_instance("web:t0", "web", "t0", None, 3, time.time())
    assert (first.node, first.chosen, first.live) == ("b", True, ("a", "b", "c"))
    row = a.get_instance("web:t0")
    assert row is not None and (row.node, row.state) == ("b", "stopped")
    # once b runs it, c is the emptiest
    stores["b"].save_instances([_running("web:t0", 2)])
    assert a.place_instance("web:t1", "web", "t1", None, 3, time.time()).node == "c"
    pinned = a.place_instance("web:t2", "web", "t2", ("a", "b"), 3, time.time())
    assert (pinned.node, pinned.live) == ("a", ("a", "b"))  # a and b have one each: by name
    again = stores["c"].place_instance("web:t0", "web", "t0", None, 3, time.time())
    assert (again.node, again.chosen) == ("b", False)
    silence(a, "b", 10)
    nowhere = a.place_instance("web:t3", "web", "t3", ("b",), 3, time.time())
    assert (nowhere.node, nowhere.live) == (None, ())
    assert a.get_instance("web:t3") is None
    for round_ in range(15):
        iid = f"web:r{round_}"
        placed = race(
            [
                functools.partial(stores[n].place_instance, iid, "web", f"r{round_}", None, 3, 0.0)
                for n in "abc"
            ]
        )
        assert len({p.node for p in placed}) == 1, placed
        assert sum(p.chosen for p in placed) >= 1
        row = a.get_instance(iid)
        assert row is not None and row.node == placed[0].node


def statements(store: Store) -> list[str]:
    """The SQL statements ``store`` sends from now on (an executemany counts once)."""
    sent: list[str] = []

    def note(*args: Any) -> None:
        sent.append(args[2])

    sa.event.listen(store.engine, "before_cursor_execute", note)
    return sent


def test_a_thousand_tenants_move_and_are_asked_after_in_a_few_statements(
    stores: dict[str, Store],
) -> None:
    """Scale (bench/fleet_scale.py): a lost node's tenants are re-placed, and a node
    back from fencing asks who owns its tenants, in a few statements, not one each."""
    a, b, c = stores["a"], stores["b"], stores["c"]
    for name, store in stores.items():
        store.join_node(identity(name), 3)
    ids = [f"web:t{i}" for i in range(1000)]
    a.save_instances([_running(iid, 1000 + i) for i, iid in enumerate(ids)])
    silence(a, "a", 10)
    sent_by_b = statements(b)
    [lost] = b.declare_nodes_lost("b", 3, {"web": None})
    assert sorted(m.instance_id for m in lost.moved) == sorted(ids)
    assert {m.node for m in lost.moved} == {"b", "c"}  # spread by free capacity
    moves = [sql for sql in sent_by_b if sql.lstrip().startswith("UPDATE instances")]
    assert len(moves) == 1, moves[:3]
    sent_by_a = statements(a)
    owners = a.owners([*ids, "nope:x"])
    assert len(sent_by_a) <= 3, sent_by_a[:3]  # 2 chunks, and at most a BEGIN/ROLLBACK
    assert "nope:x" not in owners
    assert {iid: o.node for iid, o in owners.items()} == {m.instance_id: m.node for m in lost.moved}
    assert {o.epoch for o in owners.values()} == {1}
    assert {row.instance_id for row in c.held_here()} == {
        m.instance_id for m in lost.moved if m.node == "c"
    }


def test_a_draining_node_stays_draining_live_and_unplaced_until_silent(
    stores: dict[str, Store],
) -> None:
    for name, store in stores.items():
        assert store.join_node(identity(name), 3).taken_by is None
    held = [f"echo:h{n}" for n in range(4)]
    for iid in held:
        assert stores["b"].place_instance(iid, "echo", iid[5:], {"a"}, 3, 0.0).node == "a"
    anywhere = lambda service: None  # noqa: E731
    asked = stores["b"].drain_node("a", 3, anywhere, 3)
    assert asked.started and not asked.already and asked.parallel == 3
    # its heartbeats (its restart's too) and its next server's join keep the plan, and
    # how many move at once
    stores["a"].node_heartbeat(identity("a"))
    stores["a"].node_heartbeat(identity("a"), RESTARTING)
    assert stores["a"].join_node(identity("a"), 3).was is not None
    stores["a"].node_heartbeat(identity("a"))
    [row] = [row for row in stores["b"].list_nodes() if row.name == "a"]
    assert row.state == DRAINING and row.alive(3) and row.drain_parallel == 3
    # asked again: a parallel given changes it, none keeps it
    assert stores["b"].drain_node("a", 3, anywhere, 2).parallel == 2
    again = stores["c"].drain_node("a", 3, anywhere)
    assert again.already and again.parallel == 2 and again.node.drain_parallel == 2
    # two at once, spread over b and c; with one under way to b (its row still on a),
    # the next goes to c: placement counts the move under way on its destination
    look = stores["a"].next_drain_moves(3, anywhere)
    assert look is not None and (look.parallel, look.left) == (2, 4)
    assert [(m.instance_id, m.to) for m in look.moves] == [("echo:h0", "b"), ("echo:h1", "c")]
    look = stores["a"].next_drain_moves(3, anywhere, (), {"echo:h0": "b"})
    assert look is not None and [(m.instance_id, m.to) for m in look.moves] == [("echo:h1", "c")]
    full = stores["a"].next_drain_moves(3, anywhere, (), {"echo:h0": "b", "echo:h1": "c"})
    assert full is not None and full.moves == () and full.left == 4
    assert stores["b"].next_drain_moves(3, anywhere) is None  # b is not draining
    assert stores["b"].declare_silent_nodes_down("b", 3) == []
    # placement passes it by
    for n in range(4):
        placed = stores["b"].place_instance(f"echo:t{n}", "echo", f"t{n}", None, 3, 0.0)
        assert placed.node in ("b", "c") and "a" not in placed.live
    # undrained, it forgets how many moved at once: the next drain starts from one
    node, was = stores["b"].undrain_node("a")
    assert was and node is not None and node.drain_parallel is None
    assert stores["b"].drain_node("a", 3, anywhere).parallel == 1
    # silent: down like any node (no restart's grace), and the drain ends with it
    silence(stores["a"], "a", 4)
    [down] = stores["b"].declare_silent_nodes_down("b", 3)
    assert (down.name, down.state) == ("a", "down")
    assert stores["b"].undrain_node("a")[1] is False
