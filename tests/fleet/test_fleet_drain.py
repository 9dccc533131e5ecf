"""`ten drain` / `ten undrain`: a node's tenants move away, N at a time (issue 19).

Two real `ten serve` nodes on loopback sharing a PostgreSQL (tests/fleet/conftest.py),
one fleet for every scenario (a fleet's start is the dear part): a drain two at a time
under load through the other node, a drain carried on (two at a time still) by the
draining node's next server after `kill -9`, then the bad inputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import httpx
import trio

from tests.fleet.conftest import Fleet, Node, ten
from tests.fleet.test_fleet_move import STATELESS, fill, post, tree_digest, two_nodes
from tests.loadgen import Load, keep_alive_client, one_shot_client


def held_by(fleet: Fleet, node: str) -> list[str]:
    return [r["instance_id"] for r in fleet.rows("SELECT * FROM instances WHERE node = :n", n=node)]


async def spawn_on(fleet: Fleet, via: Node, node: str, ids: Iterable[str]) -> None:
    for iid in ids:
        service, _, tenant = iid.partition(":")
        body = {"process": service, "id": tenant, "node": node}
        with trio.fail_after(10):
            # a node undrained a moment ago: the directory (read twice a second) may
            # still say draining
            while (
                spawned := await post(fleet, via, "/api/instances/spawn", body)
            ).status_code == 409:
                assert "is being drained" in spawned.text, spawned.text
                await trio.sleep(0.1)
        assert spawned.status_code == 200, spawned.text


def at_once(log: str) -> int:
    """The most moves the draining node's log shows under way at the same time."""
    under_way = most = 0
    for line in log.splitlines():
        if re.search(r"moving \S+ to fleet node \S+: stopping it here", line):
            under_way += 1
            most = max(most, under_way)
        elif re.search(r"moved \S+ to fleet node |the move of \S+ to \S+ failed", line):
            under_way -= 1
    return most


def held_in_moves(log: str) -> dict[str, int]:
    """How many requests each move the log shows held (its tenant's, by id)."""
    return {
        found[1]: int(found[2])
        for found in re.finditer(r"moved (\S+) to fleet node .* (\d+) request\(s\) held", log)
    }


