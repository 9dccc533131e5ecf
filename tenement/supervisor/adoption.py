"""Adoption: a starting supervisor takes over the tenants a previous server left running.

For each instance row: a process with the recorded pid AND the recorded start time
(``/proc/<pid>/stat`` field 22) is ours, so it is adopted (pidfd watch, port kept, log
files tailed from the saved offsets, health checks resumed), or, when its service is gone
from the config, stopped. A row whose process is gone (or whose pid now belongs to another
process) is marked stopped, and, when it was running and its service is still configured,
restarted under the restart policy, as after any crash. A stale process group is killed
only when provably the tenant's (``kill_stale_group``).
"""

from __future__ import annotations

import enum
import logging
import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs
import trio

from tenement.config import Service
from tenement.store import InstanceRecord
from tenement.store.failover import ORPHANED
from tenement.supervisor.events import LifecycleEvent
from tenement.supervisor.health import Health, HealthState
from tenement.supervisor.instance import FAILED, RUNNING, STARTING, STOPPED, Instance, Run

if TYPE_CHECKING:
    from tenement.supervisor.runner import Runner
    from tenement.supervisor.supervisor import Supervisor

log = logging.getLogger(__name__)


class Fate(enum.Enum):
    """What happens to one recorded instance when a supervisor starts."""

    ADOPT = "adopt"
    #: ours and alive, but its service is no longer configured
    STOP = "stop"
    #: no process (or the pid is someone else's now): the row is marked stopped
    GONE = "gone"
    #: recorded as stopped or failed with no process: loaded as it is
    KEEP = "keep"


def fate(record: InstanceRecord, services: Mapping[str, Service], ticks: int | None) -> Fate:
    """Decide about ``record``, given the current start ticks of its pid (None: no process)."""
    ours = record.pid is not None and record.start_ticks is not None and ticks == record.start_ticks
    if not ours:
        return Fate.KEEP if record.pid is None and record.state in (STOPPED, FAILED) else Fate.GONE
    if record.service not in services:
        return Fate.STOP
    return Fate.ADOPT


def _health(text: str) -> Health:
    try:
        return Health(text)
    except ValueError:
        return Health.UNKNOWN


def instance_from_record(record: InstanceRecord, *, now: float) -> Instance:
    """The in-memory instance for a row (no process attached)."""
    state = record.state if record.state in (STOPPED, FAILED) else STOPPED
    health = Health.FAILED if state == FAILED else Health.UNKNOWN
    return Instance(
        service=record.service,
        tenant=record.tenant,
        socket=record.socket,
        port=None,
        weight=record.weight,
        state=state,
        health_state=HealthState(health),
        started_at=record.started_at,
        restart_times=tuple(record.restart_times),
        restarts_total=record.restarts_total,
        last_activity=now,
    )


def first_check_delay(index: int, count: int, interval: float) -> float:
    """When the ``index``-th of ``count`` adopted instances gets its first health check.

    The first checks are spread evenly over one ``interval`` (0, interval/count, ...), so a
    server adopting a thousand tenants does not check them all at once.
    """
    return 0.0 if count <= 0 else interval * (index % count) / count


async def adopt_all(
    sup: Supervisor, records: list[InstanceRecord], *, now: float
) -> list[tuple[Runner, Run]]:
    """Load every row into ``sup``; adopt the live tenants, and return them with their runs.

    Per row the work is cheap (a pidfd, then one read of ``/proc/<pid>/stat``); the rows
    that changed and every audit row are written in one transaction (an adopted tenant's
    row changes only when it was recorded as still starting), and the restarts start
    after it. Watching the adopted tenants is left to :func:`watch_adopted`.
    """
    from tenement.supervisor import cgroups
    from tenement.supervisor.process import TenantProcess, kill_stale_group

    cgroups_v2 = cgroups.available()
    adopted: list[tuple[Runner, Run]] = []
    events: list[LifecycleEvent] = []
    stopping: list[TenantProcess] = []
    revive: list[Runner] = []
    changed: list[InstanceRecord] = []
    for record in records:
        inst = instance_from_record(record, now=now)
        runner = sup.register(inst)
        process = None
        if record.pid is not None and record.start_ticks is not None:
            # the process with that pid, when it runs and its start time is the recorded
            # one: checked after its pidfd was opened, so the pidfd is that very process
            process = TenantProcess.adopt(record.pid, record.start_ticks, cgroups_v2=cgroups_v2)
        ticks = None if process is None else process.start_ticks
        decision = fate(record, sup.config.services, ticks)
        if decision is Fate.ADOPT:
            assert process is not None
            if record.port is not None:
                sup.reserve_port(record.port)
            run = Run(process, record.port)
            run.ready = True
            run.handed_over.set()
            inst.run = run
            inst.port = record.port
            inst.state = RUNNING
            inst.health_state = HealthState(_health(record.health))
            adopted.append((runner, run))
            events.append(
                LifecycleEvent(
                    "adopt",
                    inst.service,
                    inst.tenant,
                    pid=process.pid,
                    details=f"port {record.port}",
                )
            )
        elif decision is Fate.STOP:
            assert process is not None
            log.warning(
                "stopping %s (pid %s): its service is no longer configured",
                record.instance_id,
                record.pid,
                extra={"INSTANCE": record.instance_id},
            )
            stopping.append(process)
        elif decision is Fate.GONE:
            if record.pid is not None and record.start_ticks is not None:
                # the leader is gone (or its pid is another process's now); what is left
                # of its session is killed only when provably the tenant's
                kill_stale_group(record.pid, record.start_ticks)
            crashed = record.state in (STARTING, RUNNING, ORPHANED)
            if crashed and record.service in sup.config.services:
                # it died while no server watched it (or was between restarts): a crash;
                # orphaned: it ran when a peer found this node down (and it died since)
                revive.append(runner)
        if decision is not Fate.KEEP:
            now_record = inst.record()
            if decision is not Fate.ADOPT or _differs(now_record, record):
                changed.append(now_record)
    if stopping:
        async with trio.open_nursery() as nursery:
            for process in stopping:
                nursery.start_soon(process.terminate, 5.0)
    await sup.save_adoption(changed, events)
    for runner in revive:
        runner.revive()
    return adopted


def watch_adopted(
    sup: Supervisor, adopted: list[tuple[Runner, Run]], start: int = 0, stop: int | None = None
) -> None:
    """Resume supervising the adopted tenants ``adopted[start:stop]``: their log files are
    tailed from the saved offsets, and each gets its watcher (exit, then recovery) and
    health checks, the first checks of all of ``adopted`` spread over one interval. A
    tenant stopped or replaced since is skipped."""
    interval = sup.config.settings.health_check_interval
    for index in range(start, len(adopted) if stop is None else min(stop, len(adopted))):
        runner, run = adopted[index]
        if runner.inst.run is not run:
            continue
        runner.watch(run, first_check_delay(index, len(adopted), interval))


def _differs(now: InstanceRecord, before: InstanceRecord) -> bool:
    """Whether an adopted tenant's row says more than it did (``updated_at`` aside)."""
    return _COMPARED(now) != _COMPARED(before)


#: a row's fields but ``updated_at``, read at once (``attrs.evolve`` and ``==`` took 34 ms
#: of a start adopting 1,000 tenants under cProfile; this is ~0.8 us a row)
_COMPARED = operator.attrgetter(
    *(field.name for field in attrs.fields(InstanceRecord) if field.name != "updated_at")
)
