"""The supervisor lease (one server supervises a data dir at a time) and the server list.

Times are epoch seconds passed in by the caller, so the logic is testable without
waiting. A lease is held until ``expires_at``; its holder renews it well before then.
"""

from __future__ import annotations

from typing import Any

import attrs

from tenement.store._base import StoreBase, upsert

#: the one lease the store knows
SUPERVISOR_LEASE = "supervisor"

_SERVER = "SELECT server_id, pid, url, started_at, last_seen FROM servers"


def lease_name(node: str | None) -> str:
    """The supervisor lease of a fleet node (one per node), or the single host's."""
    return SUPERVISOR_LEASE if node is None else f"{SUPERVISOR_LEASE}:{node}"


@attrs.frozen
class ServerRow:
    """A running ``ten serve`` as it registered itself."""

    server_id: str
    pid: int
    url: str
    started_at: float
    last_seen: float

    @classmethod
    def from_row(cls, row: Any) -> ServerRow:
        return cls(
            server_id=row["server_id"],
            pid=row["pid"],
            url=row["url"],
            started_at=row["started_at"],
            last_seen=row["last_seen"],
        )


class LeaseQueries(StoreBase):
    """The lease and server part of :class:`~tenement.store.Store`."""

    def try_acquire_lease(self, holder: str, ttl_s: float, now: float) -> bool:
        """Take the lease if it is free, expired or already ``holder``'s; True if taken."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT holder, acquired_at, expires_at FROM lease WHERE name = :name",
                {"name": lease_name(self.node)},
            ).first()
            if row is not None and row["holder"] != holder and row["expires_at"] > now:
                return False
            mine = row is not None and row["holder"] == holder
            upsert(
                conn,
                "lease",
                ("name",),
                [
                    {
                        "name": lease_name(self.node),
                        "holder": holder,
                        "acquired_at": row["acquired_at"] if mine else now,
                        "expires_at": now + ttl_s,
                    }
                ],
            )
            return True

    def renew_lease(self, holder: str, ttl_s: float, now: float) -> bool:
        """Extend ``holder``'s lease to ``now + ttl_s``; False if someone else holds it now."""
        with self._write() as conn:
            result = conn.execute(
                "UPDATE lease SET expires_at = :expires WHERE name = :name AND holder = :holder",
                {"expires": now + ttl_s, "name": lease_name(self.node), "holder": holder},
            )
            return result.rowcount > 0

    def release_lease(self, holder: str) -> None:
        """Give the lease up if ``holder`` has it; otherwise do nothing."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM lease WHERE name = :name AND holder = :holder",
                {"name": lease_name(self.node), "holder": holder},
            )

    def lease_holder(self, now: float) -> str | None:
        """Who holds an unexpired lease at ``now``, or None."""
        with self._read() as conn:
            holder: str | None = conn.execute(
                "SELECT holder FROM lease WHERE name = :name AND expires_at > :now",
                {"name": lease_name(self.node), "now": now},
            ).scalar()
        return holder

    def lease_holders(self, now: float) -> list[str]:
        """Who holds an unexpired supervisor lease at ``now``, of any node."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT holder FROM lease WHERE (name = :name OR name LIKE :fleet) "
                "AND expires_at > :now ORDER BY holder",
                {"name": SUPERVISOR_LEASE, "fleet": f"{SUPERVISOR_LEASE}:%", "now": now},
            ).rows
            return [row["holder"] for row in rows]

    def register_server(self, server_id: str, pid: int, url: str, now: float) -> None:
        """Announce a running server (replacing an earlier row with the same id)."""
        row = {
            "server_id": server_id,
            "pid": pid,
            "url": url,
            "started_at": now,
            "last_seen": now,
            "node": self.node,
        }
        with self._write() as conn:
            upsert(conn, "servers", ("server_id",), [row])

    def server_heartbeat(self, server_id: str, now: float) -> bool:
        """Mark a server as seen at ``now``; False if it is not registered."""
        with self._write() as conn:
            result = conn.execute(
                "UPDATE servers SET last_seen = :now WHERE server_id = :id",
                {"now": now, "id": server_id},
            )
            return result.rowcount > 0

    def unregister_server(self, server_id: str) -> None:
        """Remove a server's row (it is stopping)."""
        with self._write() as conn:
            conn.execute("DELETE FROM servers WHERE server_id = :id", {"id": server_id})

    def server(self, server_id: str) -> ServerRow | None:
        """The registered server ``server_id``, or None."""
        with self._read() as conn:
            row = conn.execute(f"{_SERVER} WHERE server_id = :id", {"id": server_id}).first()
            return None if row is None else ServerRow.from_row(row)

    def live_servers(self, now: float, max_age_s: float) -> list[ServerRow]:
        """Servers seen within ``max_age_s`` of ``now``, oldest start first."""
        # a fleet node hands its tenants over only to a server of its own
        mine = "" if self.node is None else "AND node = :node"
        with self._read() as conn:
            rows = conn.execute(
                f"{_SERVER} WHERE last_seen >= :since {mine} ORDER BY started_at, server_id",
                {"since": now - max_age_s, "node": self.node},
            ).rows
            return [ServerRow.from_row(row) for row in rows]
