"""The API of any node acts on any node's instances: three nodes in network namespaces,
PostgreSQL in the hub. A mutation for an instance another node runs, or a read that only
that node can answer (health, storage, history, the live log), is relayed to that node,
with the caller's token, and its answer comes back as it is (a stream as it comes).

The fleet is started once for the module; each test uses its own tenants and ends by
checking that every node still runs and serves another client. The test that loses a
node runs last and starts it again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from tests.fleet.netfleet import PORT, NetFleet, NetNode, namespaced_fleet

CADDY = shutil.which("caddy")


@pytest.fixture(scope="module")
def netfleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetFleet]:
    with namespaced_fleet(tmp_path_factory.mktemp("apifleet"), ["a", "b", "c"]) as fleet:
        trio.run(_spawn_on, fleet, fleet.nodes[1], "other")
        yield fleet


async def _spawn_on(fleet: NetFleet, node: NetNode, tenant: str) -> None:
    async with fleet.api(node) as api:
        answer = await api.post(
            "/api/instances/spawn", json={"process": "echo", "id": tenant, "node": node.name}
        )
    assert answer.status_code == 200, answer.text


async def _served(fleet: NetFleet, node: NetNode, tenant: str) -> int:
    """The pid ``tenant`` answers with, through ``node`` (retried while the directory of
    ``node`` has not seen it yet)."""
    async with fleet.client(node, f"{tenant}.echo.localhost") as client:
        with trio.fail_after(30):
            while True:
                answer = await client.get("/pid")
                if answer.status_code == 200:
                    return int(answer.text)
                await trio.sleep(0.1)


def ten(fleet: NetFleet, node: NetNode, *argv: str) -> subprocess.CompletedProcess[str]:
    """The ``ten`` CLI, in ``node``'s namespace, talking to ``node``."""
    return node.run(*argv, "--server", node.url, "--token", fleet.token)


async def assert_fleet_serves(fleet: NetFleet) -> None:
    pid = int(fleet.instance_row("echo:other")["pid"])
    for node in fleet.nodes:
        assert node.alive, node.log[-3000:]
        assert await _served(fleet, node, "other") == pid
        async with fleet.api(node) as api:
            assert (await api.get("/api/instances")).status_code == 200


async def test_stop_restart_and_weight_of_a_remote_instance_through_a_node_that_owns_nothing(
    netfleet: NetFleet,
) -> None:
    a, _b, c = netfleet.nodes
    await _spawn_on(netfleet, a, "remote")
    first = int(netfleet.instance_row("echo:remote")["pid"])
    async with netfleet.api(c) as api:
        weighted = await api.put("/api/instances/echo:remote/weight", json={"weight": 7})
        assert weighted.status_code == 200, weighted.text
        assert weighted.json() == {"instance": "echo:remote", "weight": 7}
        with trio.fail_after(10):  # a saves the weight in its row
            while netfleet.instance_row("echo:remote")["weight"] != 7:
                await trio.sleep(0.1)
        restarted = await api.post("/api/instances/echo:remote/restart")
        assert restarted.status_code == 200, restarted.text
        assert restarted.json()["instance"] == "echo:remote"
        row = netfleet.instance_row("echo:remote")
        assert row["node"] == "a" and row["pid"] not in (None, first)
        stopped = await api.delete("/api/instances/echo:remote")
        assert stopped.status_code == 204, stopped.text
        assert stopped.content == b""
    row = netfleet.instance_row("echo:remote")
    assert row["node"] == "a" and row["pid"] is None
    # an instance nobody runs is still the calling node's 404
    async with netfleet.api(c) as api:
        missing = await api.delete("/api/instances/echo:nobody")
    assert missing.status_code == 404, missing.text
    await assert_fleet_serves(netfleet)


