"""Service users: the uid each service's tenants run as, allotted once and kept.

A service keeps its uid across restarts (its files stay its own), and no two services
share one: the ``uid`` column is unique, and an allotment happens in one write
transaction. Whether a uid is taken outside tenement (``/etc/passwd``, a running
process) is the caller's to say (``taken``): the store reads no system files.
"""

from __future__ import annotations

from collections.abc import Callable

from tenement.store._base import StoreBase
from tenement.store.errors import StoreError


class UidsExhausted(StoreError):
    """Every uid of the configured range is allotted or taken.

    Attributes:
        first, last: the range (inclusive).
        service: the service that found none.
    """

    def __init__(self, service: str, first: int, last: int) -> None:
        super().__init__(
            f"no free uid left in tenant_uids {first}-{last} for service '{service}'; "
            'widen [settings] tenant_uids or give the service a user (user = "name")'
        )
        self.service = service
        self.first = first
        self.last = last


class UserQueries(StoreBase):
    """The ``service_users`` part of :class:`~tenement.store.Store`."""

    def service_uid(
        self,
        service: str,
        first: int,
        last: int,
        *,
        taken: Callable[[int], bool],
        now: float,
    ) -> int:
        """The uid of ``service``: the one recorded if it lies in ``first``-``last``, else
        the lowest uid of that range that no other service holds and ``taken`` declines
        (recorded now, at epoch ``now``).

        Raises:
            UidsExhausted: no uid of the range is free.
        """
        with self._write() as conn:
            recorded = conn.execute(
                "SELECT uid FROM service_users WHERE service = :service", {"service": service}
            ).scalar()
            if recorded is not None and first <= recorded <= last:
                return int(recorded)
            held = {
                row["uid"]
                for row in conn.execute(
                    "SELECT uid FROM service_users WHERE service != :service",
                    {"service": service},
                ).rows
            }
            for uid in range(first, last + 1):
                if uid not in held and not taken(uid):
                    break
            else:
                raise UidsExhausted(service, first, last)
            params = {"service": service, "uid": uid, "allotted_at": now}
            if recorded is None:
                conn.execute(
                    "INSERT INTO service_users (service, uid, allotted_at) "
                    "VALUES (:service, :uid, :allotted_at)",
                    params,
                )
            else:
                conn.execute(
                    "UPDATE service_users SET uid = :uid, allotted_at = :allotted_at "
                    "WHERE service = :service",
                    params,
                )
            return uid

    def service_uids(self) -> dict[str, int]:
        """Every recorded allotment: service -> uid."""
        with self._read() as conn:
            rows = conn.execute("SELECT service, uid FROM service_users").rows
        return {row["service"]: int(row["uid"]) for row in rows}
