"""`ten serve` on PostgreSQL while the database is not there yet (issue #17).

Held as systemd holds it (tests/fdholder.py: the listening socket, NOTIFY_SOCKET): a
server started before its database waits with ``STATUS=`` naming where, for at most
``database_start_timeout``, then serves once the database is up; a failure waiting cannot
mend (a wrong password) ends it at once. The password is in the URL and must appear in no
status and no log line.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.fdholder import FdHolder, open_fd_holder
from tests.postgresql import Cluster, Unavailable, running_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A cluster of this test's own: the test stops and starts it."""
    try:
        with running_cluster() as cluster:
            yield cluster
    except Unavailable as exc:
        pytest.skip(str(exc))


def write_config(directory: Path, url: str, start_timeout: float) -> None:
    (directory / "tenement.toml").write_text(
        f"""
[settings]
data_dir = "data"
database_url = "{url}"
database_start_timeout = {start_timeout}
tenant_users = false
"""
    )


async def start(holder: FdHolder, directory: Path) -> None:
    await holder.start(
        [sys.executable, "-m", "tenement", "serve"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
    )


async def wait_status(holder: FdHolder, starting: str) -> str:
    """The first ``STATUS=`` of the current child that starts with ``starting``."""
    assert holder.process is not None
    while True:
        for note in holder.notifications:
            status = note.fields.get("STATUS", "")
            if note.pid == holder.process.pid and status.startswith(starting):
                return status
        assert holder.process.poll() is None, "the server exited"
        await trio.sleep(0.05)


async def test_serve_waits_for_a_database_that_starts_after_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    password = f"Pw-{uuid.uuid4().hex}"
    role = cluster.new_role(password)
    database = cluster.new_database(owner=role)
    cluster.stop()
    write_config(tmp_path, cluster.tcp_url(database, role, password), start_timeout=120)
    async with open_fd_holder(tmp_path) as holder:
        await start(holder, tmp_path)
        with trio.fail_after(30):
            waiting = await wait_status(holder, "waiting for the database")
        assert f'database "{database}" at 127.0.0.1:{cluster.port} as user {role}' in waiting
        assert "Connection refused" in waiting
        cluster.start()
        with trio.fail_after(60):
            await holder.wait_notify("READY=1")
        async with httpx.AsyncClient(base_url=holder.url) as client:
            assert (await client.get("/health")).status_code == 200
        assert await holder.stop() == 0
    log = (tmp_path / "serve.log").read_text()
    assert "trying again" in log
    statuses = [note.fields.get("STATUS", "") for note in holder.notifications]
    assert password not in log + "\n".join(statuses)


@pytest.mark.parametrize("case", ["wrong password", "down past the timeout"])
async def test_serve_gives_up_with_one_clear_error(
    case: str, cluster: Cluster, tmp_path: Path
) -> None:
    password = f"Pw-{uuid.uuid4().hex}"
    role = cluster.new_role(password)
    database = cluster.new_database(owner=role)
    if case == "wrong password":
        # waiting cannot mend it: the long timeout is never used
        write_config(tmp_path, cluster.tcp_url(database, role, "not-" + password), 600)
    else:
        cluster.stop()
        write_config(tmp_path, cluster.tcp_url(database, role, password), 1)
    async with open_fd_holder(tmp_path) as holder:
        await start(holder, tmp_path)
        assert holder.process is not None
        with trio.fail_after(60):
            assert await holder.process.wait() == 1
    log = (tmp_path / "serve.log").read_text()
    [error] = [line for line in log.splitlines() if line.startswith("Error:")]
    assert f'database "{database}" at 127.0.0.1:{cluster.port} as user {role}' in error
    assert ("password was refused" if case == "wrong password" else "Connection refused") in error
    assert "READY" not in {key for note in holder.notifications for key in note.fields}
    statuses = [note.fields.get("STATUS", "") for note in holder.notifications]
    assert password not in log + "\n".join(statuses)


async def test_a_database_lost_while_serving_ends_the_server_with_one_clear_error(
    cluster: Cluster, tmp_path: Path
) -> None:
    """What docs/operations.md says happens while the database is down after start: the
    server stops at its next write (the lease is renewed every 10 s), with one ``Error:``
    line instead of a traceback, and without the password."""
    password = f"Pw-{uuid.uuid4().hex}"
    role = cluster.new_role(password)
    database = cluster.new_database(owner=role)
    write_config(tmp_path, cluster.tcp_url(database, role, password), start_timeout=1)
    async with open_fd_holder(tmp_path) as holder:
        await start(holder, tmp_path)
        with trio.fail_after(60):
            await holder.wait_notify("READY=1")
        cluster.stop()
        assert holder.process is not None
        with trio.fail_after(60):
            assert await holder.process.wait() == 1
    cluster.start()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
    [error] = [line for line in log.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: lost the database while serving: cannot connect to ")
    assert f'database "{database}" at 127.0.0.1:{cluster.port} as user {role}' in error
    assert password not in log
