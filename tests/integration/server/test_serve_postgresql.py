"""`ten serve` on PostgreSQL while the database is not there yet (issue #17).

Held as systemd holds it (tests/fdholder.py: the listening socket, NOTIFY_SOCKET): a
server started before its database waits with ``STATUS=`` naming where, for at most
``database_start_timeout``, then serves once the database is up; a failure waiting cannot
mend (a wrong password) ends it at once. The password is in the URL and must appear in no
status and no log line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import trio

from tests.fdholder import FdHolder, open_fd_holder
from tests.postgresql import Cluster


@pytest.fixture
def cluster(pg_cluster: Cluster) -> Iterator[Cluster]:
    """The session's cluster (tests/conftest.py). These tests stop and start it: it runs
    again after each, for the tests that follow."""
    yield pg_cluster
    if not pg_cluster.running:
        pg_cluster.start()


class Database(NamedTuple):
    """A database of its own for a test, owned by a role of its own with a password."""

    name: str
    role: str
    password: str
    #: over TCP, the password in it
    url: str


@pytest.fixture
def database(cluster: Cluster) -> Database:
    password = f"Pw-{uuid.uuid4().hex}"
    role = cluster.new_role(password)
    name = cluster.new_database(owner=role)
    return Database(name, role, password, cluster.tcp_url(name, role, password))


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
    cluster: Cluster, database: Database, tmp_path: Path
) -> None:
    cluster.stop()
    write_config(tmp_path, database.url, start_timeout=120)
    async with open_fd_holder(tmp_path) as holder:
        await start(holder, tmp_path)
        with trio.fail_after(30):
            waiting = await wait_status(holder, "waiting for the database")
        assert where(cluster, database) in waiting
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
    assert database.password not in log + "\n".join(statuses)


def where(cluster: Cluster, database: Database) -> str:
    """How the server names ``database`` in a status or an error."""
    return f'database "{database.name}" at 127.0.0.1:{cluster.port} as user {database.role}'


@pytest.mark.parametrize("case", ["wrong password", "down past the timeout"])
async def test_serve_gives_up_with_one_clear_error(
    case: str, cluster: Cluster, database: Database, tmp_path: Path
) -> None:
    if case == "wrong password":
        # waiting cannot mend it: the long timeout is never used
        wrong = cluster.tcp_url(database.name, database.role, "not-" + database.password)
        write_config(tmp_path, wrong, 600)
    else:
        cluster.stop()
        write_config(tmp_path, database.url, 1)
    async with open_fd_holder(tmp_path) as holder:
        await start(holder, tmp_path)
        assert holder.process is not None
        with trio.fail_after(60):
            assert await holder.process.wait() == 1
    log = (tmp_path / "serve.log").read_text()
    [error] = [line for line in log.splitlines() if line.startswith("Error:")]
    assert where(cluster, database) in error
    assert ("password was refused" if case == "wrong password" else "Connection refused") in error
    assert "READY" not in {key for note in holder.notifications for key in note.fields}
    statuses = [note.fields.get("STATUS", "") for note in holder.notifications]
    assert database.password not in log + "\n".join(statuses)


#: answers ``ok <pid>`` on $PORT and prints a line for each request (log lines to write)
PRINTING_APP = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"ok {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"served {self.path}", flush=True)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

TENANT_HOST = "a.echo.localhost"


def with_a_tenant(directory: Path, url: str, start_timeout: float) -> None:
    """The tenement.toml of :func:`write_config` plus one service and its tenant ``a``."""
    write_config(directory, url, start_timeout)
    (directory / "app.py").write_text(PRINTING_APP)
    config = directory / "tenement.toml"
    config.write_text(
        config.read_text()
        + f"""
[service.echo]
command = "{sys.executable} {directory / "app.py"}"
isolation = "process"

