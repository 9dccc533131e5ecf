"""Captured output: the reference's ``logs`` table (+ its FTS5 index) and our file offsets.

The supervisor tails each instance's log files into ``logs``; ``log_offsets`` remembers
how far it got in each file (by inode, so a rotated file starts over). Writing the lines
and the new offsets in one transaction means a restart neither loses nor repeats a line.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import attrs
import sqlalchemy as sa

from tenement.store import _sqlite, _time
from tenement.store._base import StoreBase, upsert
from tenement.store.tables import log_offsets, logs

#: paths per IN (...) list: well under every database's bound-parameter limit
_IN_CHUNK = 500
#: log rows per INSERT statement on SQLite (see :meth:`LogQueries.insert_logs`)
_INSERT_CHUNK = 500
_COLUMNS = ("timestamp", "level", "process", "instance_id", "message")

LEVELS = ("stdout", "stderr")


@attrs.frozen
class LogEntry:
    """One line of output.

    Attributes:
        timestamp_ms: epoch milliseconds.
        level: ``stdout`` or ``stderr``.
        process: the service name.
        instance_id: the tenant id (the reference's JSON field name).
    """

    timestamp_ms: int
    level: str
    process: str
    instance_id: str
    message: str

    @classmethod
    def from_row(cls, row: sa.Row) -> LogEntry:
        return cls(
            timestamp_ms=_time.ms_from_rfc3339(row.timestamp),
            level=row.level,
            process=row.process,
            instance_id=row.instance_id,
            message=row.message,
        )

    def values(self) -> tuple[str, str, str, str, str]:
        """The row's values, in :data:`_COLUMNS` order."""
        return (
            _time.rfc3339_from_ms(self.timestamp_ms),
            self.level,
            self.process,
            self.instance_id,
            self.message,
        )

    def to_row(self) -> dict[str, object]:
        return dict(zip(_COLUMNS, self.values(), strict=True))


def _insert_sqlite(conn: sa.Connection, entries: Sequence[LogEntry]) -> None:
    """Many rows per INSERT statement.

    The reference's schema indexes ``logs`` into FTS5 with an ``AFTER INSERT`` trigger,
    and FTS5 does work at the end of every statement: one row per statement
    (``executemany``) indexed 16k lines/s here, 500 rows per statement 107k.
    """
    rows = [entry.values() for entry in entries]
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        conn.exec_driver_sql(_insert_statement(len(chunk)), tuple(v for row in chunk for v in row))


@functools.lru_cache(maxsize=8)
def _insert_statement(count: int) -> str:
    values = ",".join(["(?,?,?,?,?)"] * count)
    return f"INSERT INTO logs ({', '.join(_COLUMNS)}) VALUES {values}"


def _like_pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class LogQueries(StoreBase):
    """The log part of :class:`~tenement.store.Store`."""

    def insert_logs(
        self,
        entries: Sequence[LogEntry],
        offsets: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        """Append ``entries`` and save ``offsets`` (path -> (inode, offset)) in one transaction."""
        if not entries and not offsets:
            return
        with self._write() as conn:
            if entries and conn.dialect.name == "sqlite":
                _insert_sqlite(conn, entries)
            elif entries:
                conn.execute(logs.insert(), [entry.to_row() for entry in entries])
            for path, (inode, offset) in (offsets or {}).items():
                upsert(conn, log_offsets, {"path": path}, {"inode": inode, "byte_offset": offset})

    def save_log_offsets(self, offsets: Mapping[str, tuple[int, int]]) -> None:
        """Save offsets alone (path -> (inode, offset)), e.g. after skipping unreadable bytes."""
        self.insert_logs((), offsets)

    def log_offset(self, path: str) -> tuple[int, int] | None:
        """(inode, offset) saved for ``path``, or None."""
        return self.log_offsets([path]).get(path)

    def log_offsets(self, paths: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(inode, offset) saved for each of ``paths`` that has one, in one read."""
        found: dict[str, tuple[int, int]] = {}
        with self._read() as conn:
            for start in range(0, len(paths), _IN_CHUNK):
                rows = conn.execute(
                    sa.select(
                        log_offsets.c.path, log_offsets.c.inode, log_offsets.c.byte_offset
                    ).where(log_offsets.c.path.in_(paths[start : start + _IN_CHUNK]))
                )
                for row in rows:
                    found[row.path] = (int(row.inode), int(row.byte_offset))
        return found

    def query_logs(
        self,
        *,
        process: str | None = None,
        instance_id: str | None = None,
        level: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """The LAST ``limit`` entries matching every given filter, oldest first.

        ``search`` finds words: on SQLite through the FTS5 index, as one phrase in which
        no character is an operator (``"foo*`` finds "foo"); elsewhere, and on SQLite for
        a search of punctuation only, as a case-sensitive substring (SQLite's LIKE is
        case-insensitive for ASCII).
        """
        conditions = []
        if process is not None:
            conditions.append(logs.c.process == process)
        if instance_id is not None:
            conditions.append(logs.c.instance_id == instance_id)
        if level is not None:
            conditions.append(logs.c.level == level)
        if search:
            conditions.append(self._search_condition(search))
        inner = sa.select(logs).where(*conditions).order_by(logs.c.id.desc())
        if limit is not None:
            inner = inner.limit(max(limit, 0))
        newest = inner.subquery()
        query = sa.select(newest).order_by(newest.c.id)
        with self._read() as conn:
            return [LogEntry.from_row(row) for row in conn.execute(query)]

    def _search_condition(self, search: str) -> sa.ColumnElement[bool]:
        phrase = _sqlite.fts_phrase(search) if self._sqlite else None
        if phrase is None:
            return logs.c.message.like(_like_pattern(search), escape="\\")
        matches = sa.text("SELECT rowid FROM logs_fts WHERE logs_fts MATCH :phrase").bindparams(
            phrase=phrase
        )
        return logs.c.id.in_(matches.columns(sa.column("rowid", sa.Integer)))

    def prune_logs(self, *, older_than_ms: int | None = None, keep_rows: int | None = None) -> int:
        """Delete entries older than ``older_than_ms`` and all but the newest ``keep_rows``.

        Returns:
            how many entries were deleted.
        """
        deleted = 0
        with self._write() as conn:
            if older_than_ms is not None:
                cutoff = _time.rfc3339_from_ms(older_than_ms)
                deleted += conn.execute(logs.delete().where(logs.c.timestamp < cutoff)).rowcount
            if keep_rows is not None:
                boundary = conn.scalar(
                    sa.select(logs.c.id).order_by(logs.c.id.desc()).offset(max(keep_rows, 0))
                )
                if boundary is not None:
                    deleted += conn.execute(logs.delete().where(logs.c.id <= boundary)).rowcount
        return deleted
