"""Instance records: what the supervisor needs to adopt its tenants after a restart."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from tenement.store._base import StoreBase, upsert
from tenement.store._db import Session

#: the ``instances`` table's columns, each named as the :class:`InstanceRecord` field
COLUMNS = (
    "instance_id",
    "service",
    "tenant",
    "pid",
    "start_ticks",
    "pgid",
    "port",
    "socket",
    "weight",
    "health",
    "state",
    "restart_times",
    "restarts_total",
    "started_at",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM instances"


def _times(values: Iterable[float]) -> tuple[float, ...]:
    """``restart_times`` as a tuple (a typed ``converter=tuple``)."""
    return tuple(values)


@attrs.frozen
class InstanceRecord:
    """One instance (``service:tenant``) as the database keeps it.

    Attributes:
        start_ticks: field 22 of ``/proc/<pid>/stat``; with ``pid`` it tells our process
            from a later one that reused the pid.
        state: ``starting``, ``running``, ``stopped`` or ``failed`` (as
            ``tenement/supervisor/instance.py`` names them).
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
    restart_times: tuple[float, ...] = attrs.field(default=(), converter=_times)
    restarts_total: int = 0
    started_at: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> InstanceRecord:
        times = row["restart_times"]
        if isinstance(times, str):  # JSON text (SQLite); PostgreSQL's json arrives parsed
            times = json.loads(times)
        fields = {column: row[column] for column in COLUMNS if column != "restart_times"}
        return cls(**fields, restart_times=tuple(float(t) for t in times or ()))

    def to_row(self) -> dict[str, object]:
        row = attrs.asdict(self, recurse=False)
        row["restart_times"] = json.dumps(list(self.restart_times))
        return row


def upsert_instances(session: Session, records: Sequence[InstanceRecord]) -> None:
    """Insert or replace ``records`` within the caller's transaction (one statement,
    executed with every row, on SQLite and PostgreSQL)."""
    upsert(session, "instances", ("instance_id",), [record.to_row() for record in records])


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
            result = conn.execute(
                "DELETE FROM instances WHERE instance_id = :id", {"id": instance_id}
            )
            return result.rowcount > 0

    def load_instances(self) -> list[InstanceRecord]:
        """Every instance record, ordered by instance id."""
        with self._read() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY instance_id").rows
            return [InstanceRecord.from_row(row) for row in rows]

    def instances_signature(self) -> tuple[int, float]:
        """How many records there are and the latest ``updated_at``: a cheap "changed?" probe.

        Every save stamps ``updated_at``, so a reader that keeps a copy of the records
        (a standby server's routing table) reloads them only when this changes.
        """
        with self._read() as conn:
            row = conn.execute(
                "SELECT count(*) AS n, max(updated_at) AS latest FROM instances"
            ).first()
            return int(row["n"]), float(row["latest"] or 0.0)

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The record of one instance, or None."""
        with self._read() as conn:
            row = conn.execute(f"{_SELECT} WHERE instance_id = :id", {"id": instance_id}).first()
            return None if row is None else InstanceRecord.from_row(row)