def _connections(fleet: NetFleet, owner: NetNode, peer: NetNode) -> int:
    """The TCP connections from ``peer`` to ``owner``'s server, as ``owner`` sees them."""
    listed = subprocess.run(
        fleet.network.command(
            owner.namespace,
            ["ss", "-Htn", "state", "established", "( sport = :8080 )", "dst", peer.address],
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    return len(listed.stdout.splitlines())


async def _follow_until(
    process: trio.Process, wanted: str, restart: NetNode, fleet: NetFleet
) -> str:
    """Restart echo:reader (through ``restart``) until the followed output of ``process``
    shows a line with ``wanted``: the CLI's stream may open after a restart's line."""
    assert process.stdout is not None
    seen = b""
    with trio.fail_after(60):
        while wanted.encode() not in seen:
            async with fleet.api(restart) as api:
                answer = await api.post("/api/instances/echo:reader/restart")
            assert answer.status_code == 200, answer.text
            with trio.move_on_after(3):
                while wanted.encode() not in seen:
                    piece = await process.stdout.receive_some(65536)
                    assert piece, f"the follow ended: {seen!r}"
                    seen += piece
    return seen.decode()


async def test_reads_of_a_remote_instance_come_from_its_owner(netfleet: NetFleet) -> None:
    a, _b, c = netfleet.nodes
    await _spawn_on(netfleet, a, "reader")
    async with netfleet.api(c) as api:
        # c runs nothing of it: without the relay it would say "unknown", and its own path
        with trio.fail_after(30):
            while True:
                health = await api.get("/api/instances/echo:reader/health")
                assert health.status_code == 200, health.text
                if health.json()["health"] == "healthy":
                    break
                await trio.sleep(0.2)
        assert health.json() == {"instance": "echo:reader", "health": "healthy"}
        storage = await api.get("/api/instances/echo:reader/storage")
        assert storage.status_code == 200, storage.text
        assert storage.json()["path"].startswith(str(a.directory)), storage.json()
        history = await api.get("/api/instances/echo:reader/history")
        assert history.status_code == 200 and history.json()["interval_secs"] == 10, history.text
        events = await api.get("/api/instances/echo:reader/events")
        assert events.status_code == 200, events.text
        assert "spawn" in {event["action"] for event in events.json()}, events.json()
        # an instance nobody runs is answered by the node called
        nobody = await api.get("/api/instances/echo:nobody/health")
        assert nobody.json() == {"instance": "echo:nobody", "health": "unknown"}
    # the log, once (any node reads the shared database) and followed (from the owner)
    # the owner's tailer writes the tenant's lines to the database in batches
    with trio.fail_after(30):
        while True:
            listed = ten(netfleet, c, "logs", "echo:reader")
            assert listed.returncode == 0, listed
            if "LISTENING" in listed.stdout:
                break
            await trio.sleep(0.2)
    found = ten(netfleet, c, "logs", "echo:reader", "--search", "LISTENING", "--json")
    assert found.returncode == 0, found.stderr
    assert found.stdout and all("LISTENING" in e["message"] for e in json.loads(found.stdout))
    options = ["--follow", "--level", "stdout", "--server", c.url, "--token", netfleet.token]
    follow = netfleet.network.command(
        c.namespace, [sys.executable, "-m", "tenement", "logs", "echo:reader", *options]
    )
    before = _connections(netfleet, a, c)
    process = await trio.lowlevel.open_process(
        follow, cwd=c.directory, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        shown = await _follow_until(process, "LISTENING", c, netfleet)
        assert "echo:reader" in shown, shown
    finally:
        process.kill()
        await process.wait()
        assert process.stdout is not None
        await process.stdout.aclose()
    # the CLI left: c closes its connection to a (the owner's stream ends with it)
    with trio.fail_after(10):
        while _connections(netfleet, a, c) > before:
            await trio.sleep(0.1)
    # the dashboard's stream, opened with a ticket (c redeems it; a authenticates the token)
    async with netfleet.api(c) as api:
        ticket = (await api.post("/api/logs/stream/ticket")).json()["ticket"]
        del api.headers["authorization"]
        params = {"process": "echo", "id": "reader", "ticket": ticket}
        # well within the owner's first keep-alive (15 s): the head must not wait for it
        with trio.fail_after(12):
            async with api.stream("GET", "/api/logs/stream", params=params) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"] == "text/event-stream"
                # the head comes once the owner listens: a restart's line is in the stream
                async with netfleet.api(c) as other:
                    restarted = await other.post("/api/instances/echo:reader/restart")
                assert restarted.status_code == 200, restarted.text
                async for line in stream.aiter_lines():
                    if line.startswith("data:") and "LISTENING" in line:
                        break


async def test_every_node_lists_the_whole_fleet_with_each_instance_node_and_health(
    netfleet: NetFleet,
) -> None:
    """ten ps, /api/instances and /api/telemetry through c, which owns nothing, show a's
    and b's tenants with their node and their owner's health; /metrics names the node."""
    a, _b, c = netfleet.nodes
    await _spawn_on(netfleet, a, "listed")
    with trio.fail_after(30):  # health is the owner's, checked every second
        while True:
            shown = ten(netfleet, c, "ps")
            assert shown.returncode == 0, shown.stderr
            rows = {line.split()[1]: line.split() for line in shown.stdout.splitlines()[1:-2]}
            if {"echo:listed", "echo:other"} <= set(rows) and all(
                rows[iid][-2] == "healthy" for iid in ("echo:listed", "echo:other")
            ):
                break
            await trio.sleep(0.2)
    assert shown.stdout.splitlines()[0].split()[:2] == ["NODE", "INSTANCE"]
    assert rows["echo:listed"][0] == "a" and rows["echo:other"][0] == "b"
    async with netfleet.api(c) as api:
        listed = await api.get("/api/instances")
        assert listed.status_code == 200, listed.text
        assert "x-tenement-silent-nodes" not in listed.headers
        items = {item["id"]: item for item in listed.json()}
        for iid, node in (("echo:listed", "a"), ("echo:other", "b")):
            row = netfleet.instance_row(iid)
            assert (items[iid]["node"], items[iid]["pid"]) == (node, row["pid"])
            assert items[iid]["uptime_secs"] >= 0 and items[iid]["state"] == "running"
        # unchanged: 304, though a and b were asked again; a restart on a changes it
        tag = listed.headers["etag"]
        same = await api.get("/api/instances", headers={"if-none-match": tag})
        assert same.status_code == 304, same.text
        assert (await api.post("/api/instances/echo:listed/restart")).status_code == 200
        with trio.fail_after(10):  # c asks a again once its answer is 0.5 s old
            while (
                changed := await api.get("/api/instances", headers={"if-none-match": tag})
            ).status_code == 304:
                await trio.sleep(0.1)
        assert changed.status_code == 200, changed.text
        [restarted] = [item for item in changed.json() if item["id"] == "echo:listed"]
        now = netfleet.instance_row("echo:listed")["pid"]
        assert restarted["pid"] == now != items["echo:listed"]["pid"]
    # --node: one node's; an unknown one is refused, naming the fleet's nodes
    only_a = ten(netfleet, c, "ps", "--node", "a")
    assert only_a.returncode == 0, only_a.stderr
    shown_a = [line.split()[:2] for line in only_a.stdout.splitlines()[1:-2]]
    on_a = netfleet.rows("SELECT instance_id FROM instances WHERE node = 'a'")
    assert {node for node, _ in shown_a} == {"a"}, only_a.stdout
    # a's own (another test's tenants too), and never b's echo:other
    assert {iid for _, iid in shown_a} <= {row["instance_id"] for row in on_a}
    assert "echo:listed" in {iid for _, iid in shown_a}
    unknown = ten(netfleet, c, "ps", "--node", "zz")
    assert unknown.returncode != 0, unknown.stdout
    assert "'zz'" in unknown.stderr and "nodes are a, b, c" in unknown.stderr, unknown.stderr
    # a tenant token through c sees its own, wherever it runs
    made = ten(netfleet, c, "token-gen", "--tenant", "listed")
    token = next(word for word in made.stdout.split() if len(word) > 20)
    async with netfleet.client(c) as client:
        client.headers["authorization"] = f"Bearer {token}"
        own = await client.get("/api/instances")
        assert [item["id"] for item in own.json()] == ["echo:listed"], own.text
        # telemetry covers both nodes, with a's requests
        assert await _served(netfleet, c, "listed") > 0
        with trio.fail_after(30):
            while True:
                telemetry = (await client.get("/api/telemetry")).json()
                seen = {item["id"]: item for item in telemetry["instances"]}
                if seen.get("echo:listed", {}).get("requests_total", 0) > 0:
                    break
                await trio.sleep(0.2)
        assert (seen["echo:listed"]["node"], seen["echo:other"]["node"]) == ("a", "b")
        assert telemetry["summary"]["total_instances"] == len(seen) >= 2
        assert telemetry["summary"]["total_requests"] == sum(
            item["requests_total"] for item in seen.values()
        )
    # each node's /metrics: its own series, each with its node
    async with netfleet.client(a) as client:
        metrics_a = (await client.get("/metrics")).text
    async with netfleet.client(c) as client:
        metrics_c = (await client.get("/metrics")).text
    assert 'tenement_requests_total{instance="listed",process="echo",node="a"}' in metrics_a
    assert 'tenement_instances_up{node="c"} 0\n' in metrics_c
    # c's proxy forwarded a request to a: counted by both, each under its own node
    assert 'tenement_requests_total{instance="listed",process="echo",node="c"} ' in metrics_c
    assert 'tenement_instance_storage_bytes{id="listed"' not in metrics_c
    series = [line for line in metrics_a.splitlines() if line.startswith("tenement_")]
    assert series and all('node="a"' in line for line in series), metrics_a
    await assert_fleet_serves(netfleet)


async def test_spawn_on_a_named_node(netfleet: NetFleet) -> None:
    a, b, c = netfleet.nodes
    answer = ten(netfleet, c, "spawn", "echo:placed", "--node", "a")
    assert answer.returncode == 0, answer.stderr
    assert "Spawned echo:placed" in answer.stdout
    row = netfleet.instance_row("echo:placed")
    assert row["node"] == "a" and row["pid"] is not None
    assert await _served(netfleet, b, "placed") == row["pid"]
    # spawning it again through another node changes nothing (the owner answers)
    async with netfleet.api(b) as api:
        again = await api.post("/api/instances/spawn", json={"process": "echo", "id": "placed"})
    assert again.status_code == 200, again.text
    assert netfleet.instance_row("echo:placed")["pid"] == row["pid"]
    # on another node than the one it belongs to: refused, naming both, wherever asked
    for node, where in ((c, "b"), (c, "c"), (b, "b"), (a, "c")):
        moved = ten(netfleet, node, "spawn", "echo:placed", "--node", where)
        assert moved.returncode != 0, (node.name, where, moved.stdout)
        assert f"belongs to fleet node a, not {where}" in moved.stderr, moved.stderr
    assert netfleet.instance_row("echo:placed")["pid"] == row["pid"]
    await assert_fleet_serves(netfleet)


async def test_a_tenant_token_keeps_its_scope_through_the_relay(netfleet: NetFleet) -> None:
    a, _b, c = netfleet.nodes
    await _spawn_on(netfleet, a, "scoped")
    made = ten(netfleet, c, "token-gen", "--tenant", "scoped")
    assert made.returncode == 0, made.stderr
    token = next(word for word in made.stdout.split() if len(word) > 20)
    async with netfleet.client(c) as client:
        client.headers["authorization"] = f"Bearer {token}"
        own = await client.post("/api/instances/echo:scoped/restart")
        assert own.status_code == 200, own.text
        theirs = await client.delete("/api/instances/echo:other")
        assert theirs.status_code == 403, theirs.text
        # reads too: its own from its owner (its storage is on a's disk), another
        # tenant's refused before any relay
        storage = await client.get("/api/instances/echo:scoped/storage")
        assert storage.status_code == 200, storage.text
        assert storage.json()["path"].startswith(str(a.directory)), storage.json()
        for read in ("health", "storage", "history"):
            refused = await client.get(f"/api/instances/echo:other/{read}")
            assert refused.status_code == 403, (read, refused.text)
    assert netfleet.instance_row("echo:other")["pid"] is not None
    await assert_fleet_serves(netfleet)


async def test_a_forged_hop_on_the_api_is_refused_and_a_valid_one_never_relayed_again(
    netfleet: NetFleet,
) -> None:
    a, b, _c = netfleet.nodes
    await _spawn_on(netfleet, a, "hopped")
    for headers in ({"x-tenement-hop": "garbage"}, {"x-tenement-hop": netfleet.secret + "x"}):
        async with netfleet.api(b) as api:
            answer = await api.delete("/api/instances/echo:hopped", headers=headers)
        assert answer.status_code == 403, answer.text
        assert "without the fleet secret" in answer.text
    # logged, but once for the two (a client sending them again and again fills no log)
    logged = [line for line in b.log.splitlines() if "refused an API call" in line]
    assert len(logged) == 1 and "hop header without the fleet secret" in logged[0], logged
    async with netfleet.api(b) as api:
        looped = await api.delete(
            "/api/instances/echo:hopped", headers={"x-tenement-hop": netfleet.secret}
        )
    assert looped.status_code == 508, looped.text
    assert "fleet node a runs it" in looped.text
    # reads the same
    async with netfleet.api(b) as api:
        forged = await api.get(
            "/api/instances/echo:hopped/health", headers={"x-tenement-hop": "garbage"}
        )
        assert forged.status_code == 403 and "without the fleet secret" in forged.text
        hop = {"x-tenement-hop": netfleet.secret}
        for path in (
            "/api/instances/echo:hopped/health",
            "/api/logs/stream?process=echo&id=hopped",
        ):
            looped = await api.get(path, headers=hop)
            assert looped.status_code == 508, (path, looped.text)
            assert "fleet node a runs it" in looped.text
    assert netfleet.instance_row("echo:hopped")["pid"] is not None
    await assert_fleet_serves(netfleet)


def live_counts(fleet: NetFleet) -> dict[str, int]:
    """Each node's starting or running instances, as the placement counts them."""
    counts = {node.name: 0 for node in fleet.nodes}
    for row in fleet.rows(
        "SELECT node, count(*) AS n FROM instances WHERE state IN ('starting', 'running') "
        "GROUP BY node"
    ):
        counts[row["node"]] = row["n"]
    return counts


async def test_spawns_without_a_node_go_to_the_node_with_the_most_room(netfleet: NetFleet) -> None:
    """The nodes share one host's memory (equal within the policy's slack): each spawn
    goes to a node that had the fewest instances, through whichever node is called."""
    a, _b, c = netfleet.nodes
    placed = []
    for i in range(4):
        before = live_counts(netfleet)
        if i == 0:
            answer = ten(netfleet, c, "spawn", "echo:spread0")
            assert answer.returncode == 0, answer.stderr
            assert "Spawned echo:spread0" in answer.stdout
        else:
            await _post_spawn(netfleet, c if i % 2 else a, "echo", f"spread{i}", 200)
        row = netfleet.instance_row(f"echo:spread{i}")
        assert row["state"] == "running" and row["pid"] is not None, dict(row)
        assert before[row["node"]] == min(before.values()), (i, before, row["node"])
        placed.append(row["node"])
    assert len(set(placed)) >= 2, placed
    assert await _served(netfleet, a, "spread0") == netfleet.instance_row("echo:spread0")["pid"]
    await assert_fleet_serves(netfleet)


async def test_one_tenant_spawned_through_every_node_at_once_starts_once(
    netfleet: NetFleet,
) -> None:
    for round_ in range(2):
        tenant = f"race{round_}"
        answers: dict[str, Any] = {}
        async with trio.open_nursery() as nursery:
            for node in netfleet.nodes:
                nursery.start_soon(_spawn_into, netfleet, node, tenant, answers)
        assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
            "abc", 200
        ), {name: answer.text for name, answer in answers.items()}
        assert len({answer.json()["port"] for answer in answers.values()}) == 1
        owner = netfleet.instance_row(f"echo:{tenant}")["node"]
        running = []  # each node lists what its own supervisor runs (?node=: its own)
        for node in netfleet.nodes:
            async with netfleet.api(node) as api:
                listed = (await api.get("/api/instances", params={"node": node.name})).json()
            running += [item["node"] for item in listed if item["id"] == f"echo:{tenant}"]
        assert running == [owner]
    await assert_fleet_serves(netfleet)


async def _spawn_into(fleet: NetFleet, node: NetNode, tenant: str, answers: dict[str, Any]) -> None:
    async with fleet.api(node) as api:
        answers[node.name] = await api.post(
            "/api/instances/spawn", json={"process": "echo", "id": tenant}
        )


async def _post_spawn(
    fleet: NetFleet, called: NetNode, service: str, tenant: str, status: int, **body: str
) -> str:
    """``POST /api/instances/spawn`` through ``called``, answered ``status``; its error."""
    async with fleet.api(called) as api:
        answer = await api.post(
            "/api/instances/spawn", json={"process": service, "id": tenant, **body}
        )
    assert answer.status_code == status, answer.text
    return str(answer.json().get("error", ""))


async def test_a_service_pinned_to_some_nodes_runs_only_there(netfleet: NetFleet) -> None:
    """``[service.pinned] nodes = ["a", "b"]``: a spawn through c goes to a or b, by room;
    ``--node c`` is refused wherever it is asked, naming a and b."""
    a, _b, c = netfleet.nodes
    for i in range(2):
        before = live_counts(netfleet)
        await _post_spawn(netfleet, c, "pinned", f"p{i}", 200)
        node = netfleet.instance_row(f"pinned:p{i}")["node"]
        assert node in ("a", "b")
        assert before[node] == min(before["a"], before["b"]), (i, before, node)
    refused = ten(netfleet, c, "spawn", "pinned:off", "--node", "c")
    assert refused.returncode != 0, refused.stdout
    assert "Invalid node 'c' for pinned" in refused.stderr, refused.stderr
    assert "nodes = a, b" in refused.stderr and "the live ones are a, b" in refused.stderr
    error = await _post_spawn(netfleet, a, "pinned", "off", 400, node="c")
    assert "Invalid node 'c' for pinned" in error and "the live ones are a, b" in error
    assert not netfleet.rows("SELECT 1 FROM instances WHERE instance_id = 'pinned:off'")
    # a service whose nodes are none of them up: 503, saying so, and no row
    error = await _post_spawn(netfleet, c, "stray", "x", 503)
    assert "no live fleet node may run stray: [service.stray] nodes = zz, and none of" in error
    assert not netfleet.rows("SELECT 1 FROM instances WHERE instance_id = 'stray:x'")
    await assert_fleet_serves(netfleet)


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed (apt-get install -y caddy)")
async def test_caddy_fleet_proxies_to_every_live_node(netfleet: NetFleet) -> None:
    written = caddy_fleet(netfleet, netfleet.nodes[2])
    for node in netfleet.nodes:
        assert f"{node.address}:{PORT}" in written
    await assert_fleet_serves(netfleet)


def caddy_fleet(fleet: NetFleet, node: NetNode) -> str:
    """``ten caddy --fleet`` through ``node``: the file it writes, which Caddy accepts."""
    target = node.directory / "Caddyfile"
    made = ten(fleet, node, "caddy", "--fleet", "-d", "example.com", "-o", str(target))
    assert made.returncode == 0, made.stderr
    home = str(node.directory)
    env = {"PATH": os.environ["PATH"], "HOME": home, "XDG_DATA_HOME": home,
           "XDG_CONFIG_HOME": home}  # fmt: skip
    assert CADDY is not None
    checked = subprocess.run(
        [CADDY, "validate", "--config", str(target), "--adapter", "caddyfile"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    return target.read_text()


async def test_an_unknown_or_down_node_is_refused_naming_the_live_ones(
    netfleet: NetFleet,
) -> None:
    a, b, c = netfleet.nodes
    async with netfleet.api(b) as api:
        # a node counts as live from its first heartbeat, and b's map of the nodes is
        # read every 0.5 s: c may be missing from the first answers
        with trio.fail_after(30):
            while True:
                unknown = await api.post(
                    "/api/instances/spawn",
                    json={"process": "echo", "id": "nowhere", "node": "zz"},
                )
                assert unknown.status_code == 400, unknown.text
                message = unknown.json()["error"]
                assert "'zz'" in message and "not a node of this fleet" in message
                if "a, b, c" in message:
                    break
                await trio.sleep(0.1)
    await _spawn_on(netfleet, a, "stranded")
    a.kill()
    try:
        async with netfleet.api(b) as api:
            # a is still listed up: the connection is refused
            stop = await api.delete("/api/instances/echo:stranded")
            assert stop.status_code == 503, stop.text
            assert "fleet node a" in stop.text
            assert int(stop.headers["retry-after"]) >= 1
            for path in ("/health", "/storage"):
                read = await api.get(f"/api/instances/echo:stranded{path}")
                assert read.status_code == 503, read.text
                assert "fleet node a" in read.json()["error"]
                assert int(read.headers["retry-after"]) >= 1
        followed = ten(netfleet, b, "logs", "echo:stranded", "--follow")
        assert followed.returncode != 0, followed.stdout
        assert "fleet node a" in followed.stderr, followed.stderr
        async with netfleet.api(b) as api:
            # a is listed up but does not answer: its instances come from its rows (once
            # b's last answer from a, from the previous test's check, is 0.5 s old)
            with trio.fail_after(10):
                while (
                    "x-tenement-silent-nodes"
                    not in (listed := await api.get("/api/instances")).headers
                ):
                    assert listed.status_code == 200, listed.text
                    await trio.sleep(0.1)
            assert listed.headers["x-tenement-silent-nodes"] == "a"
            [stranded] = [item for item in listed.json() if item["id"] == "echo:stranded"]
            assert (stranded["node"], stranded["health"]) == ("a", "unknown")
            assert [item["node"] for item in listed.json() if item["id"] == "echo:other"] == ["b"]
            with trio.fail_after(30):  # once declared down, --node a is refused
                while True:
                    down = await api.post(
                        "/api/instances/spawn",
                        json={"process": "echo", "id": "nowhere", "node": "a"},
                    )
                    if down.status_code == 400:
                        break
                    await trio.sleep(0.2)
        message = down.json()["error"]
        assert "'a'" in message and "is down" in message and "b, c" in message
        # c's map of the nodes is read every 0.5 s: until it has a down, the call fails
        # as for an owner that cannot be reached
        with trio.fail_after(10):
            while True:
                shown = ten(netfleet, c, "spawn", "echo:nowhere", "--node", "a")
                assert shown.returncode != 0, shown.stdout
                if "is down" in shown.stderr:
                    break
                assert "cannot be reached" in shown.stderr, shown.stderr
                await trio.sleep(0.2)
        for node in (b, c):
            assert (await _served(netfleet, node, "other")) > 0
        # a new tenant of a service pinned to a and b goes to b, the one of them alive
        assert ten(netfleet, c, "spawn", "pinned:late").returncode == 0
        assert netfleet.instance_row("pinned:late")["node"] == "b"
        if CADDY is not None:  # and a front proxy's file leaves a out
            written = caddy_fleet(netfleet, c)
            assert f"{a.address}:{PORT}" not in written
            assert f"{b.address}:{PORT}" in written and f"{c.address}:{PORT}" in written
    finally:
        a.spawn_server()
        await a.wait_healthy()
    await assert_fleet_serves(netfleet)
