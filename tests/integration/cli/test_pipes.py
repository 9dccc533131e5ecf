"""`ten` in a pipeline: `ten spawn X | head -1` under `set -o pipefail` must succeed.

Real `ten` processes whose stdout is a real pipe. A packet-mode pipe (O_DIRECT) keeps
each write a separate packet, so one read shows what the first write held.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.integration.cli.live import LiveServer


def run_ten(server: LiveServer, *args: str, stdout: int) -> subprocess.CompletedProcess[bytes]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TENEMENT_")}
    return subprocess.run(
        [sys.executable, "-m", "tenement", *args, "--server", server.url, "--token", server.token],
        cwd=server.project,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
    )


def test_spawn_writes_its_lines_in_one_piece(live_server: LiveServer) -> None:
    read_end, write_end = os.pipe2(os.O_DIRECT)
    try:
        result = run_ten(live_server, "spawn", "api:piece", stdout=write_end)
        os.close(write_end)
        first_write = os.read(read_end, 65536).decode()
    finally:
        os.close(read_end)
    assert result.returncode == 0, result.stderr
    assert first_write.startswith("Spawned api:piece\nListening on 127.0.0.1:"), first_write
    assert first_write.endswith("\n") and first_write.count("\n") == 2


def test_a_closed_stdout_ends_the_command_quietly_with_exit_0(live_server: LiveServer) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: it always breaks
    try:
        for args in (("spawn", "api:gone"), ("ps",), ("logs",)):
            result = run_ten(live_server, *args, stdout=write_end)
            assert (result.returncode, result.stderr) == (0, b""), args
    finally:
        os.close(write_end)
