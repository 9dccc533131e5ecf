"""SQLite specifics: the file behind a URL, connection pragmas, write transactions.

Every connection gets WAL with ``synchronous = NORMAL``, ``busy_timeout`` 5 s and
foreign keys. Connections run in autocommit mode so that our transaction boundaries
are the real ones: reads start with a plain ``BEGIN``, writes with ``BEGIN IMMEDIATE``.
Taking the write lock up front means a second writer (``ten token-gen`` while ``ten
serve`` runs) waits for up to ``busy_timeout`` instead of failing on a lock upgrade,
which ``busy_timeout`` can't cover. This holds for both ways in: the store's own
sqlite3 connections (``_db.py``) and the SQLAlchemy engine migrations use
(:func:`configure`).

Nothing here imports SQLAlchemy at module level: ``ten serve`` on SQLite never loads it
unless the schema needs migrating.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

#: how long a connection waits for another writer's lock
BUSY_TIMEOUT_MS = 5000

#: execution option that makes a SQLAlchemy transaction start with ``BEGIN IMMEDIATE``
WRITE_OPTION = "tenement_write"

#: tables and shadow tables that belong to SQLite's FTS5 index of ``logs.message``
FTS_TABLES = ("logs_fts", "logs_fts_data", "logs_fts_idx", "logs_fts_docsize", "logs_fts_config")


def backend_name(url: str) -> str:
    """The database kind a URL names: ``sqlite`` for ``sqlite+pysqlite://…``, and so on."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    return scheme.partition("+")[0]


def is_sqlite(url: str) -> bool:
    """True for any ``sqlite`` URL (``sqlite://``, ``sqlite+pysqlite://``)."""
    return backend_name(url) == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for in-memory databases and other backends.

    Read the way SQLAlchemy reads it: ``sqlite:///relative.db``, ``sqlite:////abs.db``;
    a query string (``?timeout=…``) is not part of the path.
    """
    if backend_name(url) != "sqlite":
        return None
    rest = url.partition("://")[2]
    _host, slash, database = rest.partition("/")
    database = urllib.parse.unquote(database.partition("?")[0]) if slash else ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def prepare(connection: sqlite3.Connection) -> None:
    """Autocommit mode plus the pragmas described in the module docstring."""
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        # with WAL, NORMAL never corrupts the database; a power cut may lose the last
        # commits, a crash of the process none. FULL syncs every commit (0.3 ms here)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def configure(engine: sa.Engine) -> None:
    """The same connections and transactions for a SQLAlchemy engine (migrations, tools)."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        prepare(dbapi_connection)

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
    # FTS5 reads a query up to its first NUL ("unterminated string"); its tokenizer splits
    # the indexed text at a NUL as at a space, so a space finds the same words.
    return '"' + search.replace('"', '""').replace("\x00", " ") + '"'
