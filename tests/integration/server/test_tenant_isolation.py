"""Tenants are not the server: a hostile tenant of `ten serve` run as root reads nothing
of the server's (docs/operations.md, "Tenants are not the server").

``spy_app.py`` runs as a tenant and reports what it could read: the API token, the
database, another service's log and storage, the data dir's listing and the server's
``/proc/<pid>/environ``. The server starts under umask 022 with ``TENEMENT_TOKEN`` in its
environment. With ``tenant_users = false`` (the control) the same spy reads the token:
what the first test sees denied is really there to be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.fdholder import FdHolder, open_fd_holder

SPY = Path(__file__).with_name("spy_app.py")
#: the tenants run as other users: they need a python those users may execute
SYSTEM_PYTHON = "/usr/bin/python3"
SECRET = "not-for-tenants-0123456789"
TARGETS = ":".join(
    [
        "{data_dir}/api_token",
        "{data_dir}/tenement.db",
        "{data_dir}/tenement.db-wal",
        "{data_dir}/logs/other/a.stdout.log",
        "{data_dir}/other/a/mine.txt",
        "{data_dir}/",
        "/proc/{ppid}/environ",
    ]
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the server must be root to change uid"),
    pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason="no system python3"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="no util-linux setpriv"),
]


def config(home: Path, *, tenant_users: bool = True) -> str:
    # the spy runs from the server's directory: the checkout may sit where other users
    # cannot pass (a clone under `mktemp -d`, or /root)
    spy = home / SPY.name
    shutil.copyfile(SPY, spy)
    spy.chmod(0o644)
    command = f"{SYSTEM_PYTHON} -I {spy}"
    return f"""
[settings]
data_dir = "data"
health_check_interval = 1
tenant_users = {str(tenant_users).lower()}

[service.spy]
command = "{command}"
isolation = "process"
env = {{ SPY_TARGETS = "{TARGETS}" }}

[service.other]
command = "{command}"
isolation = "process"

[instances]
spy = ["a"]
other = ["a"]
"""


@pytest.fixture
def home() -> Iterator[Path]:
    """The server's directory, where other users may pass (pytest's tmp_path is 0700:
    there every read would be denied for that reason alone)."""
    path = Path(tempfile.mkdtemp(prefix="ten-iso-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    database = path / "data" / "tenement.db"
    if database.exists():
        with sqlite3.connect(database) as db:
            pids = [p for (p,) in db.execute("SELECT pid FROM instances WHERE pid IS NOT NULL")]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(path)


async def start(holder: FdHolder, home: Path) -> None:
    await holder.start(
        [sys.executable, "-m", "tenement", "serve"],
        env={"TENEMENT_TOKEN": SECRET},
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
        umask=0o022,
    )
    with trio.fail_after(30):
        await holder.wait_notify("READY=1")


async def spy_report(url: str, service: str) -> dict:
    """What the ``a`` tenant of ``service`` reports, once it answers."""
    async with httpx.AsyncClient(base_url=url, headers={"host": f"a.{service}.localhost"}) as c:
        with trio.fail_after(20):
            while True:
                response = await c.get("/")
                if response.status_code == 200:
                    return json.loads(response.text)
                await trio.sleep(0.05)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def make_token(home: Path) -> None:
    """An admin token, left 0644 as an older tenement (or a umask) could leave it."""
    subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen"],
        cwd=home,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (home / "data" / "api_token").chmod(0o644)


async def test_a_tenant_reads_nothing_of_the_server(home: Path, tmp_path: Path) -> None:
    (home / "tenement.toml").write_text(config(home))
    make_token(home)
    data = home / "data"
    async with open_fd_holder(tmp_path) as holder:
        await start(holder, home)
        server = holder.process.pid
        other = await spy_report(holder.url, "other")  # writes other's mine.txt
        assert other["home"] == "mine"
        spy = await spy_report(holder.url, "spy")

        assert spy["server"] == server
        assert spy["reads"] == {
            str(data / "api_token"): "PermissionError",
            str(data / "tenement.db"): "PermissionError",
            str(data / "tenement.db-wal"): "PermissionError",
            str(data / "logs" / "other" / "a.stdout.log"): "PermissionError",
            str(data / "other" / "a" / "mine.txt"): "PermissionError",
            f"{data}/": "PermissionError",
            f"/proc/{server}/environ": "PermissionError",
        }
        # each service its own user and group, no supplementary groups
        first, last = 61184, 65519
        assert first <= spy["uid"] <= last
        assert first <= other["uid"] <= last
        assert spy["uid"] != other["uid"]
        assert (spy["gid"], other["gid"]) == (spy["uid"], other["uid"])
        assert spy["groups"] == [] and other["groups"] == []
        assert spy["home"] == "mine"
        assert spy["tenement_env"] == []
        # the token is gone from the server's environment, as root sees it too
        assert SECRET.encode() not in Path(f"/proc/{server}/environ").read_bytes()

        # the tenant's directory is its own; the server's files are private (umask 022)
        storage = os.stat(data / "spy" / "a")
        assert (storage.st_uid, storage.st_gid) == (spy["uid"], spy["gid"])
        assert mode(data / "spy" / "a") == 0o700
        assert mode(data) == 0o711 and mode(data / "spy") == 0o711
        for name in ("tenement.db", "tenement.db-wal", "tenement.db-shm", "api_token"):
            assert mode(data / name) == 0o600, name
        for name in ("logs", "logs/spy", "run"):
            assert mode(data / name) == 0o700, name
        assert mode(data / "logs" / "spy" / "a.stdout.log") == 0o600

        # a new server adopts the tenants although they run as other users
        pid_before = await tenant_pid(holder.url)
        assert await holder.stop(signal.SIGUSR2) == 0
        await start(holder, home)
        assert await tenant_pid(holder.url) == pid_before
        again = await spy_report(holder.url, "spy")
        assert again["uid"] == spy["uid"]
        assert await holder.stop(signal.SIGTERM) == 0

    # the same service gets the same uid after a restart that starts it again
    (tmp_path / "again").mkdir()
    async with open_fd_holder(tmp_path / "again") as holder:
        await start(holder, home)
        assert (await spy_report(holder.url, "spy"))["uid"] == spy["uid"]
        assert await holder.stop(signal.SIGTERM) == 0


async def tenant_pid(url: str) -> int:
    """The spy's pid, as it reports it through the proxy."""
    async with httpx.AsyncClient(base_url=url, headers={"host": "a.spy.localhost"}) as c:
        with trio.fail_after(20):
            while True:
                response = await c.get("/")
                if response.status_code == 200:
                    return int(json.loads(response.text)["pid"])
                await trio.sleep(0.05)


async def test_control_with_tenant_users_false_the_tenant_reads_the_token(
    home: Path, tmp_path: Path
) -> None:
    (home / "tenement.toml").write_text(config(home, tenant_users=False))
    make_token(home)
    async with open_fd_holder(tmp_path) as holder:
        await start(holder, home)
        spy = await spy_report(holder.url, "spy")
        assert spy["uid"] == 0
        assert spy["reads"][str(home / "data" / "api_token")] == "read"
        assert spy["tenement_env"] == []  # no TENEMENT_* variable reaches a tenant anyway
        assert await holder.stop(signal.SIGTERM) == 0
    assert "tenant_users = false: tenants run as this server's user" in (
        (home / "serve.log").read_text()
    )
