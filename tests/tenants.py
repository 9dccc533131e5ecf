"""Ending the tenants a test's server left running (its own stop, or a failure's)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path


def kill_recorded_tenants(data_dir: Path) -> None:
    """SIGKILL the process group of every tenant the SQLite database in ``data_dir``
    records with a pid (a server stopped with SIGUSR2 leaves them for its successor)."""
    database = data_dir / "tenement.db"
    if not database.exists():
        return
    with sqlite3.connect(database) as db:
        pids = [pid for (pid,) in db.execute("SELECT pid FROM instances WHERE pid IS NOT NULL")]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
