"""Real `ten serve` nodes of one fleet on loopback, sharing a throwaway PostgreSQL.

Each node is a `python -m tenement serve` of its own directory (data dir, port, ``[fleet]
node``), all on one database of the session's cluster (tests/postgresql.py). The test's
tenants are ended at teardown from the instance rows, whatever node ran them.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import trio

from tenement.store import Store, migrate_to_head, open_store
from tests.apps import PID_APP as APP
from tests.fleet.secret_files import secret_in, write_secret
from tests.postgresql import Cluster
from tests.tenants import kill_tenants_recorded_by

#: short, so that a lost node is declared down soon; longer than a loaded machine's
#: pauses between two one-second heartbeats
NODE_TIMEOUT = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_config(url: str, name: str, port: int, *, fleet: bool = True) -> str:
    text = f"""
[settings]
data_dir = "data"
database_url = "{url}"
health_check_interval = 1
# the tenants are this test's scripts, wherever the checkout is: the server's user
tenant_users = false

[service.echo]
command = "{sys.executable} {APP}"
isolation = "process"
health = "/"
"""
    if fleet:
        text += f"""
[fleet]
node = "{name}"
advertise = "127.0.0.1:{port}"
node_timeout = {NODE_TIMEOUT}
"""
    return text


class Node:
    """One node: its directory, port, and the `ten serve` processes started in it."""

    def __init__(self, base: Path, url: str, name: str, port: int | None = None) -> None:
        self.name = name
        self.directory = base / name
        self.directory.mkdir()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        (self.directory / "tenement.toml").write_text(node_config(url, name, self.port))

    @property
    def log(self) -> str:
        path = self.directory / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def spawn_server(self, port: int | None = None, *options: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenement",
                "serve",
                "--port",
                str(port or self.port),
                *options,
            ],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
        )
        self.processes.append(process)
        return process

    async def start(self, *options: str) -> None:
        """Start the node's server and wait until it answers /health."""
        self.process = self.spawn_server(None, *options)
        await wait_healthy(self.url, self.process, self)

    def kill(self) -> None:
        """SIGKILL the server (its tenants live on, in their own process groups)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def make_fleet_secret(directory: Path) -> str:
    """`ten token-gen --fleet` in ``directory`` (its config's database): the secret."""
    made = subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen", "--fleet"],
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
    )
    return secret_in(made.stdout)


async def wait_healthy(url: str, process: subprocess.Popen[bytes], node: Node) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        with trio.fail_after(60):
            while True:
                assert process.poll() is None, f"the server exited:\n{node.log[-3000:]}"
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health")).status_code == 200:
                        return
                await trio.sleep(0.05)


class Fleet:
    """The nodes of one test, their database, and the admin token."""

    def __init__(self, base: Path, cluster: Cluster) -> None:
        self.base = base
        self.database = cluster.new_database()
        self.url = cluster.socket_url(self.database)
        self.engine = sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"))
        self.nodes: list[Node] = []
        self.token: str | None = None
        self.secret: str | None = None

    def node(self, name: str, port: int | None = None) -> Node:
        """A new node (on ``port``: a socket held for it, else a free one)."""
        node = Node(self.base, self.url, name, port)
        self.nodes.append(node)
        self.give_secret(node)
        return node

    def give_secret(self, node: Node) -> None:
        """Put the fleet secret in ``node``'s default secret file (made on first use)."""
        if self.secret is None:
            self.secret = make_fleet_secret(node.directory)
        write_secret(node.directory / "data" / "fleet_secret", self.secret)

    def make_token(self, node: Node) -> str:
        subprocess.run(
            [sys.executable, "-m", "tenement", "token-gen"],
            cwd=node.directory,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.token = (node.directory / "data" / "api_token").read_text().strip()
        return self.token

    def api(self, node: Node) -> httpx.AsyncClient:
        assert self.token is not None
        return httpx.AsyncClient(
            base_url=node.url, headers={"authorization": f"Bearer {self.token}"}, timeout=30
        )

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())

    def node_row(self, name: str) -> Any:
        [row] = self.rows("SELECT * FROM nodes WHERE name = :n", n=name)
        return row

    def instance_row(self, iid: str) -> Any:
        [row] = self.rows("SELECT * FROM instances WHERE instance_id = :i", i=iid)
        return row

    def close(self) -> None:
        for node in self.nodes:
            node.stop_all()
        kill_tenants_recorded_by(self.engine)
        self.engine.dispose()


@pytest.fixture
def fleet(tmp_path: Path, pg_cluster: Cluster) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path, pg_cluster)
    try:
        yield fleet
    finally:
        fleet.close()


def ten(node: Node, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `ten` CLI against ``node``'s server."""
    options = ["--server", node.url] + (["--token", token] if token else [])
    return subprocess.run(
        [sys.executable, "-m", "tenement", *args, *options],
        cwd=node.directory,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def stores(pg_cluster: Cluster) -> Iterator[dict[str, Store]]:
    """Stores of nodes a, b and c on one fresh database."""
    url = pg_cluster.socket_url(pg_cluster.new_database())
    opened: dict[str, Store] = {}
    try:
        for name in "abc":
            store = open_store(url).__enter__()
            store.node = name
            opened[name] = store
        migrate_to_head(opened["a"], backup_dir=None)
        yield opened
    finally:
        for store in opened.values():
            store.close()
