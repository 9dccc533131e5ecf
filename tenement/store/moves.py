"""A tenant handed from one fleet node to another by ``ten move`` (``server/moves.py``)."""

from __future__ import annotations

from tenement.store._base import StoreBase
from tenement.store.failover import change_stamp


class MoveQueries(StoreBase):
    """The one transaction of a move that changes who runs the tenant."""

    def hand_instance_over(
        self, instance_id: str, epoch: int, to_node: str, start: bool = False
    ) -> int | None:
        """Give ``instance_id``, this node's at ``epoch``, to ``to_node``, stopped, at
        ``epoch + 1`` (the new owner starts it). ``start``: ``starting`` instead, which
        the new owner's next look at its rows starts by itself, as after a failover (a
        drain's move: no caller's token to ask it with).

        Returns:
            the new epoch, or None when the row no longer names this node at ``epoch``
            (taken over meanwhile: nothing is changed).
        """
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE instances SET node = :to, epoch = :next, pid = NULL, "
                "start_ticks = NULL, pgid = NULL, port = NULL, health = 'unknown', "
                "state = :state, "
                # just past every row's: the nodes' directories see the change at their
                # next look (fleet_signature), as after a failover
                "updated_at = :changed "
                "WHERE instance_id = :id AND node = :here AND epoch = :epoch",
                {
                    "changed": change_stamp(conn),
                    "to": to_node,
                    "state": "starting" if start else "stopped",
                    "next": epoch + 1,
                    "id": instance_id,
                    "here": self.node,
                    "epoch": epoch,
                },
            )
            return epoch + 1 if updated.rowcount == 1 else None

    def instance_holder(self, instance_id: str) -> tuple[str | None, str] | None:
        """The node ``instance_id``'s row names and its state (None: no row)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT node, state FROM instances WHERE instance_id = :id", {"id": instance_id}
            ).first()
            return (row["node"], row["state"]) if row is not None else None
