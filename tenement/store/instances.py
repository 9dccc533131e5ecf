"""Instance records: what the supervisor needs to adopt its tenants after a restart."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from tenement.store._base import StoreBase, insert_sql, upsert
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
#: what a single host reads; a fleet node reads the node too (revision 0005)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM instances"
_SELECT_FLEET = f"SELECT {', '.join(COLUMNS)}, node FROM instances"


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
    #: the fleet node that runs it (None on a single host); the store writes its own
    node: str | None = None

    @classmethod
    def from_row(cls, row: Any, *, with_node: bool = False) -> InstanceRecord:
        """``with_node``: the row has a ``node`` column (a fleet node's select)."""
        times = row["restart_times"]
        if isinstance(times, str):  # JSON text (SQLite); PostgreSQL's json arrives parsed
            times = json.loads(times)
        fields = {column: row[column] for column in COLUMNS if column != "restart_times"}
        if with_node:
            fields["node"] = row["node"]
        return cls(**fields, restart_times=tuple(float(t) for t in times or ()))

    def to_row(self) -> dict[str, object]:
        row = attrs.asdict(self, recurse=False)
        row["restart_times"] = json.dumps(list(self.restart_times))
        return row


def fleet_signature(session: Session) -> tuple[int, float, float]:
    """The count, latest and sum of ``updated_at`` of every node's instance rows: whether
    any changed (``tenement/server/directory.py``).

    The latest alone misses a save stamped before it and committed after it: every
    node stamps its rows with its own clock when it builds them, and the nodes' writes
    commit in any order (a node's spawn went unseen by a third node until some other row
    changed). The sum moves with any row's stamp; the directory reloads every few
    seconds whatever the signature says, for the changes that cancel out in it.
    """
    row = session.execute(
        "SELECT count(*) AS n, max(updated_at) AS latest, sum(updated_at) AS total FROM instances"
    ).first()
    return int(row["n"]), float(row["latest"] or 0.0), float(row["total"] or 0.0)


def upsert_instances(
    session: Session, records: Sequence[InstanceRecord], node: str | None = None
) -> None:
    """Insert or replace ``records`` within the caller's transaction (one statement,
    executed with every row, on SQLite and PostgreSQL).

    With ``node`` (a fleet node's store) each row is written as that node's, and a row
    another node owns is left as it is: a node never takes another's tenant by saving.
    """
    if node is None:
        # a single host writes the columns it always wrote: no node, no index to update
        rows = [record.to_row() for record in records]
        for row in rows:
            del row["node"]
        upsert(session, "instances", ("instance_id",), rows)
        return
    rows = [{**record.to_row(), "node": node} for record in records]
    if not rows:
        return
    columns = list(rows[0])
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "instance_id")
    session.executemany(
        f"{insert_sql('instances', columns)} ON CONFLICT (instance_id) DO UPDATE SET {updates} "
        "WHERE instances.node IS NULL OR instances.node = excluded.node",
        rows,
    )


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
            upsert_instances(conn, records, self.node)

    def delete_instance(self, instance_id: str) -> bool:
        """Forget an instance; False if there was no record."""
        mine, params = self._mine("AND")
        with self._write() as conn:
            result = conn.execute(
                f"DELETE FROM instances WHERE instance_id = :id {mine}",
                {"id": instance_id, **params},
            )
            return result.rowcount > 0

    def _select(self) -> str:
        return _SELECT if self.node is None else _SELECT_FLEET

    def _mine(self, joiner: str) -> tuple[str, dict[str, str]]:
        """The condition that keeps a fleet node to its own rows ("" on a single host)."""
        if self.node is None:
            return "", {}
        return f"{joiner} node = :node", {"node": self.node}

    def load_instances(self) -> list[InstanceRecord]:
        """Every instance record (of this node, in a fleet), ordered by instance id."""
        mine, params = self._mine("WHERE")
        with self._read() as conn:
            rows = conn.execute(f"{self._select()} {mine} ORDER BY instance_id", params).rows
            fleet = self.node is not None
            return [InstanceRecord.from_row(row, with_node=fleet) for row in rows]

    def claim_unowned_instances(self) -> int:
        """Make every row that names no node this fleet node's; returns how many.

        Rows from before the fleet (or from a single host that joined one) belong to
        the first node that adopts them: one ``UPDATE``, so two nodes starting at once
        cannot both take a row.
        """
        if self.node is None:
            return 0
        with self._write() as conn:
            result = conn.execute(
                "UPDATE instances SET node = :node WHERE node IS NULL", {"node": self.node}
            )
            return result.rowcount

    def claim_instance(self, instance_id: str, service: str, tenant: str, now: float) -> str | None:
        """Make ``instance_id`` this fleet node's before it starts here, unless another
        node's row has it: returns that node (then it must not start here), else None.

        One transaction: a row that did not exist is inserted as this node's, stopped,
        until the start saves it. Two nodes starting the same tenant at once (the same
        ``[instances]`` on every host) cannot both win: PostgreSQL makes the second
        insert wait for the first and then find the row taken.
        """
        if self.node is None:
            return None
        params = {"id": instance_id, "service": service, "tenant": tenant, "now": now}
        with self._write() as conn:
            conn.execute(
                "INSERT INTO instances (instance_id, service, tenant, socket, state, "
                "restart_times, updated_at, node) VALUES (:id, :service, :tenant, '', "
                "'stopped', '[]', :now, :node) ON CONFLICT (instance_id) DO UPDATE SET "
                "node = excluded.node WHERE instances.node IS NULL",
                {**params, "node": self.node},
            )
            owner: str | None = conn.execute(
                "SELECT node FROM instances WHERE instance_id = :id", params
            ).scalar()
        return owner if owner != self.node else None

    def instances_signature(self) -> tuple[int, float]:
        """How many records there are and the latest ``updated_at``: a cheap "changed?" probe.

        Every save stamps ``updated_at``, so a reader that keeps a copy of the records
        (a standby server's routing table) reloads them only when this changes.
        """
        mine, params = self._mine("WHERE")
        with self._read() as conn:
            row = conn.execute(
                f"SELECT count(*) AS n, max(updated_at) AS latest FROM instances {mine}", params
            ).first()
            return int(row["n"]), float(row["latest"] or 0.0)

    def fleet_owners(self) -> list[tuple[str, str, str, str, str, int]]:
        """(instance id, service, tenant, node, state, weight) of every row a fleet node
        holds (a node's directory of where to forward requests for tenants it does not
        run, and of the instances a weighted route picks among)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT instance_id, service, tenant, node, state, weight FROM instances "
                "WHERE node IS NOT NULL"
            ).rows
            return [
                (
                    row["instance_id"],
                    row["service"],
                    row["tenant"],
                    row["node"],
                    row["state"],
                    int(row["weight"]),
                )
                for row in rows
            ]

    def instance_node(self, instance_id: str) -> str | None:
        """The node whose row holds ``instance_id`` (any node's), or None."""
        with self._read() as conn:
            node: str | None = conn.execute(
                "SELECT node FROM instances WHERE instance_id = :id", {"id": instance_id}
            ).scalar()
            return node

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The record of one instance, or None."""
        with self._read() as conn:
            row = conn.execute(
                f"{self._select()} WHERE instance_id = :id", {"id": instance_id}
            ).first()
            fleet = self.node is not None
            return None if row is None else InstanceRecord.from_row(row, with_node=fleet)
