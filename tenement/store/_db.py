"""The two ways the store reaches its database: sqlite3 itself, or a SQLAlchemy engine.

A SQLite file, the default and by far the common case, is used through the standard
library's sqlite3: importing SQLAlchemy was about 0.3 s of every ``ten serve`` start
(py-spy, with 1,000 instances to adopt), and the store's queries need none of it. Any
other URL (PostgreSQL, …) goes through SQLAlchemy, imported only then. Queries are
written once, as SQL text with ``:name`` parameters, which both accept; migrations
(Alembic) always use a SQLAlchemy engine, created on first use (:attr:`Database.engine`).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from tenement.store import _connect, _sqlite
from tenement.store.errors import StoreError

if TYPE_CHECKING:
    import sqlalchemy as sa

#: parameters of one statement: by name (``:name``), or by position (``?``, SQLite only)
Params = Mapping[str, Any] | Sequence[Any]

#: idle sqlite3 connections kept for reuse; more are opened when threads need them
POOL_SIZE = 4


class Result:
    """What one statement returned: its rows (read by column name) and its row count."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        row = self.first()
        return None if row is None else row[next(iter(row.keys()))]


class Session(Protocol):
    """One transaction's connection."""

    #: ``sqlite``, ``postgresql``, …
    dialect: str

    def execute(self, sql: str, params: Params | None = None) -> Result: ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...


def database_now(session: Session) -> str:
    """SQL for the database's clock in epoch seconds (a double): a fleet's one clock."""
    if session.dialect == "postgresql":
        return "CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION)"
    return "((julianday('now') - 2440587.5) * 86400.0)"


class Database(Protocol):
    """A database the store can run read and write transactions on. Thread-safe."""

    url: str
    display_url: str
    dialect: str

    @property
    def error(self) -> type[Exception]:
        """What the driver raises for a failed statement (read-only here, so that each
        database may name its driver's own class)."""
        ...

    def read(self) -> contextlib.AbstractContextManager[Session]: ...

    def write(self) -> contextlib.AbstractContextManager[Session]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite); commits on success."""
        ...

    @property
    def engine(self) -> sa.Engine:
        """A SQLAlchemy engine on the same database (migrations, tools, tests)."""
        ...

    def close(self) -> None:
        """Close every idle connection (the next transaction opens new ones). Idempotent."""
        ...


def open_database(url: str) -> Database:
    """The database at ``url``: sqlite3 for a SQLite file, SQLAlchemy for the rest."""
    path = _sqlite.sqlite_path(url)
    if path is not None:
        return SqliteDatabase(url, path)
    return SqlAlchemyDatabase(url)


def check_url(url: str) -> None:
    """Raise now what opening ``url`` would: a URL that cannot be parsed, or a driver that
    is not installed (:class:`~tenement.store.errors.DriverMissing`). Connects to nothing."""
    open_database(url).close()


class _SqliteSession:
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params | None = None) -> Result:
        cursor = self._connection.execute(sql, params or ())
        rows = cursor.fetchall() if cursor.description else []
        return Result(rows, cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._connection.executemany(sql, rows)


class SqliteDatabase:
    """A SQLite file through sqlite3, with a small pool of connections."""

    dialect = "sqlite"
    error = sqlite3.Error

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.display_url = url
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._engine: sa.Engine | None = None
        self._tracer: Callable[[int, str], None] | None = None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=_sqlite.BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,  # one thread at a time, handed over by the pool
        )
        try:
            _sqlite.prepare(connection)
        except BaseException:
            connection.close()
            raise
        connection.row_factory = sqlite3.Row
        return connection

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled sqlite3 connection outside any transaction (backups use it)."""
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
        tracer = self._tracer
        connection.set_trace_callback(
            None if tracer is None else functools.partial(tracer, id(connection))
        )
        try:
            yield connection
        except BaseException:
            connection.close()
            raise
        if connection.in_transaction:  # never hand a half-done transaction on
            connection.close()
            return
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                connection = None
        if connection is not None:
            connection.close()

    @contextlib.contextmanager
    def _transaction(self, begin: str, end: str) -> Iterator[Session]:
        with self.connection() as connection:
            connection.execute(begin)
            try:
                yield _SqliteSession(connection)
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute(end)

    def read(self) -> contextlib.AbstractContextManager[Session]:
        # a read ends as SQLAlchemy ends one: rolled back (it changed nothing)
        return self._transaction("BEGIN", "ROLLBACK")

    def write(self) -> contextlib.AbstractContextManager[Session]:
        return self._transaction("BEGIN IMMEDIATE", "COMMIT")

    def trace(self, tracer: Callable[[int, str], None] | None) -> None:
        """From the next transaction on, call ``tracer(connection id, statement)`` for
        every statement run, values filled in (None: stop). For tests."""
        self._tracer = tracer

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            import sqlalchemy as sa

            engine = sa.create_engine(self.url)
            _sqlite.configure(engine)
            self._engine = engine
        return self._engine

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if self._engine is not None:
            self._engine.dispose()


class _SqlAlchemySession:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect.name

    def execute(self, sql: str, params: Params | None = None) -> Result:
        import sqlalchemy as sa

        result = self._connection.execute(sa.text(sql), params or {})
        rows = result.mappings().all() if result.returns_rows else []
        return Result(rows, result.rowcount)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        import sqlalchemy as sa

        # named parameters only: positional ones (``?``) are the sqlite3 session's
        self._connection.execute(sa.text(sql), cast("list[Mapping[str, Any]]", list(rows)))


def _on_error(url: sa.URL, context: sa.engine.ExceptionContext) -> BaseException | None:
    """SQLAlchemy's ``handle_error`` hook: a failed connect (there is no connection yet),
    or a connection the server dropped (it restarted: SQLAlchemy then empties the pool),
    becomes :class:`~tenement.store.errors.DatabaseUnavailable`, wherever it happened
    (a query, a migration, a schema check); statement errors pass unchanged."""
    if context.connection is not None and not context.is_disconnect:
        return None
    return _connect.connect_failed(url, context.original_exception)


class SqlAlchemyDatabase:
    """Any database SQLAlchemy reaches (and in-memory SQLite)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        parsed = _connect.parse_url(url)
        try:
            engine = sa.create_engine(parsed, connect_args=_connect.connect_args(parsed))
        except ImportError as exc:
            raise _connect.driver_missing(parsed, exc) from None
        except sa.exc.NoSuchModuleError:
            raise StoreError(
                f"database_url names {parsed.drivername!r}, a database SQLAlchemy does not "
                "know; use postgresql://… or sqlite:///… (docs/configuration.md)"
            ) from None
        self.dialect = engine.dialect.name
        self.error = sa.exc.DBAPIError
        if self.dialect == "sqlite":
            _sqlite.configure(engine)
        else:
            sa.event.listen(engine, "handle_error", functools.partial(_on_error, parsed))
        self._engine = engine
        self._writer = engine.execution_options(**{_sqlite.WRITE_OPTION: True})
        self.url = engine.url.render_as_string(hide_password=False)
        self.display_url = _connect.display(engine.url)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._engine.connect() as connection:
            yield _SqlAlchemySession(connection)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        with self._writer.begin() as connection:
            yield _SqlAlchemySession(connection)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()
