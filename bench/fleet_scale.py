"""A fleet at scale: 3 nodes x 1,000 tenants on one PostgreSQL (``python -m bench.fleet_scale``;
root: it makes network namespaces).

Three `ten serve` nodes, each in its own network namespace (tests/netns.py): the nodes'
tenants then have a port range each, as on three hosts, where on one loopback 3,000
tenants of three servers would pick ports from the same range. One PostgreSQL in the hub
namespace (tests/postgresql.py) with ``pg_stat_statements`` loaded. Clients (the API
calls, ``ten ps``) run in the hub, as an operator's would.

The tenants are live processes, 1,000 per node: ``bench/apps/tiny.c`` (compiled here
with ``cc``), a C accept loop of ~0.1 MB PSS, since 3,000 of the Python ``tiny.py``
(~4.8 MB PSS each) would take ~15 GB of a machine other work shares.

Measured, printed as Markdown for BENCHMARKS.md:

- the spawns: wall time, and the queries PostgreSQL ran per spawn;
- ``ten ps`` against each node: the whole command's wall time (median of ``--runs``), and
  how many rows it listed;
- a node's restart to ready, with its 1,000 tenants to adopt: SIGUSR2 (tenants keep
  running, as ``systemctl restart`` does), then a new ``ten serve``, timed from its exec
  to ``READY=1`` on its ``NOTIFY_SOCKET`` and to ``GET /health`` answering 200;
- PostgreSQL's load over ``--idle`` seconds of the idle fleet: transactions and queries
  per second (``pg_stat_database``, ``pg_stat_statements``), by statement, and the CPU
  time of PostgreSQL's and the nodes' processes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import httpx
import sqlalchemy as sa
import trio

from bench.run import byte_compile
from tests.fleet.netfleet import PORT, NetFleet, NetNode
from tests.netns import fleet_network
from tests.postgresql import running_cluster

APPS = Path(__file__).with_name("apps")
NAMES = ["a", "b", "c"]
#: spawn calls in flight per node: the API answers 429 to a client with 10 token checks
#: in progress
IN_FLIGHT = 8


def node_config(url: str, name: str, address: str, tiny: Path) -> str:
    """A node with the defaults a user gets (heartbeat, health checks, node_timeout)."""
    return f"""
[settings]
data_dir = "data"
database_url = "{url}"
tenant_users = false

[service.tiny]
command = "{tiny}"
isolation = "process"

[fleet]
node = "{name}"
advertise = "{address}:{PORT}"
"""


def compile_tiny(work: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("bench.fleet_scale needs a C compiler (cc) for bench/apps/tiny.c")
    binary = work / "tiny"
    subprocess.run([cc, "-O2", "-o", str(binary), str(APPS / "tiny.c")], check=True)
    binary.chmod(0o755)
    return binary


def enable_statements(fleet: NetFleet) -> None:
    """Load pg_stat_statements (a restart of the still unused cluster) and create it in
    the fleet's database."""
    cluster = fleet.cluster
    conf = cluster.data / "postgresql.auto.conf"
    conf.write_text(
        conf.read_text()
        + "shared_preload_libraries = 'pg_stat_statements'\n"
        + "pg_stat_statements.track = 'all'\n"
    )
    cluster.stop()
    cluster.start()
    fleet.engine.dispose()
    with fleet.engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))


