"""SQLite specifics: the file behind a URL, connection pragmas, write transactions.

Every connection gets WAL with ``synchronous = NORMAL``, ``busy_timeout`` 5 s and
foreign keys. Python's sqlite3
module is switched to autocommit so that SQLAlchemy's transaction boundaries are the
real ones: reads start with a plain ``BEGIN``, writes with ``BEGIN IMMEDIATE`` (asked
for with the ``tenement_write`` execution option). Taking the write lock up front means
a second writer (``ten token-gen`` while ``ten serve`` runs) waits for up to
``busy_timeout`` instead of failing on a lock upgrade, which ``busy_timeout`` can't cover.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

#: how long a connection waits for another writer's lock
BUSY_TIMEOUT_MS = 5000

#: execution option that makes a transaction start with ``BEGIN IMMEDIATE``
WRITE_OPTION = "tenement_write"


def is_sqlite(url: str | sa.URL) -> bool:
    """True for any ``sqlite`` URL (``sqlite://``, ``sqlite+pysqlite://``)."""
    return sa.make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | sa.URL) -> Path | None:
    """The database file of a SQLite URL; None for in-memory databases and other backends."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def configure(engine: sa.Engine) -> None:
    """Install the pragmas and the transaction handling described in the module docstring."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _use_wal(cursor)
            # with WAL, NORMAL never corrupts the database; a power cut may lose the last
            # commits, a crash of the process none. FULL syncs every commit (0.3 ms here)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """Switch the database to WAL unless it is already (the mode is kept in the file).

    Switching needs the database to itself, and SQLite answers "database is locked" at
    once instead of calling the busy handler when another connection holds a lock (two
    processes opening a new database together: ``ten serve`` and its workers). So it is
    tried again until ``busy_timeout`` has passed.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def fts_phrase(search: str) -> str | None:
    """``search`` as one FTS5 phrase: every character literal, ``"`` doubled.

    Inside a quoted FTS5 string no character is an operator (``*``, ``:``, ``^``, ``(``
    …); the tokenizer then splits it into words, so ``a:b`` finds "a:b" and ``"foo*``
    finds "foo". Returns None when the search has no word characters at all (FTS5 can't
    search for punctuation); the caller falls back to a substring match.
    """
    if not any(ch.isalnum() for ch in search):
        return None
    return '"' + search.replace('"', '""') + '"'
