"""A fleet's first slice (issue 18): membership, per-node ownership, `ten nodes`.

Three real `ten serve` nodes on loopback share one PostgreSQL database. They list each
other up; a node killed with SIGKILL is declared down by exactly one peer once it has
been silent for node_timeout (by the database's clock); started again it is up, and
re-adopts its own tenants, while no other node ever adopted, restarted or answered for
them. A second node under a taken name is refused; the same node's standby is not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa
import trio

from tests.fleet.conftest import (
    NODE_TIMEOUT,
    Fleet,
    Node,
    free_port,
    node_config,
    ten,
    wait_healthy,
)


async def spawn(fleet: Fleet, node: Node, tenant: str) -> int:
    """Spawn echo:<tenant> through ``node``'s API; returns its pid (from the tenant)."""
    async with fleet.api(node) as client:
        response = await client.post(
            "/api/instances/spawn", json={"process": "echo", "id": tenant, "node": node.name}
        )
        assert response.status_code == 200, response.text
    return await tenant_pid(node, tenant)


async def tenant_pid(node: Node, tenant: str) -> int:
    """The pid the tenant reports, asked through ``node``'s proxy."""
    async with httpx.AsyncClient(
        base_url=node.url, headers={"host": f"{tenant}.echo.localhost"}
    ) as client:
        response = await client.get("/")
        assert response.status_code == 200, response.text
        return int(response.text.split()[1])


async def listed(fleet: Fleet, node: Node) -> dict[str, dict]:
    """The whole fleet's instances, as ``node`` lists them."""
    async with fleet.api(node) as client:
        response = await client.get("/api/instances")
        assert response.status_code == 200
        return {item["id"]: item for item in response.json()}


async def own(fleet: Fleet, node: Node) -> set[str]:
    """The instances ``node`` runs, as it lists them (``?node=``)."""
    async with fleet.api(node) as client:
        response = await client.get("/api/instances", params={"node": node.name})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()}


