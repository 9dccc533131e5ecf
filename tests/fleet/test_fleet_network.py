"""The fleet tests' network (tests/netns.py) does what they rely on: nodes reach each
other and the hub's PostgreSQL, a partition cuts a node off both ways, healing joins it
again, and no namespace has a route out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.netns import FleetNetwork, Unavailable, fleet_network
from tests.postgresql import Unavailable as NoPostgreSQL
from tests.postgresql import running_cluster

PORT = 7000
#: answers every connection with its own namespace's address, then closes it
NAME_SERVER = """
import socket, sys
with socket.create_server((sys.argv[1], int(sys.argv[2]))) as server:
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        with connection:
            connection.sendall(sys.argv[1].encode())
"""


@pytest.fixture
def network() -> Iterator[FleetNetwork]:
    try:
        with fleet_network(3) as made:
            yield made
    except Unavailable as exc:
        pytest.skip(str(exc))


def _serve_names(network: FleetNetwork) -> list[subprocess.Popen[str]]:
    servers = []
    for namespace, address in zip(network.nodes, network.addresses, strict=True):
        argv = [sys.executable, "-c", NAME_SERVER, address, str(PORT)]
        server = subprocess.Popen(
            network.command(namespace, argv), stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        servers.append(server)
    return servers


def _ask(network: FleetNetwork, source: str, address: str, timeout: float = 3.0) -> str:
    with network.socket(source) as probe:
        probe.settimeout(timeout)
        probe.connect((address, PORT))
        return probe.recv(100).decode()


def test_nodes_reach_each_other_until_partitioned(network: FleetNetwork) -> None:
    servers = _serve_names(network)
    try:
        first, second, third = network.nodes
        a, b, c = network.addresses
        assert _ask(network, second, a) == a
        assert _ask(network, first, c) == c
        assert _ask(network, network.hub, b) == b

        network.partition(0)
        for source in (second, network.hub):
            with pytest.raises(OSError):  # a timeout or "no route to host"
                _ask(network, source, a, timeout=1.0)
        with pytest.raises(OSError):
            _ask(network, first, b, timeout=1.0)
        # the others still talk
        assert _ask(network, third, b) == b
        # and the cut-off node still reaches itself
        assert _ask(network, first, a) == a

        network.heal(0)
        assert _ask(network, second, a, timeout=5.0) == a
    finally:
        for server in servers:
            server.kill()
            server.wait()


def test_no_namespace_has_a_route_out(network: FleetNetwork) -> None:
    for namespace in [network.hub, *network.nodes]:
        routes = subprocess.run(
            ["ip", "-n", namespace, "route", "show"], capture_output=True, text=True, check=True
        ).stdout
        assert "default" not in routes
        assert all(line.startswith(network.subnet) for line in routes.splitlines()), routes


def test_a_socket_stays_in_its_namespace(network: FleetNetwork) -> None:
    """A socket made for a node binds that node's address, which the hub does not have."""
    with network.socket(network.nodes[1]) as inside:
        inside.bind((network.addresses[1], 0))
    with network.socket(network.hub) as hub, pytest.raises(OSError):
        hub.bind((network.addresses[1], 0))


def _select_one(url: str) -> str:
    return f"import psycopg; print(psycopg.connect({url!r}).execute('SELECT 1').fetchone()[0])"


def test_nodes_reach_postgresql_in_the_hub(network: FleetNetwork) -> None:
    pytest.importorskip("psycopg")
    try:
        with running_cluster(host=network.hub_address, netns=network.hub) as cluster:
            cluster.allow_subnet(network.subnet)
            role = cluster.new_role("secret")
            url = cluster.tcp_url(cluster.new_database(owner=role), role, "secret")
            node = network.nodes[2]
            answer = subprocess.run(
                network.command(node, [sys.executable, "-c", _select_one(url)]),
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert answer.stdout.strip() == "1", answer.stderr
            network.partition(2)
            cut = subprocess.run(
                network.command(
                    node, [sys.executable, "-c", _select_one(url + "?connect_timeout=2")]
                ),
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert cut.returncode != 0 and "timeout" in cut.stderr.lower(), cut.stderr
    except NoPostgreSQL as exc:
        pytest.skip(str(exc))
