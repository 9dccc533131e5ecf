"""A worker whose main process is gone stops as on SIGTERM, even without PR_SET_PDEATHSIG."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

SCRIPT = """
import os, trio
from tenement.server.workers import exit_with_parent
# a parent this process does not have: as if the main process had gone
trio.run(exit_with_parent, os.getppid() + 1_000_000, 0.01)
"""


def test_a_worker_signals_itself_when_its_parent_is_gone() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert "is gone: this worker stops" in done.stderr


def test_it_waits_while_the_parent_lives() -> None:
    script = SCRIPT.replace("os.getppid() + 1_000_000", "os.getppid()")
    waiting = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            waiting.wait(timeout=2)
        assert waiting.poll() is None, "it stopped although its parent lives"
    finally:
        waiting.kill()
        waiting.wait()