async def nodes_seen_by(fleet: Fleet, node: Node) -> dict[str, dict]:
    async with fleet.api(node) as client:
        response = await client.get("/api/nodes")
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["fleet"] is True and body["node"] == node.name
    return {item["name"]: item for item in body["nodes"]}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_nodes_list_each_other_and_a_killed_node_is_declared_down_by_one_peer(
    fleet: Fleet,
) -> None:
    a, b, c = fleet.node("a"), fleet.node("b"), fleet.node("c")
    await a.start()
    fleet.make_token(a)
    await b.start()
    await c.start()
    # `ten nodes` from any node lists all three, up
    shown = ten(b, "nodes", token=fleet.token)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "ADDRESS", "VERSION", "STATE", "LAST-HEARTBEAT", "INSTANCES", "MEMORY",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    for node in (a, b, c):
        assert rows[node.name][1] == f"127.0.0.1:{node.port}"
        assert rows[node.name][3] == "up"
    as_json = json.loads(ten(c, "nodes", "--json", token=fleet.token).stdout)
    assert {n["name"]: n["state"] for n in as_json["nodes"]} == {"a": "up", "b": "up", "c": "up"}

    alice = await spawn(fleet, a, "alice")
    bob = await spawn(fleet, b, "bob")
    assert fleet.instance_row("echo:alice")["node"] == "a"
    assert fleet.instance_row("echo:bob")["node"] == "b"
    # ten ps on a fleet node names the node; the tenant is only where it runs
    ps = ten(a, "ps", token=fleet.token)
    assert ps.stdout.splitlines()[0].split()[:2] == ["NODE", "INSTANCE"], ps.stdout
    assert ps.stdout.splitlines()[1].split()[:2] == ["a", "echo:alice"]
    assert await own(fleet, b) == {"echo:bob"}
    # another node will not start a second copy of a's tenant: it relays the spawn to a
    pid = fleet.instance_row("echo:alice")["pid"]
    async with fleet.api(b) as client:
        relayed = await client.post("/api/instances/spawn", json={"process": "echo", "id": "alice"})
    assert relayed.status_code == 200, relayed.text
    assert relayed.json()["instance"] == "echo:alice"
    assert await own(fleet, b) == {"echo:bob"}
    row = fleet.instance_row("echo:alice")
    assert row["node"] == "a" and row["pid"] == pid

    a.kill()
    with trio.fail_after(NODE_TIMEOUT + 30):
        while fleet.node_row("a")["state"] != "down":
            await trio.sleep(0.1)
    row = fleet.node_row("a")
    assert row["down_by"] in ("b", "c")
    declared = [
        line
        for node in (b, c)
        for line in node.log.splitlines()
        if "declared fleet node a " in line
    ]
    assert len(declared) == 1, declared
    assert f"(127.0.0.1:{a.port}) down" in declared[0]
    seen = await nodes_seen_by(fleet, c)
    assert seen["a"]["state"] == "down" and seen["a"]["down_by"] == row["down_by"]
    assert seen["b"]["state"] == seen["c"]["state"] == "up"
    # a's tenant runs on, unadopted; its data persists, so it does not fail over: it is
    # orphaned, listed as such by the other nodes, and its row still names a and its pid
    assert alive(alice)
    for peer in (b, c):
        orphan = (await listed(fleet, peer))["echo:alice"]
        assert (orphan["state"], orphan["node"], orphan["pid"]) == ("orphaned", "a", None)
    assert fleet.instance_row("echo:alice")["node"] == "a"
    assert fleet.instance_row("echo:alice")["pid"] == alice
    assert fleet.instance_row("echo:alice")["state"] == "orphaned"

    await a.start()
    assert fleet.node_row("a")["state"] == "up"
    assert fleet.node_row("a")["down_by"] is None
    assert "fleet node a is up again" in a.log
    assert await tenant_pid(a, "alice") == alice  # re-adopted, not restarted
    assert await own(fleet, a) == {"echo:alice"}
    assert fleet.instance_row("echo:alice")["state"] == "running"  # orphaned no more
    assert await own(fleet, b) == {"echo:bob"}
    assert await tenant_pid(b, "bob") == bob  # b's untouched
    assert fleet.instance_row("echo:bob")["node"] == "b"
    assert fleet.instance_row("echo:bob")["pid"] == bob


async def test_a_node_adopts_restarts_and_reaps_only_its_own_tenants(fleet: Fleet) -> None:
    """b's start after a's tenant died must not restart it, nor mark its row: only a does."""
    a, b = fleet.node("a"), fleet.node("b")
    await a.start()
    fleet.make_token(a)
    alice = await spawn(fleet, a, "alice")
    a.kill()
    os.killpg(alice, signal.SIGKILL)  # a's tenant dies while a is away
    before = fleet.instance_row("echo:alice")
    await b.start()  # b adopts its rows before it answers /health
    assert "echo:alice" not in await own(fleet, b)
    assert fleet.instance_row("echo:alice") == before
    async with httpx.AsyncClient(
        base_url=b.url, headers={"host": "alice.echo.localhost"}
    ) as client:
        woken = await client.get("/")
    # b forwards to a, which is not there: 503 saying so, and no copy woken on b
    assert woken.status_code == 503, woken.text
    assert "echo:alice runs on fleet node a" in woken.text
    assert int(woken.headers["retry-after"]) >= 1
    assert fleet.instance_row("echo:alice") == before
    await a.start()  # a finds its tenant dead and restarts it (health_check, restart policy)
    assert fleet.instance_row("echo:alice")["node"] == "a"


async def test_a_second_node_with_a_taken_name_is_refused(fleet: Fleet) -> None:
    a = fleet.node("a")
    await a.start()
    twin = fleet.node("twin")
    (twin.directory / "tenement.toml").write_text(node_config(fleet.url, "a", twin.port))
    process = twin.spawn_server()
    with trio.fail_after(60):
        while process.poll() is None:
            await trio.sleep(0.05)
    assert process.returncode == 2, twin.log
    assert f"fleet node name 'a' is taken by a live node at 127.0.0.1:{a.port}" in twin.log
    assert fleet.node_row("a")["data_dir"] == str(a.directory / "data")


