"""The connection handling every part of :class:`~tenement.store.Store` shares."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from tenement.store import _sqlite

T = TypeVar("T")


class StoreBase:
    """An engine plus read/write transactions. Thread-safe; one per process and database.

    Attributes:
        url: the database URL (as given).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self.url = engine.url.render_as_string(hide_password=False)
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = engine.execution_options(**{_sqlite.WRITE_OPTION: True})
        self._limiter: Any = None

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for migrations and tests)."""
        return self._engine

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite); commits on success."""
        with self._writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def begin_write(self) -> Iterator[sa.Connection]:
        """A write transaction for callers outside the store (the migration runner)."""
        with self._write() as conn:
            yield conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call in a worker thread, one at a time.

        Cancellation: the call is never abandoned; a cancelled caller waits for it to
        finish (a write must not continue unseen).
        """
        import trio

        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(1)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        self._engine.dispose()


def upsert(
    conn: sa.Connection, table: sa.Table, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Insert ``key | values`` into ``table``, or update ``values`` where ``key`` matches.

    Uses ``INSERT … ON CONFLICT`` on SQLite and PostgreSQL, update-then-insert elsewhere.
    """
    row = {**key, **values}
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(table).values(row)
        conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=dict(values)))
        return
    where = sa.and_(*(table.c[k] == v for k, v in key.items()))
    if conn.execute(table.update().where(where).values(dict(values))).rowcount == 0:
        conn.execute(table.insert().values(row))


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