async def gone(pids: Iterable[int]) -> None:
    """Wait until no process (a zombie counts as gone) has any of ``pids``."""

    def alive(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        return stat.rpartition(")")[2].split()[0] != "Z"

    with trio.fail_after(30):
        while any(alive(pid) for pid in pids):
            await trio.sleep(0.1)


async def wait_until_empty(fleet: Fleet, node: Node, seconds: float = 90) -> None:
    with trio.fail_after(seconds):
        while held_by(fleet, node.name):
            await trio.sleep(0.1)


async def test_a_node_drains_under_load_survives_its_restart_and_refuses_bad_input(
    fleet: Fleet,
) -> None:
    a, b = await two_nodes(fleet, STATELESS)
    first = ["echo:alice", "echo:bob", "web:carol", "web:dave"]
    await spawn_on(fleet, b, "a", first)
    source = a.directory / "data" / "echo" / "alice"
    fill(source)
    before = tree_digest(source)
    began = trio.current_time()

    # -- under load through b, to a stateful and a stateless tenant: no request fails
    hosts = ("alice.echo.localhost", "carol.web.localhost")
    # once b routes them: a tenant placed on another node less than 0.5 s ago may be a
    # 404 there until b's directory reads the rows again (docs/fleet.md)
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as client:
        with trio.fail_after(10):
            for host in hosts:
                while (await client.get("/", headers={"host": host})).status_code != 200:
                    await trio.sleep(0.1)
    loads = {(host, kind): Load() for host in hosts for kind in ("one-shot", "keep-alive")}
    # the stateless one through its own node too: served there until its copy on b is up
    loads["carol via a", "keep-alive"] = Load()
    old_pids = {iid: fleet.instance_row(iid)["pid"] for iid in ("web:carol", "web:dave")}
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for host in hosts:
            nursery.start_soon(one_shot_client, b.port, loads[host, "one-shot"], stop, host)
            nursery.start_soon(keep_alive_client, b.url, loads[host, "keep-alive"], stop, host)
        nursery.start_soon(
            keep_alive_client, a.url, loads["carol via a", "keep-alive"], stop, hosts[1]
        )
        with trio.fail_after(120):
            for load in loads.values():
                await load.wait_for_more(5)
            drained = await post(fleet, b, "/api/nodes/a/drain", {"parallel": 2})
            assert drained.status_code == 200, drained.text
            assert drained.json() == {
                "node": "a",
                "state": "draining",
                "already": False,
                "instances_left": 4,
                "parallel": 2,
            }
            # placement passes a draining node by: this one goes to b
            placed = await post(fleet, a, "/api/instances/spawn", {"process": "web", "id": "eve"})
            assert placed.status_code == 200, placed.text
            assert fleet.instance_row("web:eve")["node"] == "b"
            await wait_until_empty(fleet, a)
            took = trio.current_time() - began
            for load in loads.values():
                await load.wait_for_more(5)
        stop.set()
    failures = {way: load.failures for way, load in loads.items() if load.failures}
    assert not failures, failures
    print(f"drained 4 tenants in {took:.1f} s, {sum(x.ok for x in loads.values())} requests")
    assert at_once(a.log) == 2, a.log
    # a stateless tenant moved without a pause: started on b before it stopped on a,
    # no request held; a tenant with data had its requests held while it moved
    held = held_in_moves(a.log)
    assert (held.get("web:carol"), held.get("web:dave")) == (0, 0), a.log
    await gone(old_pids.values())
    with trio.fail_after(30):  # the last one's move returned once it was no more here
        while {fleet.instance_row(iid)["state"] for iid in first} != {"running"}:
            await trio.sleep(0.1)
    assert {fleet.instance_row(iid)["node"] for iid in first} == {"b"}
    assert tree_digest(b.directory / "data" / "echo" / "alice") == before
    assert fleet.node_row("a")["state"] == "draining"  # drained, still draining: told so
    nodes = ten(a, "nodes", token=fleet.token)
    assert "a is drained: it holds no instance" in nodes.stdout, nodes.stdout + nodes.stderr
    assert "1 up, 1 draining" in nodes.stdout

    # -- undrain: a takes tenants again; drained again, its server killed midway
    undrained = ten(b, "undrain", "a", token=fleet.token)
    assert undrained.returncode == 0, undrained.stderr
    assert "a is up again: 0 instance(s) stay on it" in undrained.stdout
    # enough that the kill comes with some still here (a stateless one's row is handed
    # over at once, its move then lasting as long as its start on b)
    second = ["web:frank", "web:grace", "web:heidi", "web:judy", "web:ken", "web:leo"]
    await spawn_on(fleet, b, "a", second)
    async with fleet.api(a) as api:  # a stopped tenant moves too, and stays stopped
        assert (await api.delete("/api/instances/web:frank")).status_code == 204
    old_pids = {iid: fleet.instance_row(iid)["pid"] for iid in second[1:]}
    assert fleet.node_row("a")["drain_parallel"] is None  # undrained: forgotten
    asked = ten(b, "drain", "a", "--parallel", "2", token=fleet.token)
    assert asked.returncode == 0, asked.stderr
    assert "Draining a: its 6 instance(s) move to other nodes, 2 at a time" in asked.stdout
    with trio.fail_after(60):
        while len(held_by(fleet, "a")) == len(second):
            await trio.sleep(0.02)
    a.kill()  # its next server finds the plan in the rows: the node's state, how many
    # at once, and these
    assert held_by(fleet, "a"), "the drain ended before the kill: nothing shows it carried on"
    await a.start()
    assert fleet.node_row("a")["drain_parallel"] == 2
    listed = ten(b, "nodes", "--json", token=fleet.token)
    [shown] = [n for n in json.loads(listed.stdout)["nodes"] if n["name"] == "a"]
    assert (shown["state"], shown["drain_parallel"]) == ("draining", 2), shown
    # asked again with another --parallel: changed, the drain going on
    faster = ten(b, "drain", "a", "--parallel", "3", token=fleet.token)
    assert faster.returncode == 0, faster.stderr
    assert "a is draining already:" in faster.stdout and "3 at a time" in faster.stdout
    assert fleet.node_row("a")["drain_parallel"] == 3
    await wait_until_empty(fleet, a)
    states = {iid: "stopped" if iid == "web:frank" else "running" for iid in second}
    with trio.fail_after(30):  # the last one's move returned once it was no more here
        while {iid: fleet.instance_row(iid)["state"] for iid in second} != states:
            await trio.sleep(0.1)
    assert {fleet.instance_row(iid)["node"] for iid in second} == {"b"}
    # the old copy of the one moving when a was killed (started on b, not yet stopped
    # on a) was stopped by a's next server: none is left running unsupervised
    await gone(old_pids.values())
    assert fleet.node_row("a")["state"] == "draining"
    with trio.fail_after(10):  # said at its next look
        while "fleet node a is drained" not in a.log:
            await trio.sleep(0.1)
    # each destination was told to start its tenant at once, and took the word
    assert "did not take the word" not in a.log

    # -- bad input, each refused with what to do, nothing changed
    unknown = await post(fleet, b, "/api/nodes/zz/drain", {})
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["error"] == (
        "Invalid node 'zz': it is not a node of this fleet; its nodes are a, b "
        "(ten nodes lists them)"
    )
    again = await post(fleet, b, "/api/nodes/a/drain", {})
    assert again.status_code == 200 and again.json()["already"] is True, again.text
    assert again.json()["parallel"] == 3  # none given: the drain's is kept
    for bad, said in [
        (0, "got 0"),
        (33, "got 33"),
        (-1, "got -1"),
        ("2", 'must be an integer, got "2"'),
        (True, "must be an integer, got true"),
        (1.5, "must be an integer, got 1.5"),
    ]:
        refused = await post(fleet, b, "/api/nodes/a/drain", {"parallel": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert said in refused.json()["error"] and "`parallel`" in refused.json()["error"]
    assert (
        "from 1 to 32 (how many tenants move at once)"
        in (await post(fleet, b, "/api/nodes/a/drain", {"parallel": 0})).json()["error"]
    )
    assert fleet.node_row("a")["drain_parallel"] == 3
    async with fleet.api(b) as api:  # an older `ten drain` sends no body: as `{}`
        bare_post = await api.post("/api/nodes/a/drain")
        assert bare_post.status_code == 200 and bare_post.json()["parallel"] == 3, bare_post.text
        texted = await api.post("/api/nodes/a/drain", content=b"parallel=2")
        assert texted.status_code == 415, texted.text
    cli_bad = ten(b, "drain", "a", "--parallel", "0", token=fleet.token)
    assert cli_bad.returncode == 2 and "--parallel" in cli_bad.stderr, cli_bad.stderr
    assert "0 is not in the range 1<=x<=32" in cli_bad.stderr, cli_bad.stderr
    alone = await post(fleet, a, "/api/nodes/b/drain", {})
    assert alone.status_code == 409, alone.text
    assert "it is the only live node of the fleet" in alone.json()["error"]
    assert fleet.node_row("b")["state"] == "up"
    pinned = await post(
        fleet, b, "/api/instances/spawn", {"process": "web", "id": "ivan", "node": "a"}
    )
    assert pinned.status_code == 409, pinned.text
    assert "Fleet node a is being drained" in pinned.json()["error"]
    moved_there = await post(fleet, a, "/api/instances/web:eve/move", {"to": "a"})
    assert moved_there.status_code == 409, moved_there.text
    assert "is being drained" in moved_there.json()["error"]
    not_draining = ten(a, "undrain", "b", token=fleet.token)
    assert not_draining.returncode == 0, not_draining.stderr
    assert "b was not draining (it is up): nothing changed" in not_draining.stdout
    cli_unknown = ten(a, "drain", "zz", token=fleet.token)
    assert cli_unknown.returncode == 1
    assert "Invalid node 'zz'" in cli_unknown.stderr
    # the fleet secret alone (a drain's own moves) opens the node-to-node storage paths
    # only: it is no admin token anywhere else
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as bare:
        hop = {"x-tenement-hop": fleet.secret or ""}
        assert (await bare.post("/api/nodes/b/drain", headers=hop)).status_code == 401
        assert (await bare.get("/api/nodes", headers=hop)).status_code == 401
    # a down node: its tenants failed over or wait for it; there is nothing to drain
    assert (await post(fleet, b, "/api/nodes/a/undrain", {})).json()["was_draining"] is True
    a.kill()
    with trio.fail_after(30):
        while fleet.node_row("a")["state"] != "down":
            await trio.sleep(0.1)
    down = await post(fleet, b, "/api/nodes/a/drain", {})
    assert down.status_code == 409, down.text
    assert "Fleet node a is down, not up" in down.json()["error"]