async def test_the_same_nodes_standby_is_not_refused_and_takes_the_tenants_over(
    fleet: Fleet,
) -> None:
    """A second server on a's data dir is a's standby (the restart handoff), not a twin."""
    a, b = fleet.node("a"), fleet.node("b")
    await a.start()
    fleet.make_token(a)
    await b.start()
    alice = await spawn(fleet, a, "alice")
    standby_port = free_port()
    standby = a.spawn_server(standby_port)
    await wait_healthy(f"http://127.0.0.1:{standby_port}", standby, a)
    assert a.process is not None
    a.process.send_signal(signal.SIGTERM)  # the leader hands over to its own standby
    with trio.fail_after(60):
        while a.process.poll() is None:
            await trio.sleep(0.05)
    assert a.process.returncode == 0, a.log
    assert "handing the tenants over" in a.log
    a.port, a.url, a.process = standby_port, f"http://127.0.0.1:{standby_port}", standby
    with trio.fail_after(30):
        while "echo:alice" not in await own(fleet, a):
            await trio.sleep(0.1)
    assert await tenant_pid(a, "alice") == alice
    assert fleet.node_row("a")["state"] == "up"
    assert "echo:alice" not in await own(fleet, b)
    assert fleet.instance_row("echo:alice")["node"] == "a"


