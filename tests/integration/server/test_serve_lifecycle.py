"""`ten serve` held like systemd holds it: restarts, reloads and stops lose nothing.

tests/fdholder.py plays tenement.socket and Type=notify: it keeps the listening socket,
starts `python -m tenement serve` with LISTEN_FDS, and restarts it while a load of
clients talks to a tenant through the proxy. SIGUSR2 (systemd's RestartKillSignal) must
lose no request and keep the tenant's pid; SIGTERM stops the tenants; SIGHUP reloads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.apps import PID_APP
from tests.fdholder import FdHolder, open_fd_holder
from tests.loadgen import Load, keep_alive_client, one_shot_client

TENANT_HOST = "a.echo.localhost"
RESTARTS = 4

CONFIG = f"""
[settings]
data_dir = "data"
health_check_interval = 1
# the tenants are this test's scripts, wherever the checkout is: the server's user
tenant_users = false

[service.echo]
command = "{sys.executable} {PID_APP}"
isolation = "process"
health = "/"

[instances]
echo = ["a"]
"""

EXTRA_SERVICE = f"""
[service.late]
command = "{sys.executable} {PID_APP}"
isolation = "process"
"""


def admin_token(directory: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen"],
        cwd=directory,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return (directory / "data" / "api_token").read_text().strip()


async def start_server(holder: FdHolder, directory: Path, *options: str) -> None:
    await holder.start(
        [sys.executable, "-m", "tenement", "serve", *options],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
    )
    with trio.fail_after(30):
        await holder.wait_notify("READY=1")


async def tenant_pid(url: str) -> str:
    """The tenant's pid, asked through the proxy (once it is up).

    The first request waits for the tenant's start, seconds on a loaded machine: httpx's
    default 5 s read timeout failed it in CI-like runs."""
    async with httpx.AsyncClient(base_url=url, headers={"host": TENANT_HOST}, timeout=30) as client:
        with trio.fail_after(40):
            while True:
                response = await client.get("/")
                if response.status_code == 200:
                    return response.text.split()[1]
                await trio.sleep(0.05)


async def reload(holder: FdHolder) -> list:
    """SIGHUP the server; return the notifications up to its READY=1 after the reload."""
    seen = len(holder.notifications)
    holder.process.send_signal(signal.SIGHUP)
    with trio.fail_after(20):
        while not any("READY" in n.fields for n in holder.notifications[seen:]):
            await trio.sleep(0.02)
    return holder.notifications[seen:]


@pytest.mark.parametrize("workers", [1, 2])
async def test_restarts_with_sigusr2_lose_no_request_and_keep_the_tenant(
    directory: Path, workers: int
) -> None:
    """With ``--workers 2`` the worker drains too, and is gone before the next start."""
    (directory / "tenement.toml").write_text(CONFIG)
    options = ("--workers", str(workers))
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory, *options)
        first = await tenant_pid(holder.url)
        servers = {holder.process.pid}
        load = Load()
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(one_shot_client, holder.port, load, stop, TENANT_HOST)
            for _ in range(3):
                nursery.start_soon(keep_alive_client, holder.url, load, stop, TENANT_HOST)
            with trio.fail_after(120):
                await load.wait_for_more(30)
                for _ in range(RESTARTS):
                    serving = [holder.process.pid, *children_serving(holder.process.pid)]
                    assert len(serving) == workers
                    assert await holder.stop(signal.SIGUSR2) == 0
                    assert not [pid for pid in serving if os.path.exists(f"/proc/{pid}")]
                    await start_server(holder, directory, *options)
                    servers.add(holder.process.pid)
                    await load.wait_for_more(30)
            stop.set()
        assert not load.failures, f"{sum(load.failures.values())} of {load.sent}: {load.failures}"
        assert load.pids == {first}, "the tenant was restarted"
        assert len(servers) == RESTARTS + 1
        os.kill(int(first), 0)  # still alive after the last restart


def children_serving(pid: int) -> list[int]:
    """The `tenement serve` children of ``pid``: its workers (its tenants are children too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"serve" in cmdline and b"tenement" in cmdline:
            found.append(int(entry.name))
    return found


async def test_sigterm_drains_then_stops_every_tenant(directory: Path) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory)
        pid = int(await tenant_pid(holder.url))
        notes_before = len(holder.notifications)
        assert await holder.stop(signal.SIGTERM) == 0
        stopping = [n for n in holder.notifications[notes_before:] if "STOPPING" in n.fields]
        assert stopping, "no STOPPING=1 before exit"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pass
        else:
            raise AssertionError(f"tenant {pid} still runs after the server stopped")


async def test_ready_means_serving_and_health_says_so(directory: Path) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory)
        statuses = [n.fields["STATUS"] for n in holder.notifications if "STATUS" in n.fields]
        assert any("database" in status for status in statuses), statuses
        async with httpx.AsyncClient(base_url=holder.url) as client:
            response = await client.get("/health")
            assert (response.status_code, response.json()) == (200, {"status": "ok"})
            # the proxy's counts reach the API's /metrics (they share one object)
            await tenant_pid(holder.url)
            metrics = (await client.get("/metrics")).text
        assert 'tenement_requests_total{instance="a",process="echo"}' in metrics


async def test_sighup_reloads_the_config_in_place(directory: Path) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    token = admin_token(directory)
    auth = {"authorization": f"Bearer {token}"}
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory)
        pid = await tenant_pid(holder.url)
        server = holder.process.pid
        async with httpx.AsyncClient(base_url=holder.url, headers=auth) as client:
            spawn = {"process": "late", "id": "x"}
            response = await client.post("/api/instances/spawn", json=spawn)
            assert response.status_code == 404  # an unknown service (500 in 0.2.2)
            assert response.json() == {"error": "Unknown process: late"}

            # An invalid file keeps the running config...
            (directory / "tenement.toml").write_text(CONFIG + "\n[service.broken\n")
            await reload(holder)
            response = await client.post("/api/instances/spawn", json=spawn)
            assert response.status_code == 404  # an unknown service (500 in 0.2.2)

            # ...a valid one is used at once, by the same server, tenants untouched.
            (directory / "tenement.toml").write_text(CONFIG + EXTRA_SERVICE)
            reloading = await reload(holder)
            assert any("RELOADING" in n.fields for n in reloading), "no RELOADING=1"
            response = await client.post("/api/instances/spawn", json=spawn)
            assert response.status_code == 200, response.text
            assert json.loads(response.text)["instance"] == "late:x"
        assert holder.process.pid == server
        assert await tenant_pid(holder.url) == pid
