"""Node loss for real: three `ten serve` nodes, each in its own network namespace, on a
PostgreSQL in the hub namespace (tests/netns.py). A node is lost by ``kill -9`` of its
server (its tenants live on and it re-adopts them: nothing moves) and by a partition (it
fences itself, its stateless tenant starts on another node with epoch + 1, and, healed,
it stops nothing that is now elsewhere and gets its persisted tenant back).

Pids are those of the host (``ip netns exec`` changes the network only); the test
reads the instance rows over the cluster's unix socket, which no partition cuts.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trio

from tests.apps import PID_APP
from tests.fleet.secret_files import secret_in, write_secret
from tests.netns import FleetNetwork, Unavailable, fleet_network
from tests.postgresql import Cluster, running_cluster
from tests.postgresql import Unavailable as NoPostgreSQL
from tests.tenants import kill_tenants_recorded_by

PORT = 8080
PASSWORD = "fleet-test"


def config(url: str, name: str, address: str, node_timeout: float, instances: str) -> str:
    return f"""
[settings]
data_dir = "data"
database_url = "{url}"
health_check_interval = 1
tenant_users = false

[service.web]
command = "{sys.executable} {PID_APP}"
isolation = "process"
health = "/"
storage_persist = false

[service.db]
command = "{sys.executable} {PID_APP}"
isolation = "process"
health = "/"

[fleet]
node = "{name}"
advertise = "{address}:{PORT}"
node_timeout = {node_timeout}

