"""Lifecycle events: one record per spawn, ready, exit, restart, stop, adopt, ...

Every event goes through :meth:`Events.emit`, which logs it (with journal fields
``INSTANCE``, ``SERVICE``, ``TENANT``, ``PID``, ``EXIT_CODE``), counts it for
``statistics()`` and ``/metrics``, and writes an audit row (table ``deploy_log``) for the
actions an operator cares about.
"""

from __future__ import annotations

import collections
import logging
import time

import attrs
import trio

from tenement.store import Store

log = logging.getLogger(__name__)

#: event kind -> (log level, audit action or None)
KINDS: dict[str, tuple[int, str | None]] = {
    "spawn": (logging.INFO, "spawn"),
    "spawn_failed": (logging.ERROR, "spawn"),
    "ready": (logging.INFO, None),
    "not_ready": (logging.WARNING, None),
    "adopt": (logging.INFO, "adopt"),
    "exit": (logging.WARNING, None),
    "crash_restart": (logging.WARNING, "crash-restart"),
    "health_restart": (logging.WARNING, "crash-restart"),
    "failed": (logging.ERROR, "failed"),
    "restart": (logging.INFO, "restart"),
    "stop": (logging.INFO, "stop"),
    "kill": (logging.WARNING, None),
    "port_taken": (logging.WARNING, None),
    "weight": (logging.INFO, "weight"),
    "deploy": (logging.INFO, "deploy"),
    "deploy_failed": (logging.ERROR, "deploy"),
    "route": (logging.INFO, "route"),
    "wake": (logging.INFO, "wake"),
    "wake_failed": (logging.WARNING, "wake"),
    "health": (logging.INFO, None),
    "storage": (logging.WARNING, None),
    "idle_stop": (logging.INFO, "stop"),
    # a fleet node that lost the database stops its tenants (server/fencing.py)
    "fence": (logging.WARNING, "stop"),
}


@attrs.frozen
class LifecycleEvent:
    """Something that happened to an instance.

    Attributes:
        kind: a key of :data:`KINDS`.
        service, tenant: the instance.
        pid: the process concerned, when there is one.
        exit_code: for exits (negative = killed by that signal).
        details: a short human text, also the audit row's details.
        success: False for the failures of an action (audit ``success`` column).
        time: epoch seconds.
    """

    kind: str
    service: str
    tenant: str
    pid: int | None = None
    exit_code: int | None = None
    details: str | None = None
    success: bool = True
    time: float = attrs.Factory(time.time)

    @property
    def instance_id(self) -> str:
        return f"{self.service}:{self.tenant}"


class Events:
    """Turns lifecycle events into log records, counters and audit rows.

    Args:
        store: the store for audit rows (``store.audit`` via ``store.run``), or None.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.counts: collections.Counter[str] = collections.Counter()
        #: instance id -> restarts (crash, health, manual, and failed wakes, which count as
        #: restarts); never forgotten, as metrics want
        self.restarts: collections.Counter[str] = collections.Counter()

    def record(self, event: LifecycleEvent) -> None:
        """Log and count the event (sync; no audit row)."""
        level, _ = KINDS[event.kind]
        self.counts[event.kind] += 1
        if event.kind in ("crash_restart", "health_restart", "restart", "wake_failed"):
            self.restarts[event.instance_id] += 1
        extra: dict[str, str | int] = {
            "INSTANCE": event.instance_id,
            "SERVICE": event.service,
            "TENANT": event.tenant,
            "EVENT": event.kind,
        }
        if event.pid is not None:
            extra["PID"] = event.pid
        if event.exit_code is not None:
            extra["EXIT_CODE"] = event.exit_code
        log.log(
            level,
            "%s %s%s%s",
            event.kind,
            event.instance_id,
            "" if event.pid is None else f" pid={event.pid}",
            "" if not event.details else f": {event.details}",
            extra=extra,
        )

    def audit_args(self, event: LifecycleEvent) -> tuple[str, str, str, str | None, bool] | None:
        """The arguments of ``store.audit`` for ``event``; None if it has no audit row."""
        _, action = KINDS[event.kind]
        if action is None or self._store is None:
            return None
        return (action, event.service, event.tenant, event.details, event.success)

    async def emit(self, event: LifecycleEvent) -> None:
        """Record the event and write its audit row, if its kind has one."""
        self.record(event)
        await self.write_audit(event)

    async def write_audit(self, event: LifecycleEvent) -> None:
        """Write the event's audit row, if its kind has one (without recording it).

        Cancellation: shielded; a row on its way is written (it takes milliseconds).
        """
        args = self.audit_args(event)
        if args is not None:
            # while the database is out of reach the row is lost (the event is logged)
            with trio.CancelScope(shield=True), self._store.outage.tolerated("audit rows"):
                await self._store.run(self._store.audit, *args)
