"""The server's files are its own: 0600 files and 0700 directories, whatever the umask.

A tenant is code we run but did not write (docs/operations.md, "Tenants are not the
server"). Where it runs as another uid, the modes below are what keeps it out of the
database (and its ``-wal``/``-shm``), the API token, the backups, the log files and the
control sockets. SQLite creates its ``-wal`` and ``-shm`` with the database file's mode,
so the database file is created 0600 before SQLite opens it. Existing files made wider
by an earlier version (or the reference, under umask 022) are narrowed.

The data dir itself is 0711: tenants must be able to pass through it to their own
``{data_dir}/{service}/{tenant}`` directories, but not list it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
#: a directory tenants pass through without listing it (the data dir, each service's)
PASSAGE_DIR_MODE = 0o711
#: SQLite's companions of a database file
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_file(path: Path) -> None:
    """Narrow ``path`` to 0600 if it exists (it is not created)."""
    _narrow(path, PRIVATE_FILE_MODE)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed and make it 0700; returns it."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _narrow(path, PRIVATE_DIR_MODE)
    return path


def passage_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed and make it 0711; returns it."""
    path.mkdir(mode=PASSAGE_DIR_MODE, parents=True, exist_ok=True)
    _narrow(path, PASSAGE_DIR_MODE)
    return path


def private_database(path: Path) -> None:
    """Create the SQLite file ``path`` 0600 if missing; narrow it and its companions to 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE))
    except OSError:
        return  # SQLite reports what is wrong with the path, with its own words
    for suffix in SQLITE_SUFFIXES:
        private_file(path.with_name(path.name + suffix))


def _narrow(path: Path, mode: int) -> None:
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    # a symlink is left alone: chmod would change what it points to
    if stat.S_IMODE(status.st_mode) != mode and not stat.S_ISLNK(status.st_mode):
        os.chmod(path, mode)
