"""Instance records: what the supervisor needs to adopt its tenants after a restart."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import sqlalchemy as sa

from tenement.store._base import StoreBase, upsert
from tenement.store.tables import instances

STATES = ("starting", "running", "stopped", "failed")


@attrs.frozen
class InstanceRecord:
    """One instance (``service:tenant``) as the database keeps it.

    Attributes:
        start_ticks: field 22 of ``/proc/<pid>/stat``; with ``pid`` it tells our process
            from a later one that reused the pid.
        restart_times: epoch seconds of recent restarts (the backoff window).
        started_at, updated_at: epoch seconds.
    """

    instance_id: str
    service: str
    tenant: str
    pid: int | None
    start_ticks: int | None
    pgid: int | None
    port: int | None
    socket: str
    state: str
    updated_at: float
    weight: int = 100
    health: str = "unknown"
    restart_times: tuple[float, ...] = attrs.field(default=(), converter=tuple)
    restarts_total: int = 0
    started_at: float | None = None

    @classmethod
    def from_row(cls, row: sa.Row) -> InstanceRecord:
        return cls(
            instance_id=row.instance_id,
            service=row.service,
            tenant=row.tenant,
            pid=row.pid,
            start_ticks=row.start_ticks,
            pgid=row.pgid,
            port=row.port,
            socket=row.socket,
            state=row.state,
            updated_at=row.updated_at,
            weight=row.weight,
            health=row.health,
            restart_times=tuple(float(t) for t in row.restart_times or ()),
            restarts_total=row.restarts_total,
            started_at=row.started_at,
        )

    def to_row(self) -> dict[str, object]:
        row = attrs.asdict(self, recurse=False)
        row["restart_times"] = list(self.restart_times)
        return row


def upsert_instances(conn: sa.Connection, records: Sequence[InstanceRecord]) -> None:
    """Insert or replace ``records`` within the caller's transaction.

    On SQLite and PostgreSQL one ``INSERT … ON CONFLICT`` statement for all of them
    (built once, executed with every row); elsewhere one upsert per record.
    """
    rows = [record.to_row() for record in records]
    if not rows:
        return
    name = conn.dialect.name
    if name not in ("sqlite", "postgresql"):
        for row in rows:
            upsert(conn, instances, {"instance_id": row.pop("instance_id")}, row)
        return
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    stmt = insert(instances)
    columns = [column for column in rows[0] if column != "instance_id"]
    stmt = stmt.on_conflict_do_update(
        index_elements=["instance_id"], set_={column: stmt.excluded[column] for column in columns}
    )
    conn.execute(stmt, rows)


class InstanceQueries(StoreBase):
    """The instance part of :class:`~tenement.store.Store`."""

    def save_instance(self, record: InstanceRecord) -> None:
        """Insert or replace the record of ``record.instance_id``."""
        self.save_instances([record])

    def save_instances(self, records: Sequence[InstanceRecord]) -> None:
        """Insert or replace every record in ``records``, all in one transaction."""
        if not records:
            return
        with self._write() as conn:
            upsert_instances(conn, records)

    def delete_instance(self, instance_id: str) -> bool:
        """Forget an instance; False if there was no record."""
        with self._write() as conn:
            result = conn.execute(instances.delete().where(instances.c.instance_id == instance_id))
            return result.rowcount > 0

    def load_instances(self) -> list[InstanceRecord]:
        """Every instance record, ordered by instance id."""
        with self._read() as conn:
            rows = conn.execute(sa.select(instances).order_by(instances.c.instance_id))
            return [InstanceRecord.from_row(row) for row in rows]

    def instances_signature(self) -> tuple[int, float]:
        """How many records there are and the latest ``updated_at``: a cheap "changed?" probe.

        Every save stamps ``updated_at``, so a reader that keeps a copy of the records
        (a standby server's routing table) reloads them only when this changes.
        """
        with self._read() as conn:
            row = conn.execute(
                sa.select(sa.func.count(), sa.func.max(instances.c.updated_at))
            ).one()
            return int(row[0]), float(row[1] or 0.0)

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The record of one instance, or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(instances).where(instances.c.instance_id == instance_id)
            ).first()
            return None if row is None else InstanceRecord.from_row(row)
