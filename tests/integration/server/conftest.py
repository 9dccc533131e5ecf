"""Fixtures for the `ten serve` tests."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest


@pytest.fixture
def directory(tmp_path: Path):
    """The server's working directory; tenants a failed test left running are killed."""
    yield tmp_path
    database = tmp_path / "data" / "tenement.db"
    if not database.exists():
        return
    with sqlite3.connect(database) as db:
        pids = [pid for (pid,) in db.execute("SELECT pid FROM instances WHERE pid IS NOT NULL")]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
