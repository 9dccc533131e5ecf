"""The audit trail: the reference's ``deploy_log`` table (spawn, stop, deploy, route…)."""

from __future__ import annotations

from datetime import datetime

import attrs
import sqlalchemy as sa

from tenement.store import _time
from tenement.store._base import StoreBase
from tenement.store.tables import deploy_log


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
    def from_row(cls, row: sa.Row) -> AuditRow:
        return cls(
            id=row.id,
            timestamp=_time.parse_rfc3339(row.timestamp),
            action=row.action,
            process=row.process,
            instance_id=row.instance_id,
            details=row.details,
            success=bool(row.success),
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
        with self._write() as conn:
            conn.execute(
                deploy_log.insert().values(
                    timestamp=_time.utc_now_rfc3339(),
                    action=action,
                    process=process,
                    instance_id=instance_id,
                    details=details,
                    success=1 if success else 0,
                )
            )

    def recent_audit(self, limit: int) -> list[AuditRow]:
        """The ``limit`` newest actions, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(deploy_log).order_by(deploy_log.c.id.desc()).limit(max(limit, 0))
            )
            return [AuditRow.from_row(row) for row in rows]
