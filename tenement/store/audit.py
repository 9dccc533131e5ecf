"""The audit trail: the reference's ``deploy_log`` table (spawn, stop, deploy, route…)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from tenement.store import _time
from tenement.store._base import StoreBase, insert_sql
from tenement.store._db import Session


@attrs.frozen
class AuditRow:
    """One audited action."""

    id: int
    timestamp: datetime
    action: str
    process: str
    instance_id: str
    details: str | None
    success: bool

    @classmethod
    def from_row(cls, row: Any) -> AuditRow:
        return cls(
            id=row["id"],
            timestamp=_time.parse_rfc3339(row["timestamp"]),
            action=row["action"],
            process=row["process"],
            instance_id=row["instance_id"],
            details=row["details"],
            success=bool(row["success"]),
        )


_INSERT = insert_sql(
    "deploy_log", ("timestamp", "action", "process", "instance_id", "details", "success")
)

#: the arguments of :meth:`AuditQueries.audit`: action, process, tenant, details, success
AuditArgs = tuple[str, str, str, str | None, bool]


def insert_audit(session: Session, entries: Sequence[AuditArgs]) -> None:
    """Insert ``entries`` (timestamped now) within the caller's transaction."""
    if not entries:
        return
    now = _time.utc_now_rfc3339()
    session.executemany(
        _INSERT,
        [
            {
                "timestamp": now,
                "action": action,
                "process": process,
                "instance_id": instance_id,
                "details": details,
                "success": 1 if success else 0,
            }
            for action, process, instance_id, details, success in entries
        ],
    )


class AuditQueries(StoreBase):
    """The audit part of :class:`~tenement.store.Store`."""

    def audit(
        self,
        action: str,
        process: str,
        instance_id: str,
        details: str | None = None,
        success: bool = True,
    ) -> None:
        """Record an action on ``process:instance_id`` (``instance_id`` is the tenant id)."""
        self.audit_many([(action, process, instance_id, details, success)])

    def audit_many(self, entries: Sequence[AuditArgs]) -> None:
        """Record every action in ``entries`` (each the arguments of :meth:`audit`), all in
        one transaction."""
        if not entries:
            return
        with self._write() as conn:
            insert_audit(conn, entries)

    def recent_audit(self, limit: int) -> list[AuditRow]:
        """The ``limit`` newest actions, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, timestamp, action, process, instance_id, details, success"
                " FROM deploy_log ORDER BY id DESC LIMIT :limit",
                {"limit": max(limit, 0)},
            ).rows
            return [AuditRow.from_row(row) for row in rows]

    def instance_audit(self, process: str, instance_id: str, limit: int) -> list[AuditRow]:
        """The ``limit`` newest actions on ``process:instance_id``, newest first.

        Walks the table from its newest row (no index on the instance): fine for the
        dashboard's one instance at a time; an instance with no recent rows costs a scan.
        """
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, timestamp, action, process, instance_id, details, success"
                " FROM deploy_log WHERE process = :process AND instance_id = :instance"
                " ORDER BY id DESC LIMIT :limit",
                {"process": process, "instance": instance_id, "limit": max(limit, 0)},
            ).rows
            return [AuditRow.from_row(row) for row in rows]
