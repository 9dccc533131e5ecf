"""Moves between nodes that each serve with two processes (``--workers 2``).

A node's other serving processes keep their own map of the fleet and their own copy of
the node's rows, read at their own times, and ask the leading process to wake what
their rows do not show running. Under a load through every process of both nodes, a
stateless and a persisted tenant move back and forth, and no request fails: before,
a forwarded request met a map that did not know of the move yet (508), a process
waited 15 s on the stopped old copy of a stateless tenant (503), a wake met a tenant
being moved (503), and a move's data lost its SHA-256 trailer when the destination's
other process relayed it to its leader (the move failed).
"""

from __future__ import annotations

import trio

from tests.fleet.conftest import Fleet
from tests.fleet.test_fleet_move import STATELESS, alive, post, two_nodes
from tests.loadgen import Load, keep_alive_client, one_shot_client


async def test_moves_between_nodes_of_two_serving_processes_fail_no_request(
    fleet: Fleet,
) -> None:
    a, b = await two_nodes(fleet, STATELESS, "--workers", "2")
    for service, tenant in (("web", "carol"), ("echo", "alice")):
        iid = f"{service}:{tenant}"
        spawned = await post(
            fleet, a, "/api/instances/spawn", {"process": service, "id": tenant, "node": "a"}
        )
        assert spawned.status_code == 200, spawned.text
        host = f"{tenant}.{service}.localhost"
        for to in ("b", "a", "b"):
            old_pid = fleet.instance_row(iid)["pid"]
            # new connections are taken by either process of a node, kept ones stay
            loads = {
                (node.name, kind, k): Load()
                for node in (a, b)
                for kind in ("one-shot", "keep-alive")
                for k in range(2)
            }
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                for (name, kind, _k), load in loads.items():
                    node = a if name == "a" else b
                    if kind == "one-shot":
                        nursery.start_soon(one_shot_client, node.port, load, stop, host)
                    else:
                        nursery.start_soon(keep_alive_client, node.url, load, stop, host)
                with trio.fail_after(120):
                    for load in loads.values():
                        await load.wait_for_more(5)
                    moved = await post(fleet, b, f"/api/instances/{iid}/move", {"to": to})
                    for load in loads.values():
                        await load.wait_for_more(5)
                stop.set()
            assert moved.status_code == 200, (iid, to, moved.text)
            failures = {way: load.failures for way, load in loads.items() if load.failures}
            assert not failures, (iid, to, failures)
            row = fleet.instance_row(iid)
            assert (row["node"], row["state"]) == (to, "running")
            seen = set().union(*(load.pids for load in loads.values()))
            assert seen == {str(old_pid), str(row["pid"])}, (iid, to, seen)
            assert not alive(old_pid)
