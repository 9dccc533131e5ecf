"""Routing from any node: a request through a node that does not run the tenant, against
one straight to the node that does (``python -m bench.fleet``; root: it makes network
namespaces).

Two nodes, each in its own network namespace on a bridge (tests/netns.py), one
PostgreSQL in the hub namespace (tests/postgresql.py); wrk runs in the hub, as a front
proxy would. The tenant is ``bench/apps/fast_backend.py`` on node a. Rounds alternate
between the two paths; the medians are printed as a Markdown table for BENCHMARKS.md,
with the load average before each round (the machine is shared).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

from bench.load import _LUA, WrkResult, wrk_path, wrk_result
from tests.fleet.netfleet import PORT, NetFleet, started_fleet
from tests.netns import fleet_network
from tests.postgresql import running_cluster

APPS = Path(__file__).with_name("apps")
FAST = f"""
[service.fast]
command = "{sys.executable} {APPS}/fast_backend.py"
isolation = "process"
"""
HOST = "t.fast.localhost"
ROUNDS = 3
SECONDS = 5


def wrk(fleet: NetFleet, address: str, connections: int, work: Path) -> WrkResult:
    script = work / "wrk.lua"
    script.write_text(_LUA % {"host": HOST})
    argv = [
        wrk_path(), f"-t{min(connections, 2)}", f"-c{connections}", f"-d{SECONDS}s",
        "--timeout", "10s", "-s", str(script), f"http://{address}:{PORT}/",
    ]  # fmt: skip
    out = subprocess.run(
        fleet.network.command(fleet.network.hub, argv),
        capture_output=True,
        text=True,
        check=True,
        timeout=SECONDS + 60,
    ).stdout
    return wrk_result(out)


async def spawn(fleet: NetFleet) -> None:
    a, b = fleet.nodes
    async with fleet.api(a) as api:
        answer = await api.post("/api/instances/spawn", json={"process": "fast", "id": "t"})
        assert answer.status_code == 200, answer.text
    async with fleet.client(b, HOST) as client:
        with trio.fail_after(30):
            while (await client.get("/")).status_code != 200:
                await trio.sleep(0.1)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    rows: dict[tuple[str, int], list[WrkResult]] = {}
    loads: list[float] = []
    with (
        fleet_network(2) as network,
        running_cluster(host=network.hub_address, netns=network.hub) as cluster,
        started_fleet(work, network, cluster, ["a", "b"], extra=FAST) as fleet,
    ):
        trio.run(spawn, fleet)
        a, b = fleet.nodes
        for _ in range(ROUNDS):
            for connections in (1, 32):
                for path, node in (("owner", a), ("via", b)):
                    loads.append(os.getloadavg()[0])
                    result = wrk(fleet, node.address, connections, work)
                    rows.setdefault((path, connections), []).append(result)

    def median(path: str, connections: int, field: str) -> float:
        return statistics.median(getattr(r, field) for r in rows[(path, connections)])

    errors = sum(r.errors for results in rows.values() for r in results)
    print(f"rounds {ROUNDS} x {SECONDS} s each; load average (1 min) before rounds: "
          f"{min(loads):.2f} to {max(loads):.2f}; errors {errors}")  # fmt: skip
    print("| measure | straight to the owner | through another node | difference |")
    print("|---|---|---|---|")
    for connections in (1, 32):
        own, via = median("owner", connections, "p50_ms"), median("via", connections, "p50_ms")
        print(f"| p50 latency, {connections} connection(s) (ms) | {own:.3f} | {via:.3f} | "
              f"+{via - own:.3f} ms |")  # fmt: skip
        own, via = median("owner", connections, "rps"), median("via", connections, "rps")
        print(f"| throughput, {connections} connection(s) (req/s) | {own:,.0f} | {via:,.0f} | "
              f"{via / own:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
