"""The transactions every part of :class:`~tenement.store.Store` shares, and the upsert."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tenement.store._db import Database, Session
from tenement.store.outage import Outage

if TYPE_CHECKING:
    import sqlalchemy as sa
    import trio

T = TypeVar("T")


class StoreBase:
    """A database plus read/write transactions. Thread-safe; one per process and database.

    Attributes:
        url: the database URL (as given).
        database: how the store reaches it (``_db.py``).
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.url = database.url
        self._sqlite = database.dialect == "sqlite"
        self._limiter: trio.CapacityLimiter | None = None
        #: whether the database is out of reach now (background writers skip meanwhile)
        self.outage = Outage()
        #: the fleet node this process is (``[fleet] node``), None on a single host. Set,
        #: it keeps the instance rows, the supervisor lease and the server list to this
        #: node's own: another node's tenants are never adopted, restarted or reaped here.
        self.node: str | None = None

    @property
    def engine(self) -> sa.Engine:
        """A SQLAlchemy engine on the same database (for migrations, tools and tests)."""
        return self.database.engine

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.database.display_url

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    def _read(self) -> contextlib.AbstractContextManager[Session]:
        return self.database.read()

    def _write(self) -> contextlib.AbstractContextManager[Session]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite); commits on success."""
        return self.database.write()

    @contextlib.contextmanager
    def begin_write(self) -> Iterator[sa.Connection]:
        """A SQLAlchemy write transaction, for the migration runner (Alembic)."""
        from tenement.store import _sqlite

        with self.engine.execution_options(**{_sqlite.WRITE_OPTION: True}).begin() as conn:
            yield conn

    def ping(self) -> None:
        """Connect and run one trivial query.

        Raises:
            DatabaseUnavailable: the database server cannot be reached or refused us.
        """
        with self._read() as session:
            session.execute("SELECT 1")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call in a worker thread, one at a time.

        Cancellation: the call is never abandoned; a cancelled caller waits for it to
        finish (a write must not continue unseen).
        """
        import trio

        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(1)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def read_aside(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking read in a worker thread of its own, beside the queue of
        :meth:`run`: it waits for no write, and a caller that is cancelled stops
        waiting for it at once (the read ends on its own, within the connection's
        bounds, and its answer is dropped). For reads a request waits on; never for a
        write, which must not go on unseen."""
        import trio

        return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        self.database.close()


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """``INSERT INTO table (columns) VALUES (:column, …)``."""
    values = ", ".join(f":{column}" for column in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"


def upsert_sql(table: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` of ``columns`` (SQLite and PostgreSQL)."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return f"{insert_sql(table, columns)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"


def upsert(
    session: Session,
    table: str,
    key: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Insert each of ``rows`` into ``table``, or update it where its ``key`` columns match.

    One ``INSERT … ON CONFLICT`` statement for every row on SQLite and PostgreSQL;
    update-then-insert, row by row, elsewhere.
    """
    if not rows:
        return
    columns = list(rows[0])
    if session.dialect in ("sqlite", "postgresql"):
        session.executemany(upsert_sql(table, key, columns), rows)
        return
    sets = ", ".join(f"{c} = :{c}" for c in columns if c not in key)
    where = " AND ".join(f"{k} = :{k}" for k in key)
    for row in rows:
        if session.execute(f"UPDATE {table} SET {sets} WHERE {where}", row).rowcount == 0:
            session.execute(insert_sql(table, columns), row)


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name0, :name1, …)`` and its parameters, for ``column IN …``."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{p}" for p in params) + ")", params
