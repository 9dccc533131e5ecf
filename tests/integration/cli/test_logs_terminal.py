"""`ten logs` on a terminal escapes control characters in tenants' lines (a tenant's
output could retitle or drive the admin's terminal); piped, the lines pass byte for byte
as 0.2.2 passes them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.cli.live import static_http_server

HOSTILE = "title\x1b]0;owned\x07 bell\x07 col\tumn"


@pytest.fixture
async def logs_server(tmp_path: Path) -> AsyncIterator[str]:
    """`python -m http.server` whose /api/logs is one entry with a hostile message."""
    root = tmp_path / "www"
    (root / "api").mkdir(parents=True)
    entry = {"timestamp": 0, "level": "stdout", "process": "api", "instance_id": "a",
             "message": HOSTILE}  # fmt: skip
    (root / "api" / "logs").write_text(json.dumps([entry]))
    async with static_http_server(root) as url:
        yield url


def _argv(url: str) -> list[str]:
    return [sys.executable, "-m", "tenement", "logs", "--server", url, "--token", "t"]


async def test_piped_lines_pass_as_they_are(logs_server: str) -> None:
    out = subprocess.run(_argv(logs_server), capture_output=True, timeout=60).stdout
    assert out == f"00:00:00 [OUT] api:a {HOSTILE}\n".encode()


async def test_a_terminal_gets_them_escaped(logs_server: str) -> None:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(_argv(logs_server), stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the command ended and closed its end
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    text = seen.decode()
    assert "\x1b" not in text and "\x07" not in text
    # the pty turns "\n" into "\r\n"; the tab is kept
    assert text == "00:00:00 [OUT] api:a title\\x1b]0;owned\\x07 bell\\x07 col\tumn\r\n"
