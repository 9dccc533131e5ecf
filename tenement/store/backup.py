"""Backups of a SQLite database with SQLite's online backup API, of PostgreSQL with
``pg_dump`` (``pg_dump.py``).

A backup is a consistent copy even while a server writes (WAL). Automatic backups go
to ``{data_dir}/backups/`` as ``tenement-{revision}-{UTC time}.db`` (``.dump`` from
PostgreSQL; ``revision`` is the schema revision the copy is at, ``reference-0.2.2`` for
an unversioned reference database) and only the newest :data:`KEEP_BACKUPS` of those
files are kept; other files in that directory are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tenement.store import _sqlite, pg_dump
from tenement.store._db import SqliteDatabase
from tenement.store.errors import BackupError
from tenement.store.private import PRIVATE_DIR_MODE
from tenement.store.store import Store

log = logging.getLogger(__name__)

KEEP_BACKUPS = 5

_NAME = re.compile(r"^tenement-(?P<label>.+)-(?P<time>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?\.(?:db|dump)$")


def backup_dir_for(data_dir: Path) -> Path:
    """``{data_dir}/backups``."""
    return data_dir / "backups"


def _sqlite_file(store: Store) -> Path:
    path = _sqlite.sqlite_path(store.url)
    if path is None:
        raise BackupError(
            f"tenement restores only SQLite database files, not {store.display_url}; "
            "restore a PostgreSQL backup with `pg_restore --clean --dbname=DB FILE` "
            "(server stopped)"
        )
    return path


def check_restorable(store: Store) -> None:
    """Raise :class:`BackupError` unless :func:`restore_backup` can restore into ``store``
    (a SQLite file), before anything is changed."""
    _sqlite_file(store)


def _dialect(store: Store) -> str:
    return store.database.dialect


def skip_reason(store: Store) -> str | None:
    """Why :func:`backup_database` cannot back ``store`` up, or None when it can.

    Migrations say this and go on; ``ten db backup`` fails with it.
    """
    if _dialect(store) == "sqlite" and _sqlite.sqlite_path(store.url) is not None:
        return None
    if _dialect(store) == "postgresql":
        return None if pg_dump.pg_dump_path() else pg_dump.no_pg_dump(store.display_url)
    return (
        f"not backing up {store.display_url}: tenement backs up SQLite files and "
        "PostgreSQL (with pg_dump); back it up with the database's own tools"
    )


def _connection(store: Store) -> contextlib.AbstractContextManager[sqlite3.Connection]:
    database = store.database
    assert isinstance(database, SqliteDatabase), "checked by _sqlite_file"
    return database.connection()


def _reserve_name(directory: Path, label: str, now: datetime, suffix: str = ".db") -> Path:
    """Create (empty, exclusively) and return a backup file name no one else has taken."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    n = 1
    while True:
        n_part = "" if n == 1 else f"-{n}"
        candidate = directory / f"tenement-{label}-{stamp}{n_part}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            n += 1
            continue
        return candidate


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Back ``source`` up into a private temporary file, then move it onto ``target``."""
    fd, partial_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    partial = Path(partial_name)
    try:
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)
        finally:
            destination.close()
        partial.chmod(0o600)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def backup_database(
    store: Store,
    destination: Path,
    *,
    label: str,
    now: datetime | None = None,
    keep: int | None = KEEP_BACKUPS,
) -> Path:
    """Copy the database into ``destination`` (a directory, or a file path ending ``.db``;
    ``.dump`` for PostgreSQL, which ``pg_dump`` writes).

    Args:
        label: the revision the copy is at, put in the file name.
        keep: in a directory, keep only the newest ``keep`` tenement backups (None: all).

    Returns:
        the backup file.

    Raises:
        BackupError: the database cannot be backed up here (:func:`skip_reason`), or the
            copy failed.

    Changed in 0.3: PostgreSQL is backed up with ``pg_dump``, where it is installed.
    """
    why_not = skip_reason(store)
    if why_not is not None:
        raise BackupError(why_not[0].upper() + why_not[1:])
    postgresql = _dialect(store) == "postgresql"
    suffix = pg_dump.SUFFIX if postgresql else ".db"
    destination = destination.expanduser()
    if destination.suffix == suffix and not destination.is_dir():
        destination.parent.mkdir(parents=True, exist_ok=True)
        target, directory = destination, None
    else:
        # new backup directories are private; an existing one is the operator's choice
        destination.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        target = _reserve_name(destination, label, now or datetime.now(UTC), suffix)
        directory = destination
    try:
        if postgresql:
            tool = pg_dump.pg_dump_path()
            assert tool is not None, "checked by skip_reason"
            pg_dump.dump(store.url, store.display_url, target, tool)
        else:
            with _connection(store) as source:
                _copy(source, target)
    except BackupError:
        if directory is not None:
            target.unlink(missing_ok=True)
        raise
    except (sqlite3.Error, OSError) as exc:
        if directory is not None:
            target.unlink(missing_ok=True)
        raise BackupError(f"could not back up {store.display_url} to {target}: {exc}") from exc
    log.info("backed up %s to %s", store.display_url, target)
    if directory is not None and keep is not None:
        prune_backups(directory, keep)
    return target


def list_backups(directory: Path) -> list[Path]:
    """tenement's backup files in ``directory``, oldest first (by the time in the name)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append((match["time"], int(match["n"] or 1), path))
    return [path for _, _, path in sorted(found)]


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``directory``; returns what was deleted."""
    backups = list_backups(directory)
    doomed = backups[: max(len(backups) - keep, 0)]
    for path in doomed:
        path.unlink(missing_ok=True)
        log.info("deleted old backup %s", path)
    return doomed


def restore_backup(store: Store, source: Path) -> None:
    """Replace the database's content with the backup ``source``, in place.

    Done through the backup API into the open database, so WAL and ``-shm`` files
    stay consistent (copying a file over ``tenement.db`` does not). Stop the server first.

    Raises:
        BackupError: ``source`` is missing or not a sound SQLite database.
    """
    _sqlite_file(store)
    if not source.is_file():
        raise BackupError(f"backup {source} does not exist")
    try:
        backup = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"could not open backup {source}: {exc}") from exc
    try:
        check = backup.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise BackupError(f"backup {source} is damaged ({check and check[0]})")
        with _connection(store) as target:
            backup.backup(target)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not a usable SQLite backup: {exc}") from exc
    finally:
        backup.close()
    store.close()  # connections opened before the restore start over
    log.info("restored %s from %s", store.display_url, source)
