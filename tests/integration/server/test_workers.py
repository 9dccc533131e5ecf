"""`ten serve --workers 2`: a second serving process on the same sockets.

The worker proxies on its own (shown by stopping the main process with SIGSTOP while
requests keep being answered), its requests count in the main process's /metrics, it
talks to systemd never (only the main process sends sd_notify), it drains and exits with
the main process (a restart under load with workers: test_serve_lifecycle.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
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


async def serving_processes(directory: Path, *prefix: str) -> int:
    """How many serving processes `ten serve` (run under ``prefix``, e.g. taskset) starts
    with this directory's tenement.toml and no --workers."""
    sockets = directory / f"holder-{len(prefix)}"  # its notify socket: one per holder
    sockets.mkdir(exist_ok=True)
    async with open_fd_holder(sockets) as holder:
        await holder.start(
            [*prefix, sys.executable, "-m", "tenement", "serve"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=open(directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
        )
        with trio.fail_after(30):
            await holder.wait_notify("READY=1")
        # the tenant is started after READY: until its exec, its forked process looks
        # like a serving one (the same command line)
        await tenant_pid(holder.url)
        count = 1 + len(children_serving(holder.process.pid))
        assert await holder.stop(signal.SIGTERM) == 0
        return count


async def test_workers_0_is_one_serving_process_per_cpu_it_may_use(directory: Path) -> None:
    """As nginx's `worker_processes auto`: the CPUs it may run on, so one when pinned."""
    (directory / "tenement.toml").write_text(
        CONFIG.replace("[settings]\n", "[settings]\nworkers = 0\n", 1)
    )
    cpus = len(os.sched_getaffinity(0))
    assert await serving_processes(directory) == cpus
    assert "one per CPU (workers = 0)" in (directory / "serve.log").read_text()
    taskset = shutil.which("taskset")
    if taskset is not None:  # util-linux: everywhere tenement runs, but not required
        first = min(os.sched_getaffinity(0))
        assert await serving_processes(directory, taskset, "-c", str(first)) == 1


async def test_the_default_is_one_serving_process(directory: Path) -> None:
    """Kept at 1: a second process costs ~24% more CPU per request and ~18 MB (PSS), and
    gave fewer requests/s on a busy 2-CPU machine (BENCHMARKS.md, "Serving processes")."""
    (directory / "tenement.toml").write_text(CONFIG)
    assert await serving_processes(directory) == 1
    assert "1 serving process (workers = 1)" in (directory / "serve.log").read_text()
