"""`ten drain` of a node holding 100 stateless tenants, one at a time and N at a time
(``python -m bench.drain``; root: it makes network namespaces).

Two nodes, each in its own network namespace on a bridge (tests/netns.py), one
PostgreSQL in the hub (tests/postgresql.py), as bench/moves.py. The tenants are
``bench/apps/fast_backend.py`` with ``storage_persist = false`` (moved without data),
all started on node a. Each round drains the node that holds them all to the other
(a to b, then b back to a, ...), with ``--parallel`` 1, then 4, then 8: the time is
from ``POST /api/nodes/NAME/drain`` to every row naming the other node and running
there. Meanwhile one client in the hub sends requests one after another through the
node the tenants go to, to each tenant in turn: a light load, and whether any request
failed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import trio

from bench.fleet import APPS
from tests.fleet.netfleet import NetFleet, NetNode, started_fleet
from tests.netns import fleet_network
from tests.postgresql import running_cluster

TENANTS = 100
PARALLEL = (1, 4, 8)
#: one spawn's whole wait, the drain's (100 tenants one at a time: ~100 s)
SPAWN_SECONDS = 60
DRAIN_SECONDS = 900

STATELESS = f"""
[service.fast]
command = "{sys.executable} {APPS}/fast_backend.py"
isolation = "process"
storage_persist = false
"""


def ids() -> list[str]:
    return [f"fast:t{n}" for n in range(TENANTS)]


async def spawn_all(fleet: NetFleet, node: NetNode) -> None:
    async with fleet.api(node) as api:
        api.timeout = httpx.Timeout(SPAWN_SECONDS)
        for iid in ids():
            answer = await api.post(
                "/api/instances/spawn",
                json={"process": "fast", "id": iid.partition(":")[2], "node": node.name},
            )
            assert answer.status_code == 200, answer.text


def where(fleet: NetFleet) -> Counter[tuple[str, str]]:
    """How many of the tenants' rows name each (node, state)."""
    rows = fleet.rows("SELECT node, state FROM instances WHERE service = 'fast'")
    return Counter((row["node"], row["state"]) for row in rows)


async def drain(fleet: NetFleet, source: NetNode, to: NetNode, parallel: int) -> dict:
    """Drain ``source`` (every tenant on it) ``parallel`` at a time under a light load
    through ``to``; the seconds, the requests sent and those that failed."""
    failures: Counter[str] = Counter()
    sent = 0
    stop = trio.Event()

    async def client() -> None:
        nonlocal sent
        async with fleet.client(to) as c:
            n = 0
            while not stop.is_set():
                host = f"t{n % TENANTS}.fast.localhost"
                n += 1
                try:
                    answer = await c.get("/", headers={"host": host})
                    if answer.status_code != 200:
                        failures[f"{answer.status_code} {answer.text[:80]}"] += 1
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] += 1
                sent += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        await trio.sleep(1)
        began = time.monotonic()
        async with fleet.api(to) as api:
            answer = await api.post(f"/api/nodes/{source.name}/drain", json={"parallel": parallel})
        assert answer.status_code == 200, answer.text
        with trio.fail_after(DRAIN_SECONDS):
            while where(fleet)[to.name, "running"] != TENANTS:
                await trio.sleep(0.05)
        took = time.monotonic() - began
        await trio.sleep(1)
        stop.set()
    async with fleet.api(to) as api:
        answer = await api.post(f"/api/nodes/{source.name}/undrain")
        assert answer.status_code == 200, answer.text
    return {"secs": took, "sent": sent, "failed": sum(failures.values()), "why": failures}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with (
        fleet_network(2) as network,
        running_cluster(host=network.hub_address, netns=network.hub) as cluster,
        started_fleet(work, network, cluster, ["a", "b"], extra=STATELESS) as fleet,
    ):
        a, b = fleet.nodes
        trio.run(spawn_all, fleet, a)
        assert where(fleet)[a.name, "running"] == TENANTS, where(fleet)
        print(
            "| --parallel | drain of 100 (s) | per tenant (s) | requests | failed | load before |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        source, to = a, b
        for parallel in PARALLEL:
            load = os.getloadavg()[0]
            result = trio.run(drain, fleet, source, to, parallel)
            print(f"| {parallel} | {result['secs']:.1f} | {result['secs'] / TENANTS:.2f} | "
                  f"{result['sent']} | {result['failed']} | {load:.2f} |", flush=True)  # fmt: skip
            if result["failed"]:
                print(f"  failed: {dict(result['why'])}")
            source, to = to, source
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
