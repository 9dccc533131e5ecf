"""Captured output: the reference's ``logs`` table (+ its FTS5 index) and our file offsets.

The supervisor tails each instance's log files into ``logs``; ``log_offsets`` remembers
how far it got in each file (by inode, so a rotated file starts over). Writing the lines
and the new offsets in one transaction means a restart neither loses nor repeats a line.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tenement.store import _sqlite, _time
from tenement.store._base import StoreBase, in_list, insert_sql, upsert
from tenement.store._db import Session

#: paths per IN (...) list: well under every database's bound-parameter limit
_IN_CHUNK = 500
#: log rows per INSERT statement on SQLite (see :meth:`LogQueries.insert_logs`)
_INSERT_CHUNK = 500
_COLUMNS = ("timestamp", "level", "process", "instance_id", "message")

_SELECTED = "id, " + ", ".join(_COLUMNS)
_INSERT = insert_sql("logs", _COLUMNS)

LEVELS = ("stdout", "stderr")
#: the largest LIMIT either database takes (a signed 64-bit integer)
_MAX_SQL_INT = 2**63 - 1


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
    def from_row(cls, row: Any) -> LogEntry:
        return cls(
            timestamp_ms=_time.ms_from_rfc3339(row["timestamp"]),
            level=row["level"],
            process=row["process"],
            instance_id=row["instance_id"],
            message=row["message"],
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


def _insert_many_per_statement(session: Session, entries: Sequence[LogEntry]) -> None:
    """Many rows per INSERT statement (SQLite).

    The reference's schema indexes ``logs`` into FTS5 with an ``AFTER INSERT`` trigger,
    and FTS5 does work at the end of every statement: one row per statement
    (``executemany``) indexed 16k lines/s here, 500 rows per statement 107k.
    """
    rows = [entry.values() for entry in entries]
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        session.execute(_insert_statement(len(chunk)), tuple(v for row in chunk for v in row))


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
            if entries and conn.dialect == "sqlite":
                _insert_many_per_statement(conn, entries)
            elif entries:
                conn.executemany(_INSERT, [entry.to_row() for entry in entries])
            rows = [
                {"path": path, "inode": inode, "byte_offset": offset}
                for path, (inode, offset) in (offsets or {}).items()
            ]
            upsert(conn, "log_offsets", ("path",), rows)

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
                listed, params = in_list("p", paths[start : start + _IN_CHUNK])
                rows = conn.execute(
                    f"SELECT path, inode, byte_offset FROM log_offsets WHERE path IN {listed}",
                    params,
                ).rows
                for row in rows:
                    found[row["path"]] = (int(row["inode"]), int(row["byte_offset"]))
        return found

    def query_logs(
        self,
        *,
        process: str | None = None,
        instance_id: str | None = None,
        level: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        max_chars: int | None = None,
    ) -> list[LogEntry]:
        """The LAST ``limit`` entries matching every given filter, oldest first; with
        ``max_chars``, only as many of the newest as hold that many characters of message
        (at least one), so that no answer grows with what a tenant prints.

        ``search`` finds words: on SQLite through the FTS5 index, as one phrase in which
        no character is an operator (``"foo*`` finds "foo"); elsewhere, and on SQLite for
        a search of punctuation only, as a case-sensitive substring. A NUL character is
        searched for like any other (PostgreSQL stores none, so it finds nothing there).
        """
        filters = (process, instance_id, level, search)
        if not self._sqlite and any(value and "\x00" in value for value in filters):
            # PostgreSQL text holds no NUL, so nothing matches (and the driver refuses one)
            return []
        conditions = []
        params: dict[str, Any] = {}
        for column, value in (("process", process), ("instance_id", instance_id), ("level", level)):
            if value is not None:
                conditions.append(f"{column} = :{column}")
                params[column] = value
        if search:
            conditions.append(self._search_condition(search, params))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        newest = f"SELECT {_SELECTED} FROM logs{where} ORDER BY id DESC"
        if limit is not None:
            newest += " LIMIT :limit"
            # both databases take a signed 64-bit LIMIT; more rows than that is all of them
            params["limit"] = min(max(limit, 0), _MAX_SQL_INT)
        with self._read() as conn:
            if max_chars is not None:
                newest = self._within(conn, where, newest, params, max_chars)
            rows = conn.execute(f"SELECT * FROM ({newest}) AS newest ORDER BY id", params).rows
            return [LogEntry.from_row(row) for row in rows]

    @staticmethod
    def _within(conn: Any, where: str, newest: str, params: dict[str, Any], max_chars: int) -> str:
        """``newest`` narrowed to the entries that fit ``max_chars``: their sizes are read
        first (ids and lengths, no messages), newest first, up to the same limit."""
        limit = " LIMIT :limit" if "limit" in params else ""
        sizes = conn.execute(
            f"SELECT id, length(message) AS size FROM logs{where} ORDER BY id DESC{limit}", params
        ).rows
        total, oldest = 0, None
        for row in sizes:
            total += int(row["size"] or 0)
            if total > max_chars and oldest is not None:
                break
            oldest = int(row["id"])
        if oldest is None:
            return newest
        params["oldest"] = oldest
        condition = " AND id >= :oldest" if where else " WHERE id >= :oldest"
        return newest.replace(f"FROM logs{where}", f"FROM logs{where}{condition}", 1)

    def _search_condition(self, search: str, params: dict[str, Any]) -> str:
        if not self._sqlite:
            params["pattern"] = _like_pattern(search)
            return "message LIKE :pattern ESCAPE '\\'"
        phrase = _sqlite.fts_phrase(search)
        if phrase is None:
            # instr, unlike SQLite's LIKE, does not stop at a NUL character in either string
            params["needle"] = search
            return "instr(message, :needle) > 0"
        params["phrase"] = phrase
        return "id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH :phrase)"

    def prune_logs(self, *, older_than_ms: int | None = None, keep_rows: int | None = None) -> int:
        """Delete entries older than ``older_than_ms`` and all but the newest ``keep_rows``.

        Returns:
            how many entries were deleted.
        """
        deleted = 0
        with self._write() as conn:
            if older_than_ms is not None:
                deleted += conn.execute(
                    "DELETE FROM logs WHERE timestamp < :cutoff",
                    {"cutoff": _time.rfc3339_from_ms(older_than_ms)},
                ).rowcount
            if keep_rows is not None:
                boundary = conn.execute(
                    "SELECT id FROM logs ORDER BY id DESC LIMIT 1 OFFSET :keep",
                    {"keep": max(keep_rows, 0)},
                ).scalar()
                if boundary is not None:
                    deleted += conn.execute(
                        "DELETE FROM logs WHERE id <= :boundary", {"boundary": boundary}
                    ).rowcount
        return deleted