[instances]
echo = ["a"]
"""
    )


async def tenant_answer(url: str, path: str = "/") -> str:
    async with httpx.AsyncClient(base_url=url, headers={"host": TENANT_HOST}) as client:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.text


async def serve_the_tenant(holder: FdHolder, directory: Path) -> str:
    """Start the server; the tenant's first answer, once it is ready."""
    await start(holder, directory)
    with trio.fail_after(60):
        await holder.wait_notify("READY=1")
        return await tenant_answer(holder.url)


async def until_logged(holder: FdHolder, log: Path, line: str, url: str, answer: str) -> None:
    """Keep asking the tenant (each answer must be ``answer``) until ``line`` is logged."""
    assert holder.process is not None
    count = 0
    while line not in log.read_text():
        assert holder.process.poll() is None, "the server exited"
        assert await tenant_answer(url, f"/{count}") == answer
        count += 1
        await trio.sleep(0.05)


async def test_a_short_database_outage_loses_nothing(
    cluster: Cluster, database: Database, tmp_path: Path
) -> None:
    """A database restart while serving: requests are served throughout, the tenant and
    the server run on, and the log lines printed meanwhile are indexed once it is back."""
    with_a_tenant(tmp_path, database.url, start_timeout=1)
    log = tmp_path / "serve.log"
    async with open_fd_holder(tmp_path) as holder:
        answer = await serve_the_tenant(holder, tmp_path)
        cluster.stop()
        with trio.fail_after(30):
            await until_logged(holder, log, "the database is out of reach", holder.url, answer)
            await tenant_answer(holder.url, "/during-the-outage")
        cluster.start()
        with trio.fail_after(60):
            await until_logged(holder, log, "the database is reachable again", holder.url, answer)
        token = subprocess.run(
            [sys.executable, "-m", "tenement", "token-gen"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert token.returncode == 0
        key = (tmp_path / "data" / "api_token").read_text().strip()
        async with httpx.AsyncClient(
            base_url=holder.url, headers={"authorization": f"Bearer {key}"}
        ) as api:
            with trio.fail_after(30):
                while True:
                    found = await api.get("/api/logs", params={"search": "during"})
                    assert found.status_code == 200, found.text
                    if any("/during-the-outage" in e["message"] for e in found.json()):
                        break
                    await trio.sleep(0.1)
        assert await tenant_answer(holder.url) == answer
        assert await holder.stop() == 0
    assert "Traceback" not in log.read_text()
    assert database.password not in log.read_text()


async def test_a_long_database_outage_leaves_the_tenants_running_for_the_next_server(
    cluster: Cluster, database: Database, tmp_path: Path
) -> None:
    """Out of reach past what the lease can wait (~20 s): the server ends with one
    ``Error:`` line, the tenant runs on, and the next server adopts it once the database
    is back."""
    with_a_tenant(tmp_path, database.url, start_timeout=60)
    log = tmp_path / "serve.log"
    async with open_fd_holder(tmp_path) as holder:
        answer = await serve_the_tenant(holder, tmp_path)
        cluster.stop()
        assert holder.process is not None
        with trio.fail_after(90):
            # served from memory until the server gives up
            while holder.process.poll() is None:
                try:
                    assert await tenant_answer(holder.url) == answer
                except httpx.TransportError:
                    # asked as it stopped accepting: the request waits in the held socket
                    break
                await trio.sleep(0.2)
            assert await holder.process.wait() == 1
        pid = int(answer.split()[1])
        os.kill(pid, 0)  # the tenant still runs
        cluster.start()
        await start(holder, tmp_path)
        with trio.fail_after(60):
            await holder.wait_notify("READY=1")
            assert await tenant_answer(holder.url) == answer  # adopted, not restarted
        assert await holder.stop() == 0
    text = log.read_text()
    # the database's loss is one line, no exception group (a client that hangs up on the
    # stopping server may still log its own broken pipe: a separate matter)
    assert "DatabaseUnavailable" not in text
    [error] = [line for line in text.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: lost the database while serving: cannot connect to ")
    assert "left its tenants running" in error
    assert where(cluster, database) in error
    assert database.password not in text