def test_a_fleet_on_sqlite_is_refused(tmp_path: Path) -> None:
    directory = tmp_path
    config = node_config("x", "a", 1).replace('database_url = "x"\n', "")
    (directory / "tenement.toml").write_text(config)
    run = subprocess.run(
        [sys.executable, "-m", "tenement", "serve", "--port", "0"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert "a fleet needs a shared PostgreSQL database" in run.stderr
    assert "set [settings] database_url" in run.stderr
    assert not (directory / "data" / "tenement.db").exists()


async def test_ten_nodes_on_a_single_host_says_it_is_not_in_a_fleet(fleet: Fleet) -> None:
    single = fleet.node("single")
    (single.directory / "tenement.toml").write_text(
        node_config(fleet.url, "single", single.port, fleet=False)
    )
    await single.start()
    fleet.make_token(single)
    shown = ten(single, "nodes", token=fleet.token)
    assert shown.returncode == 0, shown.stderr
    assert "is not in a fleet" in shown.stdout and "[fleet]" in shown.stdout
    ps = ten(single, "ps", token=fleet.token)
    assert ps.stdout.startswith("No running instances")


async def test_a_node_whose_name_another_host_took_stops_with_one_message(fleet: Fleet) -> None:
    """While a node was silent past node_timeout another host took its name (and so its
    rows): at its next heartbeat the node finds out and stops, exit 2, its tenants too."""
    a = fleet.node("a")
    await a.start()
    fleet.make_token(a)
    alice = await spawn(fleet, a, "alice")
    with fleet.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE nodes SET host = 'elsewhere', advertise = '10.9.9.9:8080', "
            "heartbeat_at = extract(epoch from now()) + 30 WHERE name = 'a'"
        )
    assert a.process is not None
    with trio.fail_after(60):
        while a.process.poll() is None:
            await trio.sleep(0.05)
    assert a.process.returncode == 2, a.log
    assert "its row is gone or another host took the name" in a.log
    [error] = [line for line in a.log.splitlines() if line.startswith("Error:")]
    assert "fleet node name 'a' is taken by a live node at 10.9.9.9:8080" in error
    assert not alive(alice)


async def test_the_same_instances_list_on_every_node_starts_each_tenant_once(
    fleet: Fleet,
) -> None:
    """Every host has the same tenement.toml apart from [fleet]: each listed tenant is
    started by exactly one node, however the nodes' starts interleave."""
    a, b = fleet.node("a"), fleet.node("b")
    for node in (a, b):
        config = node.directory / "tenement.toml"
        config.write_text(config.read_text() + '\n[instances]\necho = ["s1", "s2", "s3"]\n')
    a.process, b.process = a.spawn_server(), b.spawn_server()
    await wait_healthy(a.url, a.process, a)
    await wait_healthy(b.url, b.process, b)
    fleet.make_token(a)
    with trio.fail_after(60):
        while len(fleet.rows("SELECT 1 FROM instances WHERE state = 'running'")) < 3:
            await trio.sleep(0.1)
    on_a, on_b = await own(fleet, a), await own(fleet, b)
    assert on_a | on_b == {"echo:s1", "echo:s2", "echo:s3"}
    assert not on_a & on_b
    for iid in on_a | on_b:
        row = fleet.instance_row(iid)
        owner, other = (a, b) if iid in on_a else (b, a)
        assert row["node"] == owner.name
        assert await tenant_pid(owner, iid.split(":")[1]) == row["pid"]
        assert f"could not start [instances] {iid}" not in other.log


async def test_a_node_with_workers_is_one_node(fleet: Fleet) -> None:
    """`--workers 2`: the worker serves the node's tenants and is not a second member."""
    a, b = fleet.node("a"), fleet.node("b")
    await a.start("--workers", "2")
    fleet.make_token(a)
    await b.start()
    alice = await spawn(fleet, a, "alice")
    bob = await spawn(fleet, b, "bob")
    # every connection, whichever process accepts it, reaches a's tenant, and b's
    # through b (a worker keeps its own directory of the fleet)
    for _ in range(20):
        assert await tenant_pid(a, "alice") == alice
        assert await tenant_pid(a, "bob") == bob
    assert [row["name"] for row in fleet.rows("SELECT name FROM nodes ORDER BY name")] == [
        "a",
        "b",
    ]
    assert "taken by a live node" not in a.log


async def test_a_hostile_node_row_is_shown_escaped_and_breaks_no_listing(fleet: Fleet) -> None:
    # any host with the database's password can write a row; what it writes reaches
    # every node's log, API and `ten nodes`
    a = fleet.node("a")
    await a.start()
    fleet.make_token(a)
    evil = "evil\x1b]0;owned\x07\nFORGED declared fleet node a"
    insert = sa.text(
        "INSERT INTO nodes (name, advertise, host, data_dir, version, started_at, "
        "heartbeat_at, state, cpus, memory_total, memory_available, instances) VALUES "
        "(:name, :advertise, 'h', '/d', :version, :started, :heartbeat, 'up', -1, :memory, "
        ":memory, -7)"
    )
    now = fleet.rows("SELECT extract(epoch FROM now())::float8 AS now")[0]["now"]
    with fleet.engine.begin() as conn:
        conn.execute(
            insert,
            {
                "name": evil,
                "advertise": "\x1b[2J10.0.0.66:8080",
                "version": "v" * 100_000,
                "started": now - 2000,
                "heartbeat": now - 1000,
                "memory": -(2**62),
            },
        )
        conn.execute(
            insert,
            {
                "name": "nan",
                "advertise": "10.0.0.67:8080",
                "version": "0",
                "started": float("inf"),
                "heartbeat": float("nan"),
                "memory": 2**62,
            },
        )
    with trio.fail_after(30):
        while fleet.node_row(evil)["state"] != "down":
            await trio.sleep(0.1)
    async with fleet.api(a) as client:
        answer = await client.get("/api/nodes")
    assert answer.status_code == 200, answer.text

    def strict(constant: str) -> None:
        raise AssertionError(f"/api/nodes answered {constant}, which is not JSON")

    nodes = {n["name"]: n for n in json.loads(answer.text, parse_constant=strict)["nodes"]}
    assert nodes["nan"]["silent_secs"] is None and nodes["nan"]["started_at"] is None
    shown = ten(a, "nodes", token=fleet.token)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "evil\\x1b]0;owned\\x07\\nFORGED" in shown.stdout
    assert not any(line.startswith("FORGED") for line in shown.stdout.splitlines())
    assert "\x1b" not in a.log
    assert not any(line.startswith("FORGED") for line in a.log.splitlines())
    assert "declared fleet node evil\\x1b]0;owned\\x07\\nFORGED" in a.log
    async with httpx.AsyncClient(base_url=a.url) as client:
        assert (await client.get("/health")).status_code == 200
