"""A reload never destroys by accident; `ten config --check` shows what one would do.

Real `ten serve` processes held by tests/fdholder.py (as systemd holds them), real
tenants, SIGHUP and `ten reload` (the unit's ExecReload=). Before these checks an empty
file at a reload stopped every tenant, silently, and `systemctl reload` succeeded
whatever the server did with the file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.apps import PID_APP
from tests.fdholder import FdHolder, open_fd_holder
from tests.integration.server.test_serve_lifecycle import admin_token, start_server

ECHO = f"""
[service.echo]
command = "{sys.executable} {PID_APP}"
isolation = "process"
health = "/"
"""
GONE = f"""
[service.gone]
command = "{sys.executable} {PID_APP}"
isolation = "process"
"""
LATE = f"""
[service.late]
command = "{sys.executable} {PID_APP}"
isolation = "process"
"""
# the tenants are this test's scripts, wherever the checkout is: the server's user
SETTINGS = '[settings]\ndata_dir = "data"\nhealth_check_interval = 1\ntenant_users = false\n'
CONFIG = SETTINGS + ECHO + GONE + '\n[instances]\necho = ["a"]\ngone = ["b"]\n'
WITHOUT_GONE = SETTINGS + ECHO + '\n[instances]\necho = ["a"]\n'

#: files a reload must refuse: (what is written, what the refusal says)
REFUSED = [
    ("", "is empty (0 bytes): refused"),
    ("\n  \n", "is empty (4 bytes): refused"),
    # cut in the middle of a string, as a copy or an editor caught half-way leaves it
    (CONFIG[: CONFIG.index("[service.gone]") + 40], "invalid TOML"),
    (CONFIG.replace('isolation = "process"\nhealth', "idle_timeout = -1\nhealth"), "idle_timeout"),
    ("a = " + "[" * 100000 + "\n", "nested too deeply"),
    (CONFIG.replace('health = "/"', 'health = "/\\r\\nX-Injected: 1"'), "carriage return"),
]


def ten(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenement", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def running_pids(client: httpx.AsyncClient, wanted: set[str]) -> dict[str, int]:
    """``instance id -> pid`` of the running instances, once ``wanted`` all run."""
    with trio.fail_after(30):
        while True:
            rows = (await client.get("/api/instances")).json()
            pids = {row["id"]: row["pid"] for row in rows if row["pid"]}
            if wanted <= set(pids):
                return pids
            await trio.sleep(0.05)


async def sighup(holder: FdHolder) -> None:
    """SIGHUP the server and wait for its READY=1 after the reload."""
    seen = len(holder.notifications)
    assert holder.process is not None
    holder.process.send_signal(signal.SIGHUP)
    with trio.fail_after(30):
        while not any("READY" in n.fields for n in holder.notifications[seen:]):
            await trio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return True


async def test_a_refused_file_keeps_every_tenant_and_says_why(directory: Path) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    token = admin_token(directory)
    auth = {"authorization": f"Bearer {token}"}
    log = directory / "serve.log"
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory)
        async with httpx.AsyncClient(base_url=holder.url, headers=auth) as client:
            before = await running_pids(client, {"echo:a", "gone:b"})
            for text, reason in REFUSED:
                (directory / "tenement.toml").write_text(text)
                logged = log.read_text()
                await sighup(holder)
                new_lines = log.read_text()[len(logged) :]
                assert "reload refused, keeping the running config" in new_lines, new_lines
                assert reason in new_lines, new_lines

                # the unit's ExecReload=: the refusal is its exit code
                result = ten(directory, "reload", "--data-dir", "data")
                assert result.returncode == 1, (text[:40], result.stdout, result.stderr)
                assert "reload refused, the server keeps its running config" in result.stderr
                assert reason in result.stderr

                assert await running_pids(client, {"echo:a", "gone:b"}) == before, text[:40]
                assert all(alive(pid) for pid in before.values())
        # the same server throughout
        assert holder.process is not None and holder.process.returncode is None


async def test_a_valid_file_removing_a_service_stops_its_instances(directory: Path) -> None:
    (directory / "tenement.toml").write_text(CONFIG)
    token = admin_token(directory)
    auth = {"authorization": f"Bearer {token}"}
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory)
        async with httpx.AsyncClient(base_url=holder.url, headers=auth) as client:
            before = await running_pids(client, {"echo:a", "gone:b"})

            # what a reload would do, asked before doing it
            (directory / "tenement.toml").write_text(
                WITHOUT_GONE.replace('health = "/"', 'health = "/ready"') + LATE
            )
            check = ten(directory, "config", "--check", "--server", holder.url, "--token", token)
            assert check.returncode == 0, check.stderr
            lines = check.stdout.splitlines()
            assert lines[0] == f"{directory / 'tenement.toml'}: OK (2 services)"
            assert lines[1].startswith(
                f"A reload would change (from the config pid {holder.process.pid} applied "
            )
            assert lines[2:] == [
                "  + service late",
                "  ~ service echo: health",
                "  - service gone (its instances stop)",
                "Instances that would stop: gone:b",
            ]
            # checking changed nothing
            assert await running_pids(client, {"echo:a", "gone:b"}) == before

            # without a server to ask, the rest is still shown, with a note
            offline = ten(directory, "config", "--check", "--server", "http://127.0.0.1:9")
            assert offline.returncode == 0, offline.stderr
            assert "  - service gone (its instances stop)" in offline.stdout
            assert "Note: cannot list the instances that would stop (" in offline.stderr

            # the reload itself, as systemctl runs it
            (directory / "tenement.toml").write_text(WITHOUT_GONE)
            result = ten(directory, "reload", "--data-dir", "data")
            assert result.returncode == 0, result.stderr
            assert result.stdout.splitlines() == [
                f"Reloaded {directory / 'tenement.toml'}:",
                "  - service gone (its instances stop)",
                "  stopped gone:b",
            ]
            assert not alive(before["gone:b"])
            after = await running_pids(client, {"echo:a"})
            assert after == {"echo:a": before["echo:a"]}
        assert (
            "reload: stopped gone:b: its service is no longer in"
            in (directory / "serve.log").read_text()
        )

        # the record now holds the reloaded config: nothing more would change
        check = ten(directory, "config", "--check")
        assert check.stdout.splitlines()[2:] == ["  nothing"], check.stdout
        record = json.loads((directory / "data" / "run" / "applied-config.json").read_text())
        assert set(record["config"]["services"]) == {"echo"}
        assert (
            oct((directory / "data" / "run" / "applied-config.json").stat().st_mode & 0o777)
            == "0o600"
        )


@pytest.mark.parametrize("workers", [2])
async def test_workers_refuse_the_same_file_and_keep_serving(directory: Path, workers: int) -> None:
    """A worker re-reads the file on the main process's SIGHUP: it must refuse it too."""
    (directory / "tenement.toml").write_text(CONFIG)
    async with open_fd_holder(directory) as holder:
        await start_server(holder, directory, "--workers", str(workers))
        (directory / "tenement.toml").write_text("")
        result = ten(directory, "reload", "--data-dir", "data")
        assert result.returncode == 1, result.stdout
        # the main process and its worker each refused it (the worker on its own time)
        with trio.fail_after(30):
            while (directory / "serve.log").read_text().count(
                "reload refused, keeping the running config"
            ) < workers:
                await trio.sleep(0.05)
        async with httpx.AsyncClient(base_url=holder.url) as client:
            for _ in range(4):
                response = await client.get("/", headers={"host": "a.echo.localhost"})
                assert response.status_code == 200
