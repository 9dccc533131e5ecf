"""`ten move` of a tenant with its data: the pause its clients see, and how fast the data
goes from node to node against `tar | nc` over the same link (``python -m bench.moves``;
root: it makes network namespaces; needs `nc`, Debian's netcat-openbsd).

Two nodes, each in its own network namespace on a bridge (tests/netns.py), one
PostgreSQL in the hub (tests/postgresql.py), as bench/fleet.py. The tenant is
``bench/apps/fast_backend.py`` with a data directory of random bytes. While it moves
back and forth, one client in the hub sends requests one after another through the
node that does not run it at the start: the longest wait of a request during a move is
the pause it saw. The limit for the data is a plain copy over the same link:
``tar -cf - DIR | nc`` from the source's namespace into ``nc -l | tar -xf -`` in the
destination's (the data lands on its disk, as a move's does). ``nc -l > /dev/null``,
which writes nothing, is shown beside it.

Each copy writes into memory freed a moment before: a move's old copy (kept for
``keep_source``) is removed just before the next move, as each `tar | nc` copy is
before the next copy. This machine is a virtual machine whose free pages go back to
the host (virtio-balloon free page reporting, seconds after they are freed), and the
host backs a page again only when the guest next writes it: writing 100 MB into new
page-cache pages goes at 350-450 MB/s here, into pages freed a moment before at 4-5
GB/s (``dd``). Whichever copy got the fresh pages was the faster (the moves kept
every old copy, the limit's copies did not). The first move of each size has nothing
removed before it: its figure is the one of pages freed long ago.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import trio

from bench.fleet import FAST
from tests.fleet.netfleet import NetFleet, NetNode, started_fleet
from tests.netns import fleet_network
from tests.postgresql import running_cluster

SIZES_MB = (1, 100)
MOVES = 5
MB = 1024 * 1024
NC_PORT = 9099


def fill(tree: Path, size: int) -> None:
    tree.mkdir(parents=True, exist_ok=True)
    with (tree / "data.bin").open("wb") as out:
        left = size
        while left:
            piece = min(left, 4 * MB)
            out.write(os.urandom(piece))
            left -= piece


async def spawn(fleet: NetFleet, tenant: str, node: NetNode) -> None:
    async with fleet.api(node) as api:
        answer = await api.post(
            "/api/instances/spawn", json={"process": "fast", "id": tenant, "node": node.name}
        )
        assert answer.status_code == 200, answer.text


async def moves_of(fleet: NetFleet, tenant: str, size: int) -> list[tuple[float, dict]]:
    """``MOVES`` moves of ``tenant`` back and forth under one client: (its longest wait
    during each move in ms, the move's report)."""
    a, b = fleet.nodes
    host = f"{tenant}.fast.localhost"
    results: list[tuple[float, dict]] = []
    waits: list[tuple[float, float]] = []  # (start, seconds) of every request
    failures: Counter[str] = Counter()
    stop = trio.Event()

    async def client() -> None:
        async with fleet.client(b, host) as c:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    answer = await c.get("/")
                    if answer.status_code != 200:
                        failures[f"{answer.status_code} {answer.text[:80]}"] += 1
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] += 1
                waits.append((began, time.monotonic() - began))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        await trio.sleep(1)
        here, there = a, b
        for _ in range(MOVES):
            remove_old_copies(fleet, tenant)  # just before, as each tar copy's
            started = time.monotonic()
            async with fleet.api(b) as api:
                api.timeout = httpx.Timeout(600)
                answer = await api.post(
                    f"/api/instances/fast:{tenant}/move", json={"to": there.name}
                )
            assert answer.status_code == 200, answer.text
            ended = time.monotonic()
            await trio.sleep(1)
            during = [w for began, w in waits if started - 1 <= began <= ended]
            results.append((1000 * max(during, default=0.0), answer.json()))
            here, there = there, here
        stop.set()
    assert not failures, f"failed requests: {failures}"
    return results


