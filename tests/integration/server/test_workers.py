"""`ten serve --workers 2`: a second serving process on the same sockets.

The worker proxies on its own (shown by stopping the main process with SIGSTOP while
requests keep being answered), its requests count in the main process's /metrics, it
talks to systemd never (only the main process sends sd_notify), it drains and exits with
the main process (a restart under load with workers: test_serve_lifecycle.py).
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import trio

from tests.fdholder import open_fd_holder
from tests.integration.server.test_serve_lifecycle import (
    CONFIG,
    TENANT_HOST,
    children_serving,
    start_server,
    tenant_pid,
)


async def requests_counted(url: str) -> float:
    async with httpx.AsyncClient(base_url=url) as client:
        text = (await client.get("/metrics")).text
    match = re.search(r'^tenement_requests_total\{instance="a",process="echo"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_a_worker_serves_on_its_own_and_counts_in_the_main_metrics(
    directory: Path,
) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory, "--workers", "2")
        main = holder.process.pid
        tenant = await tenant_pid(holder.url)
        (worker,) = children_serving(main)
        assert {n.pid for n in holder.notifications} == {main}

        # the worker sees the instance rows 0.2 s after they change: let it catch up, or
        # it would ask the (stopped) main process to wake an instance that runs
        await trio.sleep(1)
        sent = 0
        os.kill(main, signal.SIGSTOP)
        try:
            async with httpx.AsyncClient(
                base_url=holder.url, headers={"host": TENANT_HOST}, timeout=10
            ) as client:
                for _ in range(20):
                    response = await client.get("/")
                    sent += 1
                    assert response.text == f"ok {tenant}"
        finally:
            os.kill(main, signal.SIGCONT)

        # the worker's requests reach the main process's /metrics within a report or two
        with trio.fail_after(10):
            while await requests_counted(holder.url) < sent:
                await trio.sleep(0.2)

        assert await holder.stop(signal.SIGTERM) == 0
        with trio.fail_after(10):
            while os.path.exists(f"/proc/{worker}") or os.path.exists(f"/proc/{tenant}"):
                await trio.sleep(0.05)


async def test_a_worker_that_dies_leaves_the_others_serving(directory: Path) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory, "--workers", "2")
        tenant = await tenant_pid(holder.url)
        (worker,) = children_serving(holder.process.pid)
        os.kill(worker, signal.SIGKILL)
        expected = f"worker {worker} exited (killed by SIGKILL); 0 worker(s) left"
        with trio.fail_after(10):
            while expected not in (directory / "serve.log").read_text():
                await trio.sleep(0.05)
        assert await tenant_pid(holder.url) == tenant
        assert await holder.stop(signal.SIGTERM) == 0
