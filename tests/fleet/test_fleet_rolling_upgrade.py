"""A fleet upgraded node by node under load, then one node rolled back (issue 19).

Three nodes on one PostgreSQL (tests/fleet/conftest.py), each with its listening socket
held as systemd holds it (tests/fdholder.py), so that replacing a node's server queues
its clients instead of refusing them. Release N is this tree; N+1 is a copy of it made
newer, with one more revision that only adds (tests/newer_release.py). The first node
to run N+1 migrates the shared database; the nodes still on N keep serving on the new
schema, inside their compatibility window, until their turn comes.

The nodes share loopback, each on its own port and data directory: a rolling upgrade
replaces servers and migrates the database, and needs no partition, so the namespaces
of the failover tests would only add their cost.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from tenement._version import __version__
from tenement.store.window import release
from tests.fdholder import FdHolder, open_fd_holder
from tests.fleet.conftest import Fleet, Node
from tests.loadgen import Load, keep_alive_client, one_shot_client
from tests.newer_release import (
    EXTRA_COLUMN,
    EXTRA_DEFAULT,
    EXTRA_REVISION,
    EXTRA_TABLE,
    REPO,
    newer_source_tree,
)

THIS_RELEASE = ".".join(str(part) for part in release(__version__))
NEWER_VERSION = f"{release(__version__)[0]}.{release(__version__)[1]}.99"
NAMES = ("a", "b", "c")


def host(tenant: str) -> str:
    return f"{tenant}.echo.localhost"


async def serve(holder: FdHolder, node: Node, tree: Path) -> None:
    """Start the node's server from the source ``tree`` on its held socket; wait for READY."""
    await holder.start(
        [sys.executable, "-m", "tenement", "serve"],
        cwd=node.directory,
        env={"PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=open(node.directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
    )
    with trio.fail_after(60):
        await holder.wait_notify("READY=1")


async def replace(holder: FdHolder, node: Node, tree: Path) -> None:
    """What a package upgrade (or its rollback) does to one node: the old server leaves
    its tenants running (SIGUSR2, as `systemctl restart` under the shipped unit), the
    one from ``tree`` adopts them on the same socket."""
    assert await holder.stop(signal.SIGUSR2) == 0, node.log[-3000:]
    await serve(holder, node, tree)


@contextlib.asynccontextmanager
async def held_sockets(base: Path) -> AsyncIterator[list[FdHolder]]:
    async with contextlib.AsyncExitStack() as stack:
        holders = []
        for name in NAMES:
            # short paths: the holder's notify socket lives here (107-byte limit)
            directory = base / f"h{name}"
            directory.mkdir()
            holders.append(await stack.enter_async_context(open_fd_holder(directory)))
        yield holders


async def test_a_fleet_upgraded_node_by_node_and_one_rolled_back_fails_no_request(
    tmp_path: Path, fleet: Fleet
) -> None:
    newer = newer_source_tree(tmp_path / "newer", NEWER_VERSION, oldest_release=THIS_RELEASE)
    async with held_sockets(tmp_path) as holders:
        pairs = zip(NAMES, holders, strict=True)
        nodes = [fleet.node(name, port=holder.port) for name, holder in pairs]
        fleet.make_token(nodes[0])
        for holder, node in zip(holders, nodes, strict=True):
            await serve(holder, node, REPO)
        # each node runs one tenant, spawned through its own API
        for node in nodes:
            async with fleet.api(node) as api:
                answer = await api.post(
                    "/api/instances/spawn",
                    json={"process": "echo", "id": node.name, "node": node.name},
                )
                assert answer.status_code == 200, answer.text
        before = {row["instance_id"]: row for row in fleet.rows("SELECT * FROM instances")}
        assert {iid: row["node"] for iid, row in before.items()} == {
            f"echo:{name}": name for name in NAMES
        }

        load = Load()
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for index, node in enumerate(nodes):
                # its own tenant straight, and the next node's through it (forwarded)
                nursery.start_soon(one_shot_client, node.port, load, stop, host(node.name))
                following = NAMES[(index + 1) % len(NAMES)]
                nursery.start_soon(keep_alive_client, node.url, load, stop, host(following))
            with trio.fail_after(240):
                await load.wait_for_more(60)
                for holder, node in zip(holders, nodes, strict=True):
                    await replace(holder, node, newer)
                    # the first migrated; the nodes still on N serve on N+1's schema
                    [schema] = fleet.rows("SELECT version_num FROM alembic_version")
                    assert schema["version_num"] == EXTRA_REVISION
                    await load.wait_for_more(60)
                # and one node back to N: the rollback needs no downgrade
                await replace(holders[0], nodes[0], REPO)
                await load.wait_for_more(60)
            stop.set()

        assert not load.failures, f"{sum(load.failures.values())} of {load.sent}: {load.failures}"
        after = {row["instance_id"]: row for row in fleet.rows("SELECT * FROM instances")}
        # nothing moved and nothing restarted: the same processes on the same nodes
        assert load.pids == {str(row["pid"]) for row in before.values()}
        for iid, row in before.items():
            assert (after[iid]["pid"], after[iid]["node"], after[iid]["epoch"]) == (
                row["pid"],
                row["node"],
                row["epoch"],
            )
            # rows written by N (before the upgrade, and by the rolled-back node)
            # keep N+1's column at its default
            assert after[iid][EXTRA_COLUMN] == EXTRA_DEFAULT
        [marked] = fleet.rows(f"SELECT count(*) AS n FROM {EXTRA_TABLE}")
        assert marked["n"] == 1
        versions = {row["name"]: row["version"] for row in fleet.rows("SELECT * FROM nodes")}
        assert versions == {"a": __version__, "b": NEWER_VERSION, "c": NEWER_VERSION}
        assert f"database is at revision {EXTRA_REVISION}, ahead of this tenement's" in (
            nodes[0].log
        )
        for holder in holders:
            assert await holder.stop(signal.SIGTERM) == 0