class Stats:
    """What PostgreSQL counted for the fleet's database since the last :meth:`reset`."""

    def __init__(self, fleet: NetFleet) -> None:
        self.fleet = fleet
        self._xacts = 0
        self._began = 0.0

    def _xact_total(self) -> int:
        [row] = self.fleet.rows(
            "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        return int(row["n"])

    def reset(self) -> None:
        with self.fleet.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_stat_statements_reset()"))
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        self._xacts = self._xact_total()
        self._began = time.monotonic()

    def read(self) -> tuple[float, int, list[dict[str, Any]]]:
        """Seconds since the reset, transactions, and the statements (by calls)."""
        # pg_stat_database is a snapshot refreshed at transaction ends; a new connection
        # sees the latest the collector flushed (up to ~0.5 s old: said in the report)
        xacts = self._xact_total() - self._xacts
        took = time.monotonic() - self._began
        rows = self.fleet.rows(
            "SELECT s.query, s.calls, s.rows, s.total_exec_time AS ms FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
            "AND s.query NOT ILIKE '%pg_stat%' ORDER BY s.calls DESC"
        )
        return took, xacts, [dict(row) for row in rows]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` and their reaped children so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[i]) for i in (11, 12))
    return total / ticks


def postgres_pids(fleet: NetFleet) -> list[int]:
    """The cluster's postmaster and its children (backends, background workers)."""
    postmaster = int((fleet.cluster.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
    return pids


async def spawn_all(fleet: NetFleet, count: int) -> list[str]:
    """``count`` tenants on each node through its own API; the failures, if any."""
    failures: list[str] = []

    async def spawner(node: NetNode, queue: trio.MemoryReceiveChannel[int]) -> None:
        async with fleet.api(node) as api:
            async for index in queue:
                body = {"process": "tiny", "id": f"{node.name}{index}"}
                try:
                    answer = await api.post("/api/instances/spawn", json=body)
                except httpx.HTTPError as exc:
                    failures.append(f"{node.name}{index}: {exc!r}")
                    continue
                if answer.status_code != 200:
                    failures.append(f"{node.name}{index}: {answer.status_code} {answer.text}")

    async with trio.open_nursery() as nursery:
        for node in fleet.nodes:
            send, receive = trio.open_memory_channel[int](count)
            for index in range(count):
                send.send_nowait(index)
            send.close()
            for _ in range(IN_FLIGHT):
                nursery.start_soon(spawner, node, receive.clone())
            receive.close()
    return failures


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def ten_ps(fleet: NetFleet, node: NetNode) -> tuple[float, float, float, int]:
    """The whole ``ten ps`` command from the hub: its wall seconds, its own CPU seconds,
    the node's server's CPU seconds meanwhile, and the rows it printed."""
    argv = [sys.executable, "-m", "tenement", "ps", "--server", node.url, "--token", fleet.token]
    assert node.process is not None
    server, mine = cpu_seconds([node.process.pid]), children_cpu()
    began = time.monotonic()
    out = subprocess.run(
        fleet.network.command(fleet.network.hub, argv),
        capture_output=True,
        text=True,
        check=True,
        cwd=fleet.base,
    ).stdout
    took = time.monotonic() - began
    mine, server = children_cpu() - mine, cpu_seconds([node.process.pid]) - server
    rows = sum(1 for line in out.splitlines() if re.search(r"\btiny:", line))
    return took, mine, server, rows


#: lines of a server's log that mark the steps of its start
STEPS = {
    "serving processes": "serving process",
    "joined the fleet": "joined the fleet as node",
    "adopted": "running instances",
    "listening": "serving on http://",
}


def steps(log: str, began: float) -> dict[str, float]:
    """Seconds from ``began`` (epoch) to the first line of each of :data:`STEPS` logged
    after it."""
    found: dict[str, float] = {}
    for line in log.splitlines():
        try:
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        if stamp < began - 0.01:
            continue
        for name, marker in STEPS.items():
            if name not in found and marker in line:
                found[name] = stamp - began
    return found


def restart_to_ready(node: NetNode, work: Path) -> tuple[float, float, float, dict[str, float]]:
    """SIGUSR2 to ``node``'s server (its tenants keep running), then a new one: seconds
    from its exec to READY=1, the CPU seconds it had used by then, to /health answering
    200, and to the steps of its log."""
    assert node.process is not None
    node.process.send_signal(signal.SIGUSR2)
    node.process.wait(timeout=60)
    path = work / f"notify-{node.name}"
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        os.chmod(path, 0o777)
        os.environ["NOTIFY_SOCKET"] = str(path)
        try:
            began, wall = time.monotonic(), time.time()
            node.spawn_server()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        notify.settimeout(60)
        while True:
            message = notify.recv(4096)
            if b"READY=1" in message.split(b"\n"):
                ready = time.monotonic() - began
                assert node.process is not None
                cpu = cpu_seconds([node.process.pid])
                break
    trio.run(node.wait_healthy)
    healthy = time.monotonic() - began
    return ready, cpu, healthy, steps(node.log, wall)


def wait_all_running(fleet: NetFleet, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        [row] = fleet.rows("SELECT count(*) AS n FROM instances WHERE state = 'running'")
        if row["n"] >= count:
            return
        time.sleep(0.5)
    raise SystemExit(f"not all {count} tenants are running after 120 s")


def short(query: str) -> str:
    query = " ".join(query.split())
    return query if len(query) <= 110 else query[:107] + "..."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="per node")
    parser.add_argument("--runs", type=int, default=7, help="ten ps runs per node")
    parser.add_argument("--restarts", type=int, default=5, help="restarts of node a")
    parser.add_argument("--idle", type=float, default=30, help="seconds of idle fleet")
    args = parser.parse_args()
    byte_compile()
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-scale-"))
    work.chmod(0o755)
    tiny = compile_tiny(work)
    loads = {"start": os.getloadavg()[0]}
    at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# bench.fleet_scale at {at}", flush=True)
    with (
        fleet_network(len(NAMES)) as network,
        running_cluster(host=network.hub_address, netns=network.hub) as cluster,
    ):
        fleet = NetFleet(work, network, cluster)
        try:
            enable_statements(fleet)
            for name in NAMES:
                node = fleet.add(name)
                (node.directory / "tenement.toml").write_text(
                    node_config(fleet.url, name, node.address, tiny)
                )
            fleet.make_secrets()

            async def start_all() -> None:
                for node in fleet.nodes:
                    node.spawn_server()
                for node in fleet.nodes:
                    await node.wait_healthy()

            trio.run(start_all)
            stats = Stats(fleet)
            total = args.tenants * len(NAMES)

            # spawns
            stats.reset()
            began = time.monotonic()
            failures = trio.run(spawn_all, fleet, args.tenants)
            spawn_s = time.monotonic() - began
            _, spawn_xacts, spawn_statements = stats.read()
            loads["after spawns"] = os.getloadavg()[0]
            print(f"spawned {total} in {spawn_s:.1f} s, {len(failures)} failed "
                  f"{failures[:3]}", flush=True)  # fmt: skip
            wait_all_running(fleet, total - len(failures))

            # idle load first, while nothing else happens
            time.sleep(5)  # the spawns' last health checks and samples settle
            loads["idle"] = os.getloadavg()[0]
            pg = postgres_pids(fleet)
            servers = [node.process.pid for node in fleet.nodes if node.process]
            cpu_pg, cpu_nodes = cpu_seconds(pg), cpu_seconds(servers)
            stats.reset()
            time.sleep(args.idle)
            took, idle_xacts, idle_statements = stats.read()
            cpu_pg = cpu_seconds(pg) - cpu_pg
            cpu_nodes = cpu_seconds(servers) - cpu_nodes

            # ten ps
            loads["ps"] = os.getloadavg()[0]
            ps: dict[str, list[float]] = {}
            ps_cpu: dict[str, list[float]] = {}
            listed: dict[str, int] = {}
            for _ in range(args.runs):
                for node in fleet.nodes:
                    seconds, mine, server, rows = ten_ps(fleet, node)
                    ps.setdefault(node.name, []).append(seconds)
                    ps_cpu.setdefault("client", []).append(mine)
                    ps_cpu.setdefault("server", []).append(server)
                    listed[node.name] = rows

            # restarts
            loads["restarts"] = os.getloadavg()[0]
            ready: list[float] = []
            ready_cpu: list[float] = []
            healthy: list[float] = []
            marks: dict[str, list[float]] = {}
            for _ in range(args.restarts):
                r, cpu, h, found = restart_to_ready(fleet.nodes[0], work)
                ready.append(r)
                ready_cpu.append(cpu)
                healthy.append(h)
                for name, seconds in found.items():
                    marks.setdefault(name, []).append(seconds)
                time.sleep(2)  # its first heartbeats and directory reads pass
            [adopted] = fleet.rows(
                "SELECT count(*) AS n FROM instances WHERE node = 'a' AND state = 'running'"
            )
            loads["end"] = os.getloadavg()[0]
        finally:
            fleet.close()

    report(
        Report(
            tenants=args.tenants,
            live=total - len(failures),
            spawn_s=spawn_s,
            spawn_xacts=spawn_xacts,
            spawn_statements=spawn_statements,
            ps=ps,
            ps_cpu=ps_cpu,
            listed=listed,
            adopted=int(adopted["n"]),
            ready=ready,
            ready_cpu=ready_cpu,
            healthy=healthy,
            marks=marks,
            idle_s=took,
            idle_xacts=idle_xacts,
            idle_statements=idle_statements,
            cpu_pg=cpu_pg,
            cpu_nodes=cpu_nodes,
            loads=loads,
        )
    )


@attrs.frozen
class Report:
    tenants: int
    live: int
    spawn_s: float
    spawn_xacts: int
    spawn_statements: list[dict[str, Any]]
    ps: dict[str, list[float]]
    ps_cpu: dict[str, list[float]]
    listed: dict[str, int]
    adopted: int
    ready: list[float]
    ready_cpu: list[float]
    healthy: list[float]
    marks: dict[str, list[float]]
    idle_s: float
    idle_xacts: int
    idle_statements: list[dict[str, Any]]
    cpu_pg: float
    cpu_nodes: float
    loads: dict[str, float]


def ms(values: list[float]) -> str:
    """Median [lowest-highest], in ms."""
    low, mid, high = (
        round(v * 1000) for v in (min(values), statistics.median(values), max(values))
    )
    return f"{mid} [{low}-{high}]"


def report(r: Report) -> None:
    """The results as Markdown tables."""
    spawned = r.tenants * len(NAMES)
    took = r.idle_s
    rows = [
        ("tenants live (per node)", f"{r.live:,} ({r.tenants:,})", ""),
        (f"spawning them through the 3 nodes' APIs, {IN_FLIGHT} calls in flight per node (s)",
         f"{r.spawn_s:.1f}", ""),
        ("... PostgreSQL statements per spawn (all of the fleet's, BEGIN/COMMIT included)",
         f"{sum(s['calls'] for s in r.spawn_statements) / spawned:.1f}", ""),
        ("... transactions per spawn", f"{r.spawn_xacts / spawned:.1f}", ""),
    ]  # fmt: skip
    for name, values in r.ps.items():
        rows.append(
            (f"`ten ps` against node {name}, {r.listed[name]:,} rows listed (ms)", ms(values),
             "<= 500 ms")
        )  # fmt: skip
    rows.append(
        ("... CPU of the `ten ps` process / of the node's server, per call (ms; all nodes)",
         f"{ms(r.ps_cpu['client'])} / {ms(r.ps_cpu['server'])}", "")
    )  # fmt: skip
    rows.append(
        (f"node a restarted (SIGUSR2, tenants kept), {r.adopted:,} tenants adopted: "
         "exec to READY=1 (ms)", ms(r.ready), "<= 1 s")
    )  # fmt: skip
    rows.append(("... its CPU by READY=1 (ms)", ms(r.ready_cpu), ""))
    rows.append(("... exec to /health 200 (ms)", ms(r.healthy), ""))
    for name, values in r.marks.items():
        rows.append((f'... exec to its log\'s "{name}" (ms)', ms(values), ""))
    calls = sum(s["calls"] for s in r.idle_statements)
    rows += [
        (f"idle fleet, {took:.0f} s: PostgreSQL transactions/s", f"{r.idle_xacts / took:.1f}",
         "stated"),
        ("... statements/s (pg_stat_statements, BEGIN/COMMIT included)", f"{calls / took:.1f}",
         "stated"),
        ("... PostgreSQL's CPU (its processes; ms/s)", f"{r.cpu_pg / took * 1000:.0f}", ""),
        ("... the 3 servers' CPU (ms/s, summed)", f"{r.cpu_nodes / took * 1000:.0f}", ""),
    ]  # fmt: skip
    print()
    print("load average (1 min): " + "; ".join(f"{k} {v:.1f}" for k, v in r.loads.items()))
    print()
    print("| measure | value | goal |")
    print("|---|---:|---|")
    for measure, value, goal in rows:
        print(f"| {measure} | {value} | {goal} |")
    print()
    print(f"Idle statements by calls ({took:.0f} s, 3 nodes; per second):")
    print()
    print("| calls/s | rows/s | ms/s | statement |")
    print("|---:|---:|---:|---|")
    for s in r.idle_statements[:25]:
        print(
            f"| {s['calls'] / took:.1f} | {s['rows'] / took:.0f} | {s['ms'] / took:.2f} "
            f"| `{short(s['query'])}` |"
        )
    print()
    print("Spawn-phase statements, per spawn (top 15):")
    print()
    print("| calls per spawn | statement |")
    print("|---:|---|")
    for s in r.spawn_statements[:15]:
        print(f"| {s['calls'] / spawned:.2f} | `{short(s['query'])}` |")


if __name__ == "__main__":
    main()
