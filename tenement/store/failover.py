"""A lost node's instances: re-placed on live nodes, or orphaned until it returns.

Done in the very transaction that declares the node down (``nodes.py``): a peer that
wins the declaration also re-places, and a peer that crashes between the two cannot
leave a down node's tenants unplaced. Every takeover increments the row's ``epoch``;
a node runs an instance only while the row names it (at the epoch it holds), so the
returning node finds out what was taken from it by reading its rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import attrs

from tenement.store._base import StoreBase
from tenement.store._db import Session
from tenement.store.instances import COLUMNS, InstanceRecord
from tenement.store.placement import LIVE_STATES, live_nodes, most_free

#: a row whose node is down and whose service may not fail over: listed, answered 503,
#: until its node returns (it re-adopts the tenant) or an operator re-places it
ORPHANED = "orphaned"
#: instance ids asked in one query by :meth:`FailoverQueries.owners` (well under
#: SQLite's and PostgreSQL's limits on a statement's parameters)
OWNERS_PER_QUERY = 500


@attrs.frozen
class Moved:
    """An instance re-placed on ``node`` at ``epoch`` (the lost node's was ``epoch - 1``)."""

    instance_id: str
    node: str
    epoch: int
    #: it was running on the lost node: the new owner starts it (else it stays stopped
    #: there, and is woken there as any stopped instance)
    start: bool


@attrs.frozen
class Held:
    """One of this node's instance rows, as a node follows them.

    Attributes:
        placed: a peer placed it here when its node was lost, and it should run: state
            ``starting`` with no process yet.
    """

    instance_id: str
    service: str
    tenant: str
    epoch: int
    placed: bool


@attrs.frozen
class Owner:
    """Who a row names now (None: no row)."""

    node: str | None
    epoch: int


def change_stamp(session: Session) -> float:
    """An ``updated_at`` for the rows failover changes: just past the latest of every
    row's. Every node's directory reloads its map when the latest ``updated_at`` moves
    (``server/directory.py``); without it, a moved stopped tenant (started only when
    woken) stayed mapped to its lost node, which answered 503 for it, until some other
    row changed. Not the database's clock: the rows carry their nodes' clocks, and a
    stamp far past them would hide the nodes' next saves from that signature."""
    latest = session.execute("SELECT max(updated_at) AS latest FROM instances").scalar()
    return float(latest or 0.0) + 0.001


def fail_over(
    session: Session,
    lost: str,
    now: str,
    timeout_s: float,
    services: Mapping[str, Collection[str] | None],
) -> tuple[list[Moved], list[str], list[str]]:
    """Within the caller's transaction, re-place the instances of the down node ``lost``
    whose service is in ``services`` on live nodes (epoch + 1), and mark its other live
    instances orphaned. Returns the moves, the orphaned ids, and those of the orphaned
    that could have failed over but found no live node their service allows.

    ``services`` maps each service that may fail over to the nodes it may run on
    (``[service.X] nodes``; None: any). Each instance goes where the placement policy
    (``placement.py``, as a spawn) says, counting those placed before it in this pass,
    so a lost node's tenants spread. With no live node it may go to (the declaring
    peer's own heartbeat is late too, or its service's nodes are all down) it stays:
    orphaned, and back with its node.
    """
    rows = session.execute(
        "SELECT instance_id, service, state, epoch FROM instances WHERE node = :lost "
        "ORDER BY instance_id",
        {"lost": lost},
    ).rows
    nodes = [node for node in live_nodes(session, now, timeout_s) if node["name"] != lost]
    moved: list[Moved] = []
    orphaned: list[str] = []
    stranded: list[str] = []
    for row in rows:
        live = row["state"] in LIVE_STATES
        service = row["service"]
        target = most_free(nodes, services[service]) if service in services else None
        if target is None:
            if live:
                orphaned.append(row["instance_id"])
                if service in services and nodes:
                    stranded.append(row["instance_id"])
            continue
        moved.append(Moved(row["instance_id"], target["name"], row["epoch"] + 1, live))
    changed = change_stamp(session) if moved or orphaned else 0.0
    if moved:
        # one statement for all of them (a lost node's 1,000 tenants were 1,000 round
        # trips, in the transaction that holds the nodes' rows); the lost node's process
        # facts stay out: the new owner writes its own
        session.executemany(
            "UPDATE instances SET node = :node, epoch = :epoch, pid = NULL, start_ticks = NULL, "
            "pgid = NULL, port = NULL, health = 'unknown', state = :state, "
            "updated_at = :changed WHERE instance_id = :id AND node = :lost",
            [
                {
                    "node": move.node,
                    "epoch": move.epoch,
                    "state": "starting" if move.start else "stopped",
                    "changed": changed,
                    "id": move.instance_id,
                    "lost": lost,
                }
                for move in moved
            ],
        )
    if orphaned:
        session.execute(
            f"UPDATE instances SET state = '{ORPHANED}', updated_at = :changed "
            f"WHERE node = :lost AND state IN {LIVE_STATES!r}",
            {"lost": lost, "changed": changed},
        )
    return moved, orphaned, stranded


class FailoverQueries(StoreBase):
    """What a node reads of its rows to follow takeovers (``server/fencing.py``)."""

    def held_here(self) -> list[Held]:
        """This node's instance rows, with their epochs (one indexed query)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT instance_id, service, tenant, epoch, state, pid FROM instances "
                "WHERE node = :node ORDER BY instance_id",
                {"node": self.node},
            ).rows
            return [
                Held(
                    row["instance_id"],
                    row["service"],
                    row["tenant"],
                    row["epoch"],
                    placed=row["state"] == "starting" and row["pid"] is None,
                )
                for row in rows
            ]

    def owners(self, instance_ids: Collection[str]) -> dict[str, Owner]:
        """Who each of ``instance_ids`` belongs to now (an id with no row: left out).

        One query per :data:`OWNERS_PER_QUERY` ids: a node back from fencing asks this
        of every tenant it knows (1,000 queries one by one, before it served again).
        """
        ids = list(instance_ids)
        found: dict[str, Owner] = {}
        if not ids:
            return found
        with self._read() as conn:
            for start in range(0, len(ids), OWNERS_PER_QUERY):
                chunk = ids[start : start + OWNERS_PER_QUERY]
                names = ", ".join(f":id{i}" for i in range(len(chunk)))
                rows = conn.execute(
                    f"SELECT instance_id, node, epoch FROM instances "
                    f"WHERE instance_id IN ({names})",
                    {f"id{i}": iid for i, iid in enumerate(chunk)},
                ).rows
                for row in rows:
                    found[row["instance_id"]] = Owner(row["node"], row["epoch"])
            return found

    def orphaned_elsewhere(self) -> list[InstanceRecord]:
        """The orphaned instances of other nodes (down), by id: listed by every node."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(COLUMNS)}, node FROM instances "
                f"WHERE state = '{ORPHANED}' AND node <> :node ORDER BY instance_id",
                {"node": self.node},
            ).rows
            return [InstanceRecord.from_row(row, with_node=True) for row in rows]

    def listed_rows_of(self, nodes: Collection[str]) -> list[InstanceRecord]:
        """The instances (not stopped) whose rows name one of ``nodes``, by id: what the
        fleet's list shows of a live node that did not answer (``tenement/api/fleet_list.py``)."""
        if not nodes:
            return []
        with self._read() as conn:
            found: list[InstanceRecord] = []
            for node in sorted(nodes):
                rows = conn.execute(
                    f"SELECT {', '.join(COLUMNS)}, node FROM instances "
                    "WHERE node = :node AND state <> 'stopped' ORDER BY instance_id",
                    {"node": node},
                ).rows
                found += [InstanceRecord.from_row(row, with_node=True) for row in rows]
            return found
