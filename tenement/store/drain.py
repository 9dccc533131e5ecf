"""``ten drain``: a node no tenant is placed on, whose tenants move away one by one.

The plan is rows, never a server's memory: the node's state says ``draining``, and
what is left to move is the instance rows that still name it. The draining node's
server reads both once a second (``server/drain.py``), so a drain goes on after that
server is restarted or killed and started again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import attrs

from tenement.store._base import StoreBase
from tenement.store._db import database_now
from tenement.store.nodes import DRAINING, UP, NodeRow, _select
from tenement.store.placement import live_nodes, most_free


@attrs.frozen
class DrainAsked:
    """What :meth:`DrainQueries.drain_node` found (and did, when ``started``).

    Attributes:
        node: the row (None: no such node).
        nodes: every node's name (for an unknown node's message).
        started: the node is draining now (False: refused, see the others).
        already: it was draining before this call.
        alive: it is live (a down node is not drained: its tenants wait for it or
            failed over).
        stuck: its instances that could go to no live node their service allows.
        alone: no other node is live: nothing could go anywhere.
        left: the instance rows that name it.
    """

    node: NodeRow | None
    nodes: tuple[str, ...] = ()
    started: bool = False
    already: bool = False
    alive: bool = True
    stuck: tuple[str, ...] = ()
    alone: bool = False
    left: int = 0


@attrs.frozen
class NextMove:
    """The next tenant a draining node moves, and where (None: no allowed node is live)."""

    instance_id: str
    to: str | None
    left: int


#: the nodes a service may run on (``[service.X] nodes``), None for any
Allowed = Callable[[str], Collection[str] | None]


class DrainQueries(StoreBase):
    """The drain's part of :class:`~tenement.store.Store`."""

    def drain_node(
        self,
        name: str,
        timeout_s: float,
        allowed: Allowed,
    ) -> DrainAsked:
        """Mark ``name`` draining, in one transaction, unless it is unknown, not live
        (judged with ``timeout_s``), or holds an instance that no other live node its
        service allows could take:
        then nothing changes. Draining already: nothing to do."""
        with self._write() as conn:
            lock = " FOR UPDATE" if conn.dialect == "postgresql" else ""
            row = conn.execute(_select(conn, f"WHERE name = :name{lock}"), {"name": name}).first()
            if row is None:
                names = conn.execute("SELECT name FROM nodes ORDER BY name").rows
                return DrainAsked(None, nodes=tuple(r["name"] for r in names))
            node = NodeRow.from_row(row)
            held = conn.execute(
                "SELECT instance_id, service FROM instances WHERE node = :name "
                "ORDER BY instance_id",
                {"name": name},
            ).rows
            left = len(held)
            if not node.alive(timeout_s) or node.state not in (UP, DRAINING):
                return DrainAsked(node, alive=False, left=left)
            if node.state == DRAINING:
                return DrainAsked(node, started=True, already=True, left=left)
            others = [
                n for n in live_nodes(conn, database_now(conn), timeout_s) if n["name"] != name
            ]
            live = {n["name"] for n in others}
            if not live:
                return DrainAsked(node, alone=True, left=left)
            stuck = tuple(
                r["instance_id"]
                for r in held
                if not live.intersection(allowed(r["service"]) or live)
            )
            if stuck:
                return DrainAsked(node, stuck=stuck, left=left)
            conn.execute(
                f"UPDATE nodes SET state = '{DRAINING}' WHERE name = :name AND state = '{UP}'",
                {"name": name},
            )
            return DrainAsked(attrs.evolve(node, state=DRAINING), started=True, left=left)

    def undrain_node(self, name: str) -> tuple[NodeRow | None, bool]:
        """Put a draining node back to up; the row, and whether it was draining."""
        with self._write() as conn:
            changed = conn.execute(
                f"UPDATE nodes SET state = '{UP}' WHERE name = :name AND state = '{DRAINING}'",
                {"name": name},
            ).rowcount
            row = conn.execute(_select(conn, "WHERE name = :name"), {"name": name}).first()
            return (NodeRow.from_row(row) if row is not None else None), changed == 1

    def next_drain_move(
        self,
        timeout_s: float,
        allowed: Allowed,
        skip: Collection[str] = (),
    ) -> NextMove | int | None:
        """For this node: None when it is not draining; else the next of its rows to
        move (not in ``skip``) and the node placement chooses for it, or, with none
        left to try, how many rows still name it."""
        with self._read() as conn:
            state = conn.execute(
                "SELECT state FROM nodes WHERE name = :name", {"name": self.node}
            ).scalar()
            if state != DRAINING:
                return None
            held = conn.execute(
                "SELECT instance_id, service FROM instances WHERE node = :name "
                "ORDER BY instance_id",
                {"name": self.node},
            ).rows
            todo = [r for r in held if r["instance_id"] not in skip]
            if not todo:
                return len(held)
            nodes = [
                n for n in live_nodes(conn, database_now(conn), timeout_s) if n["name"] != self.node
            ]
            first = todo[0]
            target = most_free(nodes, allowed(first["service"]))
            return NextMove(first["instance_id"], target["name"] if target else None, len(held))

    def rows_per_node(self) -> dict[str, int]:
        """How many instance rows (stopped ones too) name each node: a drain's progress."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT node, count(*) AS n FROM instances WHERE node IS NOT NULL GROUP BY node"
            ).rows
            return {r["node"]: int(r["n"]) for r in rows}
