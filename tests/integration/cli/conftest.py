"""A live `ten serve` for the client commands to talk to.

The server runs as a real process in ``tmp_path`` with a tenement.toml whose service
``api`` is a tiny Python HTTP app (isolation "process"), after ``ten token-gen``.

``TENEMENT_TEST_SERVER_CMD`` replaces ``python -m tenement`` as the program that gets
``serve --port P`` and ``token-gen`` (e.g. ``TENEMENT_TEST_SERVER_CMD=$(python -m bench.refbin)``
runs the same tests against the reference binary to prove parity).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.apps import LOGGING_APP
from tests.integration.cli.live import LiveServer, free_port

SERVER_CMD_VAR = "TENEMENT_TEST_SERVER_CMD"
START_TIMEOUT = 30


@pytest.fixture(scope="session")
def server_program() -> tuple[str, ...]:
    """What to run for `serve` and `token-gen` (read before the per-test env is cleaned)."""
    override = os.environ.get(SERVER_CMD_VAR)
    if override:
        return tuple(shlex.split(override))
    return (sys.executable, "-m", "tenement")


def write_project(project: Path, settings: str = "") -> None:
    """The project: ``app.py`` as service ``api``; ``settings``: more [settings] lines."""
    (project / "app.py").write_text(LOGGING_APP)
    (project / "tenement.toml").write_text(
        textwrap.dedent(
            f"""
            [settings]
            data_dir = "./data"
            # app.py lives in tmp_path (0700): the tenant runs as the server's user
            tenant_users = false
            {settings}

            [service.api]
            command = "{sys.executable} app.py"
            health = "/health"
            isolation = "process"
            """
        )
    )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    with trio.fail_after(START_TIMEOUT):
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"ten serve exited {proc.returncode}:\n{log_path.read_text()}")
            await trio.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def module_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    server_program: tuple[str, ...],
) -> Iterator[LiveServer]:
    """`ten serve --port P` in a fresh project, shared by one test module; with the
    module's ``SERVER_SETTINGS`` ([settings] lines) when it has some.

    Module scope because a server start (token-gen, migrations, serve) and its graceful
    stop take seconds; :func:`live_server` empties it between tests.
    """
    project = tmp_path_factory.mktemp("cli-server") / "project"
    project.mkdir()
    write_project(project, getattr(request.module, "SERVER_SETTINGS", ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}
    subprocess.run(
        [*server_program, "token-gen"], cwd=project, env=env, check=True,
        capture_output=True, timeout=60,
    )  # fmt: skip
    data_dir = project / "data"
    token = (data_dir / "api_token").read_text().strip()
    url = f"http://127.0.0.1:{free_port()}"
    log_path = project.parent / "serve.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [*server_program, "serve", "--port", url.rsplit(":", 1)[1]],
            cwd=project, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        trio.run(_wait_ready, url, proc, log_path)
        yield LiveServer(url, token, project, data_dir, server_program)
    finally:
        _stop(proc)


def _stop_every_instance(server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for instance in client.get("/api/instances").raise_for_status().json():
            client.delete(f"/api/instances/{instance['id']}")
        assert client.get("/api/instances").json() == []


@pytest.fixture
def live_server(module_server: LiveServer) -> Iterator[LiveServer]:
    """The module's server with no instance running at the start and end of the test."""
    _stop_every_instance(module_server)
    yield module_server
    _stop_every_instance(module_server)
