"""Two `ten serve` on one config and data dir: the second stands by, then takes over.

The two-binary switchover of docs/upgrading.md, with real processes: the second server
serves proxy and API traffic while the first holds the supervisor lease (routing from the
shared instance rows, wakes and API requests done by the first); SIGTERM to the first
hands the tenants over instead of stopping them, and the second adopts them.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.integration.server.test_serve_lifecycle import CONFIG, TENANT_HOST, admin_token
from tests.loadgen import Load, keep_alive_client, one_shot_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m tenement serve --port PORT` in ``directory``."""

    def __init__(self, directory: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tenement", "serve", "--port", str(self.port)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=open(directory / f"{name}.log", "ab"),  # noqa: SIM115 - the child owns it
        )

    async def wait_ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            with trio.fail_after(30):
                while True:
                    assert self.process.poll() is None, "the server exited"
                    try:
                        if (await client.get("/health")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.05)

    async def wait_exit(self) -> int:
        with trio.fail_after(60):
            while self.process.poll() is None:
                await trio.sleep(0.05)
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def servers(directory: Path):
    (directory / "tenement.toml").write_text(CONFIG)
    started: list[Server] = []

    def start(name: str) -> Server:
        server = Server(directory, name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


async def get(url: str, host: str, path: str = "/", token: str | None = None) -> httpx.Response:
    headers = {"host": host}
    if token:
        headers["authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        return await client.get(path)


def lease_holder(directory: Path) -> str:
    with sqlite3.connect(directory / "data" / "tenement.db") as db:
        return db.execute("SELECT holder FROM lease").fetchone()[0]


async def test_a_standby_serves_then_takes_the_tenants_over_without_a_failed_request(
    directory: Path,
    servers,
) -> None:
    token = admin_token(directory)
    first = servers("first")
    await first.wait_ready()
    tenant = (await get(first.url, TENANT_HOST)).text.split()[1]

    second = servers("second")
    await second.wait_ready()
    assert lease_holder(directory).split(":")[1] == str(first.process.pid)
    # the standby routes from the shared rows to the same process
    assert (await get(second.url, TENANT_HOST)).text == f"ok {tenant}"
    # its API is the leader's: a spawn through it starts the instance in the first server
    async with httpx.AsyncClient(
        base_url=second.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        spawned = await api.post("/api/instances/spawn", json={"process": "echo", "id": "b"})
        assert spawned.status_code == 200, spawned.text
        listed = await api.get("/api/instances")
        assert {i["id"] for i in listed.json()} >= {"echo:a", "echo:b"}
        assert (
            await api.get("/api/instances", headers={"authorization": "Bearer x"})
        ).status_code == 401

    load = Load()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(one_shot_client, second.port, load, stop, TENANT_HOST)
        for _ in range(2):
            nursery.start_soon(keep_alive_client, second.url, load, stop, TENANT_HOST)
        with trio.fail_after(90):
            await load.wait_for_more(30)
            first.process.send_signal(signal.SIGTERM)
            assert await first.wait_exit() == 0
            await load.wait_for_more(100)
        stop.set()
    assert not load.failures, f"{sum(load.failures.values())} of {load.sent}: {load.failures}"
    assert load.pids == {tenant}, "the tenant was restarted"
    os.kill(int(tenant), 0)
    assert lease_holder(directory).split(":")[1] == str(second.process.pid)

    # the second server leads now: its API answers itself, and it wakes instances
    async with httpx.AsyncClient(
        base_url=second.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        listed = await api.get("/api/instances")
        assert {i["id"] for i in listed.json()} >= {"echo:a", "echo:b"}
        assert (await api.delete("/api/instances/echo:b")).status_code == 204
    woken = await get(second.url, "b.echo.localhost")
    assert woken.status_code == 200 and woken.text.startswith("ok ")

    # with no standby left, SIGTERM stops the tenants
    second.process.send_signal(signal.SIGTERM)
    assert await second.wait_exit() == 0
    with trio.fail_after(10):
        while True:
            try:
                os.kill(int(tenant), 0)
            except ProcessLookupError:
                break
            await trio.sleep(0.05)


async def test_a_standby_asks_the_leader_to_wake_an_instance(
    directory: Path,
    servers,
) -> None:
    config = directory / "tenement.toml"
    config.write_text(config.read_text().replace('health = "/"', 'health = "/"\nidle_timeout = 4'))
    token = admin_token(directory)
    first = servers("first")
    await first.wait_ready()
    second = servers("second")
    await second.wait_ready()
    # echo:a idles out after 4 s unless the requests through the standby count
    await get(first.url, TENANT_HOST)
    pids = set()
    with trio.fail_after(30):
        for _ in range(12):
            response = await get(second.url, TENANT_HOST)
            assert response.status_code == 200, response.text
            pids.add(response.text.split()[1])
            await trio.sleep(0.5)
    assert len(pids) == 1, "the leader stopped an instance the standby kept busy"
    # woken through the standby: the leader starts it, the standby routes to it
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
        stopped = await client.delete(
            "/api/instances/echo:a", headers={"authorization": f"Bearer {token}"}
        )
        assert stopped.status_code == 204
    woken = await get(second.url, TENANT_HOST)
    assert woken.status_code == 200, woken.text
    assert woken.text.split()[1] not in pids
    assert lease_holder(directory).split(":")[1] == str(first.process.pid)
