"""Fleet membership: each node's row, its heartbeat, and who declares a silent node down.

Every time here is the database's clock (``now()`` on PostgreSQL), read in the same
statement that uses it: a node whose own clock is wrong by minutes is judged exactly
like the others. Each decision two nodes could race on (joining under a name, declaring
a node down) is one transaction whose conditional ``UPDATE`` only one of them can win.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from tenement.store._base import StoreBase
from tenement.store._db import Session, database_now
from tenement.store.failover import Moved, fail_over
from tenement.store.instances import fleet_signature

#: the states a node row takes; a draining node is live (it serves, heartbeats and
#: forwards) but placement never chooses it, and it moves its tenants away (``ten drain``)
UP, DOWN, RESTARTING, DRAINING = "up", "down", "restarting", "draining"
#: how much longer than ``node_timeout`` a node whose server is being replaced (a
#: restart or an upgrade: it left its tenants running for the next server) may stay
#: silent before a peer declares it down: its socket (systemd's) queues its clients
#: meanwhile, and a new server on a loaded host, migrating a database, takes more than
#: a few seconds to its first heartbeat
RESTART_GRACE_S = 60.0

_COLUMNS = (
    "name, advertise, host, data_dir, version, started_at, heartbeat_at, state, cpus, "
    "memory_total, memory_available, instances, down_at, down_by, drain_parallel"
)


@attrs.frozen
class NodeIdentity:
    """Who a ``ten serve`` is in the fleet, and what it reports of its host.

    ``host`` and ``data_dir`` tell the same node's other processes (a standby, the
    successor of a restart) from a second node that was given the same name by mistake.
    """

    name: str
    advertise: str
    host: str
    data_dir: str
    version: str
    cpus: int = 0
    memory_total: int = 0
    memory_available: int = 0

    def same_node(self, row: NodeRow) -> bool:
        return (row.host, row.data_dir) == (self.host, self.data_dir)


@attrs.frozen
class NodeRow:
    """A node as the database knows it; times are the database's epoch seconds.

    Attributes:
        silent_s: how long ago its last heartbeat was, by the database's clock.
        instances: its running or starting instances at its last heartbeat.
        down_by: the node that declared it down (itself, never: a node that stops
            leaves its row to its peers).
        drain_parallel: while draining, how many of its tenants move at once (``ten
            drain --parallel``); None otherwise.
    """

    name: str
    advertise: str
    host: str
    data_dir: str
    version: str
    started_at: float
    heartbeat_at: float
    state: str
    cpus: int
    memory_total: int
    memory_available: int
    instances: int
    down_at: float | None
    down_by: str | None
    drain_parallel: int | None
    silent_s: float

    @classmethod
    def from_row(cls, row: Any) -> NodeRow:
        return cls(**{field.name: row[field.name] for field in attrs.fields(cls)})

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def alive(self, timeout_s: float) -> bool:
        """Up and heard from within ``timeout_s``, or restarting within its grace."""
        if self.state == RESTARTING:
            return self.silent_s < timeout_s + RESTART_GRACE_S
        return self.state in (UP, DRAINING) and self.silent_s < timeout_s


@attrs.frozen
class Lost:
    """A node declared down, and what became of its instances.

    Attributes:
        moved: re-placed on live nodes (their services may fail over).
        orphaned: left to it (their data is on its disk): until it returns.
        stranded: those of ``orphaned`` whose service may fail over, but whose
            ``[service.X] nodes`` are none of them live.
    """

    node: NodeRow
    moved: tuple[Moved, ...] = ()
    orphaned: tuple[str, ...] = ()
    stranded: tuple[str, ...] = ()


@attrs.frozen
class Joined:
    """What :meth:`NodeQueries.join_node` found.

    Attributes:
        taken_by: a live node of another host or data dir holds the name: not joined.
        was: the row as it was before joining (None: a new node).
    """

    taken_by: NodeRow | None = None
    was: NodeRow | None = None


def _select(session: Session, where: str = "") -> str:
    return (
        f"SELECT {_COLUMNS}, {database_now(session)} - heartbeat_at AS silent_s FROM nodes {where}"
    )


def _nodes(session: Session) -> list[NodeRow]:
    return [
        NodeRow.from_row(row) for row in session.execute(_select(session, "ORDER BY name")).rows
    ]


def _capacity(identity: NodeIdentity) -> dict[str, Any]:
    return {
        "cpus": identity.cpus,
        "memory_total": identity.memory_total,
        "memory_available": identity.memory_available,
    }


#: a node's instance count as its heartbeat stores it
_COUNT = (
    "(SELECT count(*) FROM instances WHERE instances.node = :name "
    "AND instances.state IN ('running', 'starting'))"
)


class NodeQueries(StoreBase):
    """The fleet part of :class:`~tenement.store.Store`."""

    def join_node(self, identity: NodeIdentity, timeout_s: float) -> Joined:
        """Take ``identity.name`` for this node, unless a live node elsewhere holds it.

        Live: up, and heard from within ``timeout_s`` by the database's clock. A row
        of the same host and data dir is this node's own (a standby, a restart): taken
        over as it is. A silent or down one is taken over too (the node came back, or
        was replaced).
        """
        with self._write() as conn:
            now = database_now(conn)
            params = {
                "name": identity.name,
                "advertise": identity.advertise,
                "host": identity.host,
                "data_dir": identity.data_dir,
                "version": identity.version,
                **_capacity(identity),
            }
            lock = " FOR UPDATE" if conn.dialect == "postgresql" else ""
            inserted = conn.execute(
                "INSERT INTO nodes (name, advertise, host, data_dir, version, started_at, "
                "heartbeat_at, state, cpus, memory_total, memory_available, instances) "
                f"VALUES (:name, :advertise, :host, :data_dir, :version, {now}, {now}, "
                f"'{UP}', :cpus, :memory_total, :memory_available, {_COUNT}) "
                "ON CONFLICT (name) DO NOTHING",
                params,
            )
            if inserted.rowcount == 1:
                return Joined()
            was = NodeRow.from_row(
                conn.execute(_select(conn, f"WHERE name = :name{lock}"), params).first()
            )
            if was.alive(timeout_s) and not identity.same_node(was):
                return Joined(taken_by=was)
            restarted = (
                "started_at"
                if identity.same_node(was) and was.state in (UP, RESTARTING, DRAINING)
                else now
            )
            # a drain survives its node's server being restarted: the plan is this state
            # and the rows still naming the node, never the old server's memory
            state = DRAINING if identity.same_node(was) and was.state == DRAINING else UP
            params["parallel"] = was.drain_parallel if state == DRAINING else None
            conn.execute(
                f"UPDATE nodes SET advertise = :advertise, host = :host, data_dir = :data_dir, "
                f"version = :version, started_at = {restarted}, heartbeat_at = {now}, "
                f"state = '{state}', down_at = NULL, down_by = NULL, drain_parallel = :parallel, "
                "cpus = :cpus, "
                "memory_total = :memory_total, memory_available = :memory_available, "
                f"instances = {_COUNT} WHERE name = :name",
                params,
            )
            return Joined(was=was)

    def node_heartbeat(self, identity: NodeIdentity, state: str = UP) -> NodeRow | None:
        """Stamp this node's row with the database's clock (and its capacity now); up
        again if a peer had declared it down. ``state`` :data:`RESTARTING`: its server
        leaves its tenants to the next one (:data:`RESTART_GRACE_S`).

        Returns:
            the row as it was before, or None when it is not this node's any more (gone,
            or another host took the name while this one was silent): join again.
        """
        with self._write() as conn:
            params = {
                "name": identity.name,
                "host": identity.host,
                "data_dir": identity.data_dir,
                "state": state,
                **_capacity(identity),
            }
            lock = " FOR UPDATE" if conn.dialect == "postgresql" else ""
            where = "WHERE name = :name AND host = :host AND data_dir = :data_dir"
            row = conn.execute(_select(conn, where + lock), params).first()
            if row is None:
                return None
            # a draining node stays draining in its heartbeats, its restart's included
            # (so it has node_timeout only, without the restart's grace: docs/fleet.md)
            conn.execute(
                f"UPDATE nodes SET heartbeat_at = {database_now(conn)}, state = CASE WHEN "
                f"state = '{DRAINING}' AND :state IN ('{UP}', '{RESTARTING}') THEN state "
                "ELSE :state END, "
                "down_at = NULL, down_by = NULL, cpus = :cpus, memory_total = :memory_total, "
                f"memory_available = :memory_available, instances = {_COUNT} {where}",
                params,
            )
            return NodeRow.from_row(row)

    def declare_silent_nodes_down(self, by: str, timeout_s: float) -> list[NodeRow]:
        """:meth:`declare_nodes_lost` with no service allowed to fail over."""
        return [lost.node for lost in self.declare_nodes_lost(by, timeout_s, {})]

    def declare_nodes_lost(
        self,
        by: str,
        timeout_s: float,
        failover_services: Mapping[str, Collection[str] | None],
    ) -> list[Lost]:
        """Mark down every other node up but silent for ``timeout_s`` (database clock; a
        restarting one: ``timeout_s`` and :data:`RESTART_GRACE_S`), and
        in the same transaction re-place its instances of ``failover_services`` on live
        nodes each service allows (``failover.py``; the map's values: ``[service.X]
        nodes``, None for any); its other live instances become orphaned.

        One conditional ``UPDATE``: when peers run it at once, PostgreSQL lets the first
        change each row and re-checks the condition for the others, which then find the
        node down already. So each node is declared down, and its tenants re-placed, by
        exactly one peer: the one this returns it to (as it is now, down).
        """
        with self._write() as conn:
            now = database_now(conn)
            rows = conn.execute(
                f"UPDATE nodes SET state = '{DOWN}', down_at = {now}, down_by = :by "
                f"WHERE name <> :by AND (state IN ('{UP}', '{DRAINING}') "
                f"AND heartbeat_at < {now} - :timeout "
                f"OR state = '{RESTARTING}' AND heartbeat_at < {now} - :timeout - :grace) "
                f"RETURNING {_COLUMNS}, {now} - heartbeat_at AS silent_s",
                {"by": by, "timeout": timeout_s, "grace": RESTART_GRACE_S},
            ).rows
            lost = []
            for row in rows:
                node = NodeRow.from_row(row)
                moved, orphaned, stranded = fail_over(
                    conn, node.name, now, timeout_s, failover_services
                )
                lost.append(Lost(node, tuple(moved), tuple(orphaned), tuple(stranded)))
            return lost

    def list_nodes(self) -> list[NodeRow]:
        """Every node, by name."""
        with self._read() as conn:
            return _nodes(conn)

    def fleet_look(self) -> tuple[list[NodeRow], tuple[int, float, float]]:
        """Every node, and the instance rows' signature (``fleet_signature``): what a
        node's directory reads twice a second, in one transaction."""
        with self._read() as conn:
            return _nodes(conn), fleet_signature(conn)
