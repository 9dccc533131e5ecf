"""`ten logs`: one-shot with filters, --json, and -f (server-sent events) against a live server."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import trio

from tests.integration.cli.live import LiveServer, ten, wait_healthy

LINE = re.compile(r"\d\d:\d\d:\d\d \[(OUT|ERR)\] api:prod (.*)")


async def logged(server: LiveServer, *args: str) -> list[str]:
    """`ten logs api:prod ARGS` lines, once both the stdout and stderr lines have arrived."""
    with trio.fail_after(20):
        while True:
            result = ten(server, "logs", "api:prod", *args)
            assert result.exit_code == 0, result.stderr
            lines = result.stdout.splitlines()
            if {"[OUT] api:prod GET /health", "[ERR] api:prod served /health"} <= {
                line[9:] for line in lines
            }:
                return lines
            await trio.sleep(0.05)


async def test_logs_one_shot(live_server: LiveServer) -> None:
    assert ten(live_server, "logs", "api:never").stdout == ""
    assert ten(live_server, "spawn", "api:prod").exit_code == 0
    await wait_healthy(live_server, "api:prod")
    lines = await logged(live_server)
    assert all(LINE.fullmatch(line) for line in lines), lines

    stderr_only = ten(live_server, "logs", "api:prod", "--level", "stderr").stdout.splitlines()
    assert stderr_only and all(" [ERR] api:prod " in line for line in stderr_only)
    found = ten(live_server, "logs", "--search", "GET").stdout.splitlines()
    assert found and all(line.endswith(" [OUT] api:prod GET /health") for line in found)
    assert len(ten(live_server, "logs", "api:prod", "--limit", "1").stdout.splitlines()) == 1
    assert ten(live_server, "logs", "api:other").stdout == ""

    entries = json.loads(ten(live_server, "logs", "api:prod", "--json").stdout)
    assert {"timestamp", "level", "process", "instance_id", "message"} <= set(entries[0])
    assert {(e["process"], e["instance_id"]) for e in entries} == {("api", "prod")}


async def test_logs_follow(live_server: LiveServer) -> None:
    assert ten(live_server, "spawn", "api:tail").exit_code == 0
    await wait_healthy(live_server, "api:tail")
    argv = [sys.executable, "-m", "tenement", "logs", "api:tail", "-f", "--level", "stdout",
            "--server", live_server.url, "--token", live_server.token]  # fmt: skip
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)
    seen = b""
    try:
        with trio.fail_after(20):
            while b"\n" not in seen:
                ten(live_server, "health", "api:tail")  # the app logs "GET /health"
                with trio.move_on_after(0.3):
                    seen += await proc.stdout.receive_some()
    finally:
        proc.kill()
        await proc.wait()
    first = seen.decode().splitlines()[0]
    assert first == "[OUT] api:tail GET /health"
