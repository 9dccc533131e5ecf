"""The seed's rollback with real processes: a newer release, this one put back, the newer again.

tests/fdholder.py holds the listening socket as systemd does. The two "binaries" are
this tree and a copy of it made newer (tests/newer_release.py: a higher version and one
revision that only adds a table and a defaulted column). Swapping them is what a
rollback is: no `ten db downgrade`, no restore. The older release runs on the schema
the newer one left (inside its compatibility window), and the newer one finds its data
when it comes back.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from tenement._version import __version__
from tenement.store.schema import HEAD_REVISION
from tenement.store.window import release
from tests.fdholder import FdHolder, open_fd_holder
from tests.integration.server.test_serve_lifecycle import CONFIG, TENANT_HOST, tenant_pid
from tests.integration.server.test_switchover import free_port
from tests.loadgen import Load, keep_alive_client, one_shot_client
from tests.newer_release import (
    EXTRA_COLUMN,
    EXTRA_DEFAULT,
    EXTRA_REVISION,
    EXTRA_TABLE,
    newer_source_tree,
)

THIS_RELEASE = ".".join(str(part) for part in release(__version__))
NEWER_VERSION = f"{release(__version__)[0]}.{release(__version__)[1]}.99"


def ten(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m tenement ARGS`` in ``directory``, finished."""
    return subprocess.run(
        [sys.executable, "-m", "tenement", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def newer_env(tmp_path: Path, oldest_release: str) -> dict[str, str]:
    tree = newer_source_tree(tmp_path / "newer", NEWER_VERSION, oldest_release=oldest_release)
    return {**os.environ, "PYTHONPATH": str(tree)}


def database(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(directory / "data" / "tenement.db")


async def serve(holder: FdHolder, directory: Path, env: dict[str, str] | None) -> None:
    await holder.start(
        [sys.executable, "-m", "tenement", "serve"],
        cwd=directory,
        env={} if env is None else {"PYTHONPATH": env["PYTHONPATH"]},
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
    )
    with trio.fail_after(30):
        await holder.wait_notify("READY=1")


async def spawn(url: str, token: str, tenant: str) -> None:
    async with httpx.AsyncClient(
        base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        spawned = await api.post("/api/instances/spawn", json={"process": "echo", "id": tenant})
        assert spawned.status_code == 200, spawned.text


async def listed(url: str, token: str) -> set[str]:
    async with httpx.AsyncClient(
        base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        return {i["id"] for i in (await api.get("/api/instances")).json()}


async def test_the_older_release_runs_on_the_newer_schema_and_the_newer_continues(
    directory: Path, tmp_path: Path
) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    newer = newer_env(tmp_path, THIS_RELEASE)
    assert ten(directory, "token-gen", env=newer).returncode == 0
    token = (directory / "data" / "api_token").read_text().strip()
    async with open_fd_holder(directory) as holder:
        await serve(holder, directory, newer)
        first = await tenant_pid(holder.url)
        await spawn(holder.url, token, "b")
        with database(directory) as db:
            db.execute(f"UPDATE instances SET {EXTRA_COLUMN} = 'kept' WHERE instance_id = 'echo:a'")
        load = Load()
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(one_shot_client, holder.port, load, stop, TENANT_HOST)
            for _ in range(2):
                nursery.start_soon(keep_alive_client, holder.url, load, stop, TENANT_HOST)
            with trio.fail_after(120):
                await load.wait_for_more(30)
                # the rollback: the older release put back, nothing else done
                assert await holder.stop(signal.SIGUSR2) == 0
                await serve(holder, directory, None)
                await load.wait_for_more(30)
                await spawn(holder.url, token, "c")
                assert await listed(holder.url, token) == {"echo:a", "echo:b", "echo:c"}
                current = ten(directory, "db", "current")
                assert f"revision {EXTRA_REVISION}, ahead of this tenement's" in current.stdout
                assert ten(directory, "db", "check").returncode == 0
                # and forward again: the newer release finds its column and its data
                assert await holder.stop(signal.SIGUSR2) == 0
                await serve(holder, directory, newer)
                await load.wait_for_more(30)
            stop.set()
        assert not load.failures, f"{sum(load.failures.values())} of {load.sent}: {load.failures}"
        assert load.pids == {first}, "the tenant was restarted"
        assert await listed(holder.url, token) == {"echo:a", "echo:b", "echo:c"}
        with database(directory) as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (
                EXTRA_REVISION,
            )
            assert db.execute(f"SELECT count(*) FROM {EXTRA_TABLE}").fetchone() == (1,)
            features = dict(db.execute(f"SELECT instance_id, {EXTRA_COLUMN} FROM instances"))
        # the newer release's value survived the older one's writes to the same row; the
        # row the older release made has the column's default
        assert features == {"echo:a": "kept", "echo:b": EXTRA_DEFAULT, "echo:c": EXTRA_DEFAULT}
        log = (directory / "serve.log").read_text()
        assert f"database is at revision {EXTRA_REVISION}, ahead of this tenement's" in log
        assert await holder.stop(signal.SIGTERM) == 0


async def test_a_newer_major_is_refused_before_anything_is_served(
    directory: Path, tmp_path: Path
) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    newer = newer_env(tmp_path, "99.0.0")
    assert ten(directory, "token-gen", env=newer).returncode == 0
    check = ten(directory, "db", "check")
    assert check.returncode == 2
    assert "it needs tenement 99.0.0 or later" in check.stdout
    served = ten(directory, "serve", "--port", str(free_port()))
    assert served.returncode == 1
    assert "needs tenement 99.0.0 or later" in served.stderr
    assert f"ten db downgrade {HEAD_REVISION}` with tenement {NEWER_VERSION}" in served.stderr
    with database(directory) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (EXTRA_REVISION,)
        assert db.execute("SELECT count(*) FROM instances").fetchone() == (0,)
