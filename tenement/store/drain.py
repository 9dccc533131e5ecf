"""``ten drain``: a node no tenant is placed on, whose tenants move away, N at a time.

The plan is rows, never a server's memory: the node's state says ``draining`` and its
``drain_parallel`` how many tenants move at once, and what is left to move is the
instance rows that still name it. The draining node's server reads them once a second
(``server/drain.py``), so a drain goes on, as asked, after that server is restarted or
killed and started again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import attrs

from tenement.store._base import StoreBase
from tenement.store._db import database_now
from tenement.store.nodes import DRAINING, UP, NodeRow, _select
from tenement.store.placement import PLACED_MEMORY, live_nodes, most_free

#: how many tenants a drain moves at once when not told (``ten drain`` without
#: ``--parallel``, or a drain asked of an older release)
DEFAULT_PARALLEL = 1
#: the most ``--parallel`` takes: each move holds a tenant's requests and sends its
#: data, and more at once than this only queues on the disks and the network
MAX_PARALLEL = 32


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
        parallel: how many of its tenants move at once (once ``started``).
    """

    node: NodeRow | None
    nodes: tuple[str, ...] = ()
    started: bool = False
    already: bool = False
    alive: bool = True
    stuck: tuple[str, ...] = ()
    alone: bool = False
    left: int = 0
    parallel: int = DEFAULT_PARALLEL


@attrs.frozen
class NextMove:
    """The next tenant a draining node moves, and where (None: no allowed node is live)."""

    instance_id: str
    to: str | None


@attrs.frozen
class DrainLook:
    """What a draining node has to do now (:meth:`DrainQueries.next_drain_moves`).

    Attributes:
        parallel: how many of its tenants are to move at once.
        left: the instance rows that still name it (those being moved too).
        moves: the next ones to move, and where, at most as many as were asked for.
    """

    parallel: int
    left: int
    moves: tuple[NextMove, ...]


#: the nodes a service may run on (``[service.X] nodes``), None for any
Allowed = Callable[[str], Collection[str] | None]


class DrainQueries(StoreBase):
    """The drain's part of :class:`~tenement.store.Store`."""

    def drain_node(
        self,
        name: str,
        timeout_s: float,
        allowed: Allowed,
        parallel: int | None = None,
    ) -> DrainAsked:
        """Mark ``name`` draining, ``parallel`` tenants at a time (None:
        :data:`DEFAULT_PARALLEL`), in one transaction, unless it is unknown, not live
        (judged with ``timeout_s``), or holds an instance that no other live node its
        service allows could take: then nothing changes. Draining already: only a
        ``parallel`` given changes (None keeps the drain's)."""
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
                now_parallel = node.drain_parallel or DEFAULT_PARALLEL
                if parallel is not None and parallel != node.drain_parallel:
                    conn.execute(
                        "UPDATE nodes SET drain_parallel = :parallel WHERE name = :name",
                        {"name": name, "parallel": parallel},
                    )
                    now_parallel = parallel
                node = attrs.evolve(node, drain_parallel=now_parallel)
                return DrainAsked(
                    node, started=True, already=True, left=left, parallel=now_parallel
                )
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
            parallel = parallel or DEFAULT_PARALLEL
            conn.execute(
                f"UPDATE nodes SET state = '{DRAINING}', drain_parallel = :parallel "
                f"WHERE name = :name AND state = '{UP}'",
                {"name": name, "parallel": parallel},
            )
            node = attrs.evolve(node, state=DRAINING, drain_parallel=parallel)
            return DrainAsked(node, started=True, left=left, parallel=parallel)

    def undrain_node(self, name: str) -> tuple[NodeRow | None, bool]:
        """Put a draining node back to up; the row, and whether it was draining."""
        with self._write() as conn:
            changed = conn.execute(
                f"UPDATE nodes SET state = '{UP}', drain_parallel = NULL "
                f"WHERE name = :name AND state = '{DRAINING}'",
                {"name": name},
            ).rowcount
            row = conn.execute(_select(conn, "WHERE name = :name"), {"name": name}).first()
            return (NodeRow.from_row(row) if row is not None else None), changed == 1

    def next_drain_moves(
        self,
        timeout_s: float,
        allowed: Allowed,
        skip: Collection[str] = (),
        going: Mapping[str, str] | None = None,
    ) -> DrainLook | None:
        """For this node: None when it is not draining; else its ``drain_parallel``, and
        the next of its rows to move (none in ``skip``, nor in ``going``: the moves under
        way, instance -> destination), as many as the moves under way leave room for,
        each with the node placement chooses for it.

        Placement counts a node's starting and running rows, and a moving tenant's row
        names this node until its hand-over: each move under way whose row is still
        here is counted on its destination, and each move chosen here on its own, so
        that moves at once spread over the nodes as spawns one after another do.
        """
        going = going or {}
        with self._read() as conn:
            row = conn.execute(
                "SELECT state, drain_parallel FROM nodes WHERE name = :name", {"name": self.node}
            ).first()
            if row is None or row["state"] != DRAINING:
                return None
            parallel = int(row["drain_parallel"] or DEFAULT_PARALLEL)
            held = conn.execute(
                "SELECT instance_id, service FROM instances WHERE node = :name "
                "ORDER BY instance_id",
                {"name": self.node},
            ).rows
            here = {r["instance_id"] for r in held}
            under_way = [to for iid, to in going.items() if iid in here]
            want = parallel - len(going)
            todo = [
                r for r in held if r["instance_id"] not in skip and r["instance_id"] not in going
            ]
            if want <= 0 or not todo:
                return DrainLook(parallel, len(held), ())
            nodes = [
                n for n in live_nodes(conn, database_now(conn), timeout_s) if n["name"] != self.node
            ]
            by_name = {n["name"]: n for n in nodes}
            for to in under_way:
                if to in by_name:
                    by_name[to]["instances"] += 1
                    by_name[to]["memory_available"] -= PLACED_MEMORY
            moves = []
            for r in todo[:want]:
                target = most_free(nodes, allowed(r["service"]))
                moves.append(NextMove(r["instance_id"], target["name"] if target else None))
            return DrainLook(parallel, len(held), tuple(moves))

    def rows_per_node(self) -> dict[str, int]:
        """How many instance rows (stopped ones too) name each node: a drain's progress."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT node, count(*) AS n FROM instances WHERE node IS NOT NULL GROUP BY node"
            ).rows
            return {r["node"]: int(r["n"]) for r in rows}