[instances]
{instances}
"""


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class NetFleet:
    """The nodes (one namespace, directory and server each) and the shared database."""

    def __init__(self, network: FleetNetwork, cluster: Cluster, base: Path, timeout: float):
        self.network = network
        role = cluster.new_role(PASSWORD)
        database = cluster.new_database(owner=role)
        cluster.allow_subnet(network.subnet)
        self.url = cluster.tcp_url(database, role, PASSWORD)
        local = cluster.socket_url(database)
        self.engine = sa.create_engine(local.replace("postgresql://", "postgresql+psycopg://"))
        self.names = [f"n{i}" for i in range(len(network.nodes))]
        self.directories = [base / name for name in self.names]
        self.servers: list[subprocess.Popen[bytes] | None] = [None] * len(self.names)
        self.started: list[subprocess.Popen[bytes]] = []
        for i, directory in enumerate(self.directories):
            directory.mkdir()
            # node 0 runs the tenants; the others start empty
            listed = 'web = ["alice"]\ndb = ["bob"]' if i == 0 else ""
            (directory / "tenement.toml").write_text(
                config(self.url, self.names[i], network.addresses[i], timeout, listed)
            )

    def give_secrets(self) -> None:
        """`ten token-gen --fleet` on node 0 (inside its namespace: the database is in the
        hub); the secret in every node's default secret file."""
        argv = [sys.executable, "-m", "tenement", "token-gen", "--fleet"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        made = subprocess.run(
            self.network.command(self.network.nodes[0], argv),
            cwd=self.directories[0],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        secret = secret_in(made.stdout)
        for directory in self.directories:
            write_secret(directory / "data" / "fleet_secret", secret)

    def log(self, i: int) -> str:
        path = self.directories[i] / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, i: int) -> None:
        argv = [
            sys.executable, "-m", "tenement", "serve",
            "--bind", f"{self.network.addresses[i]}:{PORT}",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        process = subprocess.Popen(
            self.network.command(self.network.nodes[i], argv),
            cwd=self.directories[i],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.directories[i] / "serve.log", "ab"),  # noqa: SIM115
        )
        self.servers[i] = process
        self.started.append(process)

    def kill(self, i: int) -> None:
        """SIGKILL node ``i``'s server (``ip netns exec`` execs it: the pid is the server's)."""
        process = self.servers[i]
        assert process is not None
        process.kill()
        process.wait()
        self.servers[i] = None

    def _first(self, sql: str, **params: str) -> Any:
        """The first row, or None (before the first node has migrated: no table yet)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.text(sql), params).mappings().first()
        except sa.exc.ProgrammingError:
            return None

    def row(self, iid: str) -> Any:
        return self._first("SELECT * FROM instances WHERE instance_id = :i", i=iid)

    def node(self, name: str) -> Any:
        return self._first("SELECT * FROM nodes WHERE name = :n", n=name)

    async def until(self, what: str, check: Any, seconds: float = 60) -> Any:
        with trio.move_on_after(seconds):
            while True:
                for i, server in enumerate(self.servers):
                    if server is not None and server.poll() is not None:
                        raise AssertionError(f"n{i} exited while waiting for {what}\n{self.logs()}")
                found = check()
                if found:
                    return found
                await trio.sleep(0.05)
        raise AssertionError(f"no {what} within {seconds:g} s\n{self.logs()}")

    def logs(self) -> str:
        """The end of every node's log, for a failure's message."""
        return "\n".join(f"--- n{i}:\n{self.log(i)[-3000:]}" for i in range(len(self.servers)))

    def running(self, iid: str, node: str) -> Any:
        row = self.row(iid)
        if row is not None and row["node"] == node and row["state"] == "running":
            return row if alive(row["pid"]) else None
        return None

    def token(self, i: int) -> str:
        """An admin token made on node ``i`` (tokens live in the shared database)."""
        argv = [sys.executable, "-m", "tenement", "token-gen"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        subprocess.run(
            self.network.command(self.network.nodes[i], argv),
            cwd=self.directories[i],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        return (self.directories[i] / "data" / "api_token").read_text().strip()

    def get(self, i: int, host: str, path: str = "/", token: str | None = None) -> bytes:
        """A request to node ``i`` from inside its own namespace (a partition leaves it that)."""
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
        with self.network.socket(self.network.nodes[i]) as client:
            client.settimeout(10)
            client.connect((self.network.addresses[i], PORT))
            client.sendall(request.encode())
            answer = b""
            try:
                while chunk := client.recv(65536):
                    answer += chunk
            except TimeoutError:
                raise AssertionError(
                    f"n{i} did not answer {host}{path} within 10 s (got {answer[:200]!r}):\n"
                    f"{self.log(i)[-4000:]}"
                ) from None
            return answer

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()
        kill_tenants_recorded_by(self.engine)
        self.engine.dispose()


@contextlib.contextmanager
def net_fleet(base: Path, timeout: float) -> Iterator[NetFleet]:
    pytest.importorskip("psycopg")
    try:
        with (
            fleet_network(3) as network,
            running_cluster(host=network.hub_address, netns=network.hub) as cluster,
        ):
            made = NetFleet(network, cluster, base, timeout)
            made.give_secrets()
            try:
                yield made
            finally:
                made.close()
    except (Unavailable, NoPostgreSQL) as exc:
        pytest.skip(str(exc))


async def _three_nodes_with_tenants_on_n0(fleet: NetFleet) -> tuple[Any, Any]:
    for i in range(3):
        fleet.start(i)
    web = await fleet.until("web:alice on n0", lambda: fleet.running("web:alice", "n0"))
    db = await fleet.until("db:bob on n0", lambda: fleet.running("db:bob", "n0"))
    for name in fleet.names:
        await fleet.until(f"{name} up", lambda n=name: (fleet.node(n) or {}).get("state") == "up")
    return web, db


async def test_a_killed_server_re_adopts_its_tenants_and_nothing_moves(tmp_path: Path) -> None:
    # long enough that the restarted server is back before its peers may declare it down
    with net_fleet(tmp_path, timeout=15) as fleet:
        web, db = await _three_nodes_with_tenants_on_n0(fleet)
        fleet.kill(0)
        assert alive(web["pid"]) and alive(db["pid"])  # tenants outlive their server
        fleet.start(0)
        await fleet.until("n0 re-adopted", lambda: "adopted 2 running instances" in fleet.log(0))
        for before in (web, db):
            now = fleet.row(before["instance_id"])
            assert (now["node"], now["epoch"], now["pid"]) == ("n0", 0, before["pid"])
            assert alive(now["pid"])
        assert "down" not in (fleet.node("n0")["state"], fleet.node("n1")["state"])
        for i in (1, 2):
            assert "declared fleet node" not in fleet.log(i)


async def test_a_partitioned_node_fences_itself_and_its_stateless_tenant_runs_elsewhere(
    tmp_path: Path,
) -> None:
    with net_fleet(tmp_path, timeout=3) as fleet:
        web, db = await _three_nodes_with_tenants_on_n0(fleet)
        old_web, old_db = web["pid"], db["pid"]
        token = fleet.token(1)
        fleet.network.partition(0)
        cut_at = time.monotonic()

        # sampled until the tenant runs on another node: the old copy was last seen
        # alive before the new one was started
        old_seen_at = time.time()

        def moved() -> Any:
            nonlocal old_seen_at
            if alive(old_web):
                old_seen_at = time.time()
            row = fleet.row("web:alice")
            new = row["pid"] if row["node"] != "n0" and row["state"] == "running" else None
            return row if alive(new) else None

        elsewhere = await fleet.until("web:alice elsewhere", moved)
        failover_s = time.monotonic() - cut_at
        assert old_seen_at < elsewhere["started_at"], (old_seen_at, elsewhere["started_at"])
        assert elsewhere["node"] in ("n1", "n2") and elsewhere["epoch"] == 1
        assert not alive(old_web)
        # the persisted tenant is orphaned (its data is on n0's disk), and fenced there
        await fleet.until("db:bob orphaned", lambda: fleet.row("db:bob")["state"] == "orphaned")
        await fleet.until("db:bob stopped on n0", lambda: not alive(old_db))
        assert fleet.row("db:bob")["node"] == "n0"
        assert "fenced itself" in fleet.log(0)
        # its peers list it, orphaned, with its node
        listed = fleet.get(1, "localhost", "/api/instances", token)
        assert listed.startswith(b"HTTP/1.1 200"), listed[:300]
        items = json.loads(listed.split(b"\r\n\r\n", 1)[1])
        [bob] = [item for item in items if item["id"] == "db:bob"]
        assert (bob["state"], bob["node"], bob["pid"]) == ("orphaned", "n0", None)
        # the fenced node serves none of its tenants: 503 with Retry-After
        answer = fleet.get(0, "bob.db.localhost")
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"\r\nretry-after: 3\r\n" in answer.lower()

        fleet.network.heal(0)
        await fleet.until("n0 rejoined", lambda: "back in the fleet" in fleet.log(0))
        back = await fleet.until("db:bob back on n0", lambda: fleet.running("db:bob", "n0"))
        assert back["pid"] != old_db and back["epoch"] == 0
        # what moved stays where it went, untouched
        now = fleet.row("web:alice")
        assert (now["node"], now["epoch"], now["pid"]) == (
            elsewhere["node"],
            1,
            elsewhere["pid"],
        )
        assert alive(now["pid"]) and not alive(old_web)
        assert "web:alice" in fleet.log(0).split("were re-placed on other nodes")[-1]
        print(f"failover: partition to web:alice running elsewhere in {failover_s:.1f} s")


async def test_a_node_lost_whole_comes_back_to_its_persisted_tenant_only(tmp_path: Path) -> None:
    """kill -9 of the server and its tenants (the host died): the stateless tenant starts
    elsewhere, epoch + 1; the node started again revives its orphaned tenant from its
    row and starts no copy of the one that moved."""
    with net_fleet(tmp_path, timeout=3) as fleet:
        web, db = await _three_nodes_with_tenants_on_n0(fleet)
        fleet.kill(0)
        for pid in (web["pid"], db["pid"]):
            os.killpg(pid, 9)
        lost_at = time.monotonic()

        def elsewhere() -> Any:
            row = fleet.row("web:alice")
            return row if row["node"] != "n0" and fleet.running("web:alice", row["node"]) else None

        moved = await fleet.until("web:alice elsewhere", elsewhere)
        failover_s = time.monotonic() - lost_at
        assert moved["epoch"] == 1
        await fleet.until("db:bob orphaned", lambda: fleet.row("db:bob")["state"] == "orphaned")

        # started again without [instances]: what brings db:bob back is its orphaned row
        config_file = fleet.directories[0] / "tenement.toml"
        config_file.write_text(config_file.read_text().split("[instances]")[0])
        fleet.start(0)
        back = await fleet.until("db:bob back on n0", lambda: fleet.running("db:bob", "n0"))
        assert back["pid"] != db["pid"] and back["epoch"] == 0
        await fleet.until("n0 up", lambda: fleet.node("n0")["state"] == "up")
        now = fleet.row("web:alice")
        assert (now["node"], now["epoch"], now["pid"]) == (moved["node"], 1, moved["pid"])
        assert "started web:alice" not in fleet.log(0).split("joined the fleet")[-1]
        print(f"failover: node killed to web:alice running elsewhere in {failover_s:.1f} s")
