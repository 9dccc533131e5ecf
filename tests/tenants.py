"""Ending the tenants a test's server left running (its own stop, or a failure's)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_RECORDED = "SELECT pid FROM instances WHERE pid IS NOT NULL"


def kill_recorded_tenants(data_dir: Path) -> None:
    """SIGKILL the process group of every tenant the SQLite database in ``data_dir``
    records with a pid (a server stopped with SIGUSR2 leaves them for its successor)."""
    database = data_dir / "tenement.db"
    if not database.exists():
        return
    with sqlite3.connect(database) as db:
        pids = [pid for (pid,) in db.execute(_RECORDED)]
    kill_groups(pids)


def kill_tenants_recorded_by(engine: Any) -> None:
    """The same for a database reached through a SQLAlchemy ``engine`` (a fleet's
    PostgreSQL); nothing when it is out of reach or has no tables yet."""
    import sqlalchemy as sa

    with contextlib.suppress(sa.exc.SQLAlchemyError), engine.connect() as conn:
        kill_groups([pid for (pid,) in conn.execute(sa.text(_RECORDED))])


def kill_groups(pids: Iterable[int]) -> None:
    """SIGKILL the process group led by each of ``pids`` (gone ones are skipped)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
