"""Helpers for the client-command tests: run `ten` in-process against a live server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import attrs
import httpx
import trio
from click.testing import CliRunner

from tenement.cli import ten as ten_group
from tenement.cli.context import CliContext


@attrs.frozen
class LiveServer:
    """A running server: its URL, admin token and project directory."""

    url: str
    token: str
    project: Path
    data_dir: Path
    program: tuple[str, ...]

    @property
    def is_reference(self) -> bool:
        return not (len(self.program) >= 2 and self.program[1:] == ("-m", "tenement"))


@attrs.frozen
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def invoke(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, input: str = ""
) -> Outcome:
    """Run ``ten ARGS`` in-process in ``cwd`` (blocking), the way a shell would."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(
            ten_group, list(args), obj=CliContext(), env=dict(env or {}), input=input
        )
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


@contextlib.asynccontextmanager
async def static_http_server(root: Path) -> AsyncIterator[str]:
    """`python -m http.server` serving ``root`` on loopback (a server that is not
    tenement, answering what the test put in its files); yields its URL."""
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    proc = await trio.lowlevel.open_process(
        argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with trio.fail_after(20):
            while True:
                try:
                    httpx.get(url, timeout=1)
                    break
                except httpx.TransportError:
                    await trio.sleep(0.05)
        yield url
    finally:
        proc.kill()
        await proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ten(server: LiveServer, *args: str) -> Outcome:
    return invoke([*args, "--server", server.url, "--token", server.token], cwd=server.project)


async def wait_healthy(server: LiveServer, instance: str) -> None:
    with trio.fail_after(20):
        while ten(server, "health", instance).stdout != f"{instance}: healthy\n":
            await trio.sleep(0.05)


def ps_rows(out: str) -> dict[str, list[str]]:
    """``ten ps`` output -> {instance: [listen, uptime, idle, health, weight]}."""
    lines = out.splitlines()
    assert (
        lines[0]
        == "INSTANCE             LISTEN               UPTIME     IDLE       HEALTH   WEIGHT"
    )
    return {
        line.split()[0]: line.split()[1:]
        for line in lines[1:]
        if line and " running on " not in line
    }