def tar_nc_mb_s(fleet: NetFleet, tree: Path, size: int, into: Path | None) -> float:
    """``tar | nc`` of ``tree`` from node a's namespace into node b's, unpacked there
    into the new directory ``into``, or thrown away (None): MB/s."""
    a, b = fleet.nodes
    network = fleet.network
    keep = "cat > /dev/null" if into is None else f"tar -xf - -C {into}"
    sink = subprocess.Popen(
        network.command(b.namespace, ["sh", "-c", f"nc -l -N {NC_PORT} | {keep}"])
    )
    try:
        time.sleep(0.5)
        began = time.monotonic()
        subprocess.run(
            network.command(
                a.namespace,
                ["sh", "-c", f"tar -C {tree} -cf - . | nc -N -q 0 {b.address} {NC_PORT}"],
            ),
            check=True,
            timeout=600,
        )
        sink.wait()  # waitpid: a wait with a timeout polls, up to 50 ms late
        return size / MB / (time.monotonic() - began)
    finally:
        sink.kill()


def copies_mb_s(fleet: NetFleet, tree: Path, size: int) -> list[float]:
    """:data:`MOVES` ``tar | nc | tar -x`` copies of ``tree`` into node b's directory,
    each removed before the next: MB/s of each."""
    rates = []
    for _ in range(MOVES):
        into = Path(tempfile.mkdtemp(prefix="tar-copy-", dir=fleet.nodes[1].directory))
        try:
            rates.append(tar_nc_mb_s(fleet, tree, size, into))
        finally:
            shutil.rmtree(into, ignore_errors=True)
    return rates


def remove_old_copies(fleet: NetFleet, tenant: str) -> None:
    """What a sweep does once ``keep_source`` is up: the moved tenant's old copies go."""
    for node in fleet.nodes:
        for old in (node.directory / "data" / "fast").glob(f"moved-{tenant}-*"):
            shutil.rmtree(old)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-moves-"))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with (
        fleet_network(2) as network,
        running_cluster(host=network.hub_address, netns=network.hub) as cluster,
        started_fleet(work, network, cluster, ["a", "b"], extra=FAST) as fleet,
    ):
        a, _b = fleet.nodes
        print("| data | pause seen by a client: median / max of moves (ms) | data stream, "
              "ours (MB/s, median) | tar \\| nc \\| tar -x (MB/s, median) | ours / that | "
              "tar \\| nc > /dev/null (MB/s) |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for size_mb in SIZES_MB:
            tenant = f"m{size_mb}"
            size = size_mb * MB
            trio.run(spawn, fleet, tenant, a)
            tree = a.directory / "data" / "fast" / tenant
            fill(tree, size)
            moved = trio.run(moves_of, fleet, tenant, size)
            pauses = [pause for pause, _ in moved]
            rates = [r["bytes"] / MB / r["transfer_secs"] for _, r in moved if r["transfer_secs"]]
            current = fleet.instance_row(f"fast:{tenant}")["node"]
            holder = next(n for n in fleet.nodes if n.name == current)
            live = holder.directory / "data" / "fast" / tenant
            copies = copies_mb_s(fleet, live, size)
            thrown = [tar_nc_mb_s(fleet, live, size, None) for _ in range(MOVES)]
            baseline = statistics.median(copies)
            ours = statistics.median(rates)
            print(f"| {size_mb} MB | {statistics.median(pauses):.0f} / {max(pauses):.0f} | "
                  f"{ours:.0f} | {baseline:.0f} | {ours / baseline:.2f}x | "
                  f"{statistics.median(thrown):.0f} |")  # fmt: skip
            print(f"  ours per move: {', '.join(f'{r:.0f}' for r in rates)}; copies: "
                  f"{', '.join(f'{r:.0f}' for r in copies)}; thrown away: "
                  f"{', '.join(f'{r:.0f}' for r in thrown)} (MB/s)")  # fmt: skip
            for pause, report in moved:
                print(f"  move {report['from']}->{report['to']}: pause {pause:.0f} ms, "
                      f"stop {report['stop_secs']} s, transfer {report['transfer_secs']} s, "
                      f"start {report['start_secs']} s, total {report['total_secs']} s"
                      )  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
