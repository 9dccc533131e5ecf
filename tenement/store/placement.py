"""Which fleet node a tenant goes to: one policy, for a spawn and for a lost node's tenants.

The policy (:func:`most_free`): among the live nodes the service allows, the one with
the most memory available, where readings within :data:`MEMORY_SLACK` of the roomiest
count as equal; among those, the fewest running instances; then the name, so every
peer makes the same choice from the same rows. The instance counts are read in the
choosing transaction (not the heartbeat's, up to a second old), so spawns one after
another spread at once.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import attrs

from tenement.store._base import StoreBase
from tenement.store._db import Session, database_now

#: memory readings this close to the roomiest node's count as equal: a host's available
#: memory moves by more than this from one heartbeat to the next, and a node with no
#: tenants should not lose to one with many over a few megabytes
MEMORY_SLACK = 512 << 20
#: what a tenant placed in one pass is counted to take, until the next heartbeat tells
PLACED_MEMORY = 256 << 20
#: the states of an instance that has (or should have) a process
LIVE_STATES = ("starting", "running")


def live_nodes(session: Session, now: str, timeout_s: float) -> list[dict[str, Any]]:
    """The nodes that may take instances (up, heard from within ``timeout_s`` by the
    database's clock), with their memory available and their live instances now."""
    rows = session.execute(
        "SELECT name, memory_available, (SELECT count(*) FROM instances "
        "WHERE instances.node = nodes.name AND instances.state IN "
        f"{LIVE_STATES!r}) AS instances FROM nodes "
        f"WHERE state = 'up' AND heartbeat_at >= {now} - :timeout ORDER BY name",
        {"timeout": timeout_s},
    ).rows
    return [dict(row) for row in rows]


def most_free(
    nodes: list[dict[str, Any]], allowed: Collection[str] | None = None
) -> dict[str, Any] | None:
    """The node of ``nodes`` (of ``allowed``, when given) with the most free capacity,
    or None when none is allowed. Counts one more instance on it, and
    :data:`PLACED_MEMORY` less, so that a caller placing several spreads them."""
    fits = [node for node in nodes if allowed is None or node["name"] in allowed]
    if not fits:
        return None
    roomiest = max(node["memory_available"] for node in fits)
    roomy = [node for node in fits if node["memory_available"] >= roomiest - MEMORY_SLACK]
    chosen = min(roomy, key=lambda n: (n["instances"], -n["memory_available"], n["name"]))
    chosen["memory_available"] -= PLACED_MEMORY
    chosen["instances"] += 1
    return chosen


@attrs.frozen
class Placed:
    """Where an instance is to run.

    Attributes:
        node: the node its row names now (None: no allowed node is live; no row made).
        chosen: this call chose it (False: the row named it already).
        live: the live nodes the service allows, by name (for an error's message).
    """

    node: str | None
    chosen: bool
    live: tuple[str, ...]


class PlacementQueries(StoreBase):
    """Placing a new tenant (``ten spawn`` without ``--node``) on a fleet."""

    def place_instance(
        self,
        instance_id: str,
        service: str,
        tenant: str,
        allowed: Collection[str] | None,
        timeout_s: float,
        now: float,
    ) -> Placed:
        """The node that runs ``instance_id``: the one its row names, else one chosen
        by :func:`most_free` among the live nodes of ``allowed`` (None: any), whose row
        is written here, stopped, until that node starts it.

        One transaction. Two nodes placing the same tenant at once cannot both win:
        PostgreSQL makes the second insert wait for the first, which it then finds (so
        both callers send the spawn to the same node, whose start is idempotent).
        """
        with self._write() as conn:
            holder: str | None = conn.execute(
                "SELECT node FROM instances WHERE instance_id = :id", {"id": instance_id}
            ).scalar()
            nodes = live_nodes(conn, database_now(conn), timeout_s)
            live = tuple(n["name"] for n in nodes if allowed is None or n["name"] in allowed)
            if holder is not None:
                return Placed(holder, False, live)
            target = most_free(nodes, allowed)
            if target is None:
                return Placed(None, False, live)
            conn.execute(
                "INSERT INTO instances (instance_id, service, tenant, socket, state, "
                "restart_times, updated_at, node) VALUES (:id, :service, :tenant, '', "
                "'stopped', '[]', :now, :node) ON CONFLICT (instance_id) DO UPDATE SET "
                "node = excluded.node WHERE instances.node IS NULL",
                {
                    "id": instance_id,
                    "service": service,
                    "tenant": tenant,
                    "now": now,
                    "node": target["name"],
                },
            )
            owner: str = conn.execute(
                "SELECT node FROM instances WHERE instance_id = :id", {"id": instance_id}
            ).scalar()
            return Placed(owner, owner == target["name"], live)
