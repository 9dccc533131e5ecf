"""A fleet of real `ten serve` nodes, each in its own network namespace (tests/netns.py),
on one PostgreSQL in the hub namespace; clients talk from the hub, as a front proxy would.

Used by tests/fleet/test_fleet_routing.py and bench/fleet.py. Each node listens on its
own address, port :data:`PORT`, and advertises it; the nodes reach each other and the
database over the bridge only.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import sqlalchemy as sa
import trio

from tests.fleet.secret_files import secret_in, write_secret
from tests.netns import FleetNetwork, Unavailable, fleet_network
from tests.postgresql import Cluster, running_cluster
from tests.postgresql import Unavailable as NoPostgreSQL
from tests.tenants import kill_tenants_recorded_by

PORT = 8080
BACKEND_APP = Path(__file__).parents[1] / "integration" / "proxy" / "backend_app.py"
NODE_TIMEOUT = 3


def node_config(url: str, name: str, address: str, *, extra: str = "") -> str:
    backend = f"{sys.executable} {BACKEND_APP} --bind 127.0.0.1:$PORT --name {name}"
    return f"""
[settings]
data_dir = "data"
database_url = "{url}"
health_check_interval = 1
tenant_users = false

[service.echo]
command = "sh -c 'exec {backend}'"
isolation = "process"
health = "/"

[service.wt]
command = "sh -c 'exec {backend}'"
isolation = "process"
health = "/"

# installed on a and b only (placement tests)
[service.pinned]
command = "sh -c 'exec {backend}'"
isolation = "process"
health = "/"
nodes = ["a", "b"]

# installed on a node that never joins
[service.stray]
command = "sh -c 'exec {backend}'"
isolation = "process"
nodes = ["zz"]

[service.sleepy]
command = "sh -c 'exec {backend}'"
isolation = "process"
health = "/"
idle_timeout = 2

[fleet]
node = "{name}"
advertise = "{address}:{PORT}"
node_timeout = {NODE_TIMEOUT}
{extra}
"""


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with trio.fail_after(timeout or 60):
            return await self._stream.receive_some(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with trio.fail_after(timeout or 60):
            await self._stream.send_all(buffer)

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> Any:
        return None


class NamespaceBackend(httpcore.AsyncNetworkBackend):
    """httpcore's connections, made from inside a namespace (the hub)."""

    def __init__(self, network: FleetNetwork, namespace: str) -> None:
        self._network = network
        self._namespace = namespace

    async def connect_stream(self, host: str, port: int) -> trio.SocketStream:
        sock = self._network.socket(self._namespace)
        sock.setblocking(False)
        wrapped = trio.socket.from_stdlib_socket(sock)
        try:
            with trio.fail_after(10):
                await wrapped.connect((host, port))
        except BaseException:
            wrapped.close()
            raise
        return trio.SocketStream(wrapped)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.connect_stream(host, port))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


