"""One instance (``service:tenant``): its live state, and the frozen views others read.

:class:`Instance` is the supervisor's mutable bookkeeping for one instance; only the
supervisor changes it. Everything handed out is a frozen value: :class:`InstanceView` for
the API and ``ten ps``, :class:`Target` for the proxy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import attrs
import trio

from tenement.store import InstanceRecord
from tenement.supervisor import backoff
from tenement.supervisor.health import Health, HealthState

if TYPE_CHECKING:
    from tenement.supervisor.process import TenantProcess

STARTING = "starting"
RUNNING = "running"
STOPPED = "stopped"
FAILED = "failed"


@attrs.frozen
class Target:
    """Where the proxy sends a request for an instance."""

    instance_id: str
    service: str
    tenant: str
    port: int | None
    socket: str
    weight: int


@attrs.frozen
class InstanceView:
    """A snapshot of one instance, as the API and ``ten ps`` show it.

    ``restart_at`` is the epoch time of the scheduled restart while the instance is in
    backoff (state ``starting``, no process), else None; not in the API (yet).
    """

    id: str
    service: str
    tenant: str
    pid: int | None
    port: int | None
    socket: str
    weight: int
    health: Health
    state: str
    uptime_secs: int
    idle_secs: int
    restarts: int
    storage_used_bytes: int
    storage_quota_bytes: int | None
    active_connections: int
    restart_at: float | None = None


@attrs.define(eq=False)
class Run:
    """One process of an instance, from its launch to its exit.

    Attributes:
        process: the running process.
        port: its TCP port (None: it listens on its Unix socket).
        exited: set by the watcher when the process is gone; ``exit_code`` then holds its code.
        handed_over: set once the launcher is done with it (ready or past startup_timeout):
            from then on a crash is the watcher's to handle.
        ready: it accepted a connection.
        trouble_scope: cancelling it makes the watcher act (set ``trouble`` first).
        trouble: why the watcher acts: ``"exit"`` or ``"unhealthy"``.
    """

    process: TenantProcess
    port: int | None
    exited: trio.Event = attrs.Factory(trio.Event)
    handed_over: trio.Event = attrs.Factory(trio.Event)
    ready: bool = False
    exit_code: int | None = None
    trouble: str | None = None
    trouble_scope: trio.CancelScope | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


@attrs.define(eq=False, kw_only=True)
class PendingRestart:
    """A restart the restart policy scheduled: until it is attempted, the instance is in
    backoff (state ``starting``, no process) and nothing else may start it early.

    Attributes:
        at: when the restart is due, on the ``trio.current_time()`` clock.
        at_epoch: the same moment in epoch seconds (for logs and tests).
        delay_seconds: the policy's delay it was scheduled with.
        attempted: set once the restart was tried (started, failed, or called off by a
            stop or an operator's spawn); requests waiting for it then look again.
    """

    at: float
    at_epoch: float
    delay_seconds: float
    attempted: trio.Event = attrs.Factory(trio.Event)

    def retry_after(self, now: float) -> int:
        """Seconds until the restart, rounded up: the ``Retry-After`` of a refusal."""
        return backoff.retry_after_seconds(self.at - now)

    async def wait_attempted(self, *, deadline: float) -> int | None:
        """Wait until the restart was attempted, if it is due by ``deadline``.

        Returns:
            None once it was attempted; without waiting, the seconds until it is due
            (rounded up) when that is after ``deadline``.
        """
        if self.at > deadline:
            return self.retry_after(trio.current_time())
        await self.attempted.wait()
        return None


#: the fields :meth:`Instance.view` reads (directly or through a property), but the
#: clock's; setting one to another value is a change of what the API shows
SHOWN = frozenset(
    {
        "socket",
        "port",
        "weight",
        "state",
        "health_state",
        "run",
        "started_at",
        "last_activity",
        "restarts_total",
        "pending_restart",
        "storage_used_bytes",
        "active_connections",
    }
)


class Changes:
    """A count of changes to what the API shows of any instance in this process (see
    :data:`SHOWN`), bumped as they are made: the dashboard's validators compare it
    instead of hashing every instance (O(1) where :meth:`Instance.signature` is O(n)).
    Counted per process, not per supervisor: one supervisor's change may move another's
    count (a validator that moves too often costs a full answer, never a stale one)."""

    count = 0


def _noted(inst: Instance, attribute: attrs.Attribute[object], value: object) -> object:
    # an unchanged value (a second touch() in the same instant, a state set twice) moves
    # nothing; the comparison is cheaper than the full answer a move would cost
    if attribute.name in SHOWN and getattr(inst, attribute.name) != value:
        Changes.count += 1
    return value


@attrs.define(eq=False, on_setattr=_noted)
class Instance:
    """The supervisor's live record of one instance.

    Attributes:
        run: the current process, None when none runs.
        lock: serialises spawn, stop and restart of this instance (and so makes wake-once:
            concurrent wakes queue on it and find the instance running).
        watcher: the cancel scope of the task watching (or restarting) the instance.
        last_activity: ``trio.current_time()``-based time of the last routed request.
        restart_times: epoch seconds of restarts (the restart policy prunes it).
        pending_restart: the scheduled restart while the instance is in backoff, else None.
    """

    service: str
    tenant: str
    socket: str
    port: int | None = None
    weight: int = 100
    state: str = STOPPED
    health_state: HealthState = attrs.Factory(HealthState)
    run: Run | None = None
    started_at: float | None = None
    restart_times: tuple[float, ...] = ()
    restarts_total: int = 0
    pending_restart: PendingRestart | None = None
    storage_used_bytes: int = 0
    active_connections: int = 0
    last_activity: float = 0.0
    lock: trio.Lock = attrs.Factory(trio.Lock)
    watcher: trio.CancelScope | None = None
    _target: Target | None = attrs.field(default=None, init=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.service}:{self.tenant}"

    @property
    def health(self) -> Health:
        return self.health_state.health

    @property
    def pid(self) -> int | None:
        return None if self.run is None else self.run.pid

    @property
    def running(self) -> bool:
        return self.run is not None and self.state in (STARTING, RUNNING)

    @property
    def routable(self) -> bool:
        """Running, past its start, not failed: the proxy may send it requests."""
        return self.run is not None and self.state == RUNNING

    @property
    def restart_at(self) -> float | None:
        """Epoch time of the scheduled restart while in backoff (no process yet)."""
        pending = self.pending_restart
        return None if pending is None or self.run is not None else pending.at_epoch

    def touch(self) -> None:
        self.last_activity = trio.current_time()

    def target(self) -> Target:
        """Where to send its requests. Made again only when its port, socket or weight
        changed: the proxy asks for it once per request."""
        made = self._target
        if made is None or (made.port, made.socket, made.weight) != (
            self.port,
            self.socket,
            self.weight,
        ):
            made = self._target = Target(
                self.id, self.service, self.tenant, self.port, self.socket, self.weight
            )
        return made

    def record(self) -> InstanceRecord:
        """Its row, as saved for the next server to adopt."""
        run = self.run
        return InstanceRecord(
            instance_id=self.id,
            service=self.service,
            tenant=self.tenant,
            pid=None if run is None else run.pid,
            start_ticks=None if run is None else run.process.start_ticks,
            pgid=None if run is None else run.process.pgid,
            port=None if run is None else run.port,
            socket=self.socket,
            state=self.state,
            updated_at=time.time(),
            weight=self.weight,
            health=str(self.health),
            restart_times=self.restart_times,
            restarts_total=self.restarts_total,
            started_at=self.started_at,
        )

    def signature(self) -> tuple[object, ...]:
        """Everything :meth:`view` shows but the passing of time: equal signatures give
        equal views, except that uptime and idle seconds have grown (from ``started_at``
        and ``last_activity``, which are in it). Far cheaper than a view (no clock read,
        no object built): the API's ETags are made of it."""
        run = self.run
        pending = self.pending_restart
        return (
            self.service,
            self.tenant,
            self.socket,
            self.port,
            self.weight,
            self.state,
            self.health_state.health,
            None if run is None else run.process.pid,
            self.started_at,
            self.last_activity,
            self.restarts_total,
            None if pending is None else pending.at_epoch,
            self.storage_used_bytes,
            self.active_connections,
        )

    def view(self, *, quota_bytes: int | None) -> InstanceView:
        now = trio.current_time()
        uptime = 0 if self.started_at is None or not self.running else time.time() - self.started_at
        return InstanceView(
            id=self.id,
            service=self.service,
            tenant=self.tenant,
            pid=self.pid,
            port=self.port,
            socket=self.socket,
            weight=self.weight,
            health=self.health,
            state=self.state,
            uptime_secs=max(0, int(uptime)),
            idle_secs=max(0, int(now - self.last_activity)) if self.running else 0,
            restarts=self.restarts_total,
            storage_used_bytes=self.storage_used_bytes,
            storage_quota_bytes=quota_bytes,
            active_connections=self.active_connections,
            restart_at=self.restart_at,
        )
