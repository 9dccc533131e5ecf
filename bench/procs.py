"""Every process the benchmark starts, and how they all end, even on failure.

Servers run in their own process group. Tenants run in theirs (the servers put them
there), so they are found by a marker: every tenant command line carries the run's
unique id, and :meth:`Procs.close` kills whatever still carries it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


class Procs:
    """Starts processes in new sessions and ends them all on :meth:`close`."""

    def __init__(self) -> None:
        self.marker = f"bench-{uuid.uuid4().hex[:12]}"
        self._started: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, **options
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own session; its output goes to ``cwd/<name>.log``."""
        log_path = cwd / f"{Path(argv[0]).name}-{len(self._started)}.log"
        with open(log_path, "ab") as output:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **options,
            )
        self._started.append(proc)
        return proc

    def end(self, proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM, wait: float = 30):
        """Signal ``proc``'s group, wait up to ``wait`` s, then SIGKILL the group."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                log.warning("pid %d ignored signal %d for %ss: killing", proc.pid, signum, wait)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def marked_pids(self) -> list[int]:
        """Live processes whose command line carries this run's marker."""
        pids = []
        needle = self.marker.encode()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as file:
                    if needle in file.read():
                        pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def kill_marked(self) -> int:
        """SIGKILL every process carrying the marker; returns how many there were."""
        pids = self.marked_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def close(self) -> None:
        """End every started process (TERM, then KILL) and every marked tenant."""
        for proc in reversed(self._started):
            self.end(proc, wait=15)
        deadline = time.monotonic() + 5
        while self.kill_marked() and time.monotonic() < deadline:
            time.sleep(0.1)