class NetNode:
    def __init__(self, fleet: NetFleet, index: int, name: str) -> None:
        self.fleet = fleet
        self.name = name
        self.namespace = fleet.network.nodes[index]
        self.address = fleet.network.addresses[index]
        self.url = f"http://{self.address}:{PORT}"
        self.directory = fleet.base / name
        self.directory.mkdir()
        (self.directory / "tenement.toml").write_text(
            node_config(fleet.url, name, self.address, extra=fleet.extra)
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.directory / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def run(self, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """``python -m tenement ARGV`` in this node's namespace and directory."""
        return subprocess.run(
            self.fleet.network.command(self.namespace, [sys.executable, "-m", "tenement", *argv]),
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=60,
            **kwargs,
        )

    def spawn_server(self) -> None:
        self.process = subprocess.Popen(
            self.fleet.network.command(
                self.namespace,
                [sys.executable, "-m", "tenement", "serve", "--bind", f"{self.address}:{PORT}"],
            ),
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
        )

    async def wait_healthy(self) -> None:
        async with self.fleet.client(self) as client:
            with trio.fail_after(60):
                while True:
                    assert self.process is not None
                    assert self.process.poll() is None, f"{self.name} exited:\n{self.log[-3000:]}"
                    with contextlib.suppress(httpx.TransportError, trio.TooSlowError, OSError):
                        if (await client.get("/health")).status_code == 200:
                            return
                    await trio.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class NetFleet:
    """Nodes in ``network``'s namespaces on ``cluster`` (listening in the hub)."""

    def __init__(
        self, base: Path, network: FleetNetwork, cluster: Cluster, *, extra: str = ""
    ) -> None:
        self.base = base
        self.network = network
        self.cluster = cluster
        self.extra = extra
        cluster.allow_subnet(network.subnet)
        role = cluster.new_role("secret")
        self.database = cluster.new_database(owner=role)
        self.url = cluster.tcp_url(self.database, role, "secret")
        self.engine = sa.create_engine(
            cluster.socket_url(self.database).replace("postgresql://", "postgresql+psycopg://")
        )
        self.nodes: list[NetNode] = []
        self.token = ""
        self.secret = ""

    def add(self, name: str) -> NetNode:
        node = NetNode(self, len(self.nodes), name)
        self.nodes.append(node)
        return node

    def make_secrets(self) -> None:
        """`ten token-gen --fleet` on the first node; its secret in every node's file;
        and an admin token."""
        first = self.nodes[0]
        made = first.run("token-gen", "--fleet", check=True)
        self.secret = secret_in(made.stdout)
        for node in self.nodes:
            write_secret(node.directory / "data" / "fleet_secret", self.secret)
        first.run("token-gen", check=True)
        self.token = (first.directory / "data" / "api_token").read_text().strip()

    def client(self, node: NetNode, host: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """A client in the hub talking to ``node`` (with ``host`` as its Host)."""
        transport = httpx.AsyncHTTPTransport()
        transport._pool = httpcore.AsyncConnectionPool(
            network_backend=NamespaceBackend(self.network, self.network.hub)
        )
        headers = {"host": host} if host else {}
        return httpx.AsyncClient(
            transport=transport, base_url=node.url, headers=headers, timeout=60, **kwargs
        )

    def api(self, node: NetNode) -> httpx.AsyncClient:
        client = self.client(node)
        client.headers["authorization"] = f"Bearer {self.token}"
        return client

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())

    def instance_row(self, iid: str) -> Any:
        [row] = self.rows("SELECT * FROM instances WHERE instance_id = :i", i=iid)
        return row

    def close(self) -> None:
        for node in self.nodes:
            if node.alive:
                node.kill()
        kill_tenants_recorded_by(self.engine)
        self.engine.dispose()


@contextlib.contextmanager
def started_fleet(
    base: Path, network: FleetNetwork, cluster: Cluster, names: list[str], *, extra: str = ""
) -> Iterator[NetFleet]:
    """The nodes ``names`` started, healthy, with secrets and a token; stopped on exit."""
    fleet = NetFleet(base, network, cluster, extra=extra)
    try:
        for name in names:
            fleet.add(name)
        fleet.make_secrets()

        async def start_all() -> None:
            for node in fleet.nodes:
                node.spawn_server()
            for node in fleet.nodes:
                await node.wait_healthy()

        trio.run(start_all)
        yield fleet
    finally:
        fleet.close()


@contextlib.contextmanager
def namespaced_fleet(base: Path, names: list[str]) -> Iterator[NetFleet]:
    """:func:`started_fleet` of ``names``, each in a namespace of its own, on a
    PostgreSQL in the hub; skips the test where namespaces or PostgreSQL cannot be had."""
    pytest.importorskip("psycopg")
    try:
        with (
            fleet_network(len(names)) as network,
            running_cluster(host=network.hub_address, netns=network.hub) as cluster,
            started_fleet(base, network, cluster, names) as fleet,
        ):
            yield fleet
    except (Unavailable, NoPostgreSQL) as exc:
        pytest.skip(str(exc))
