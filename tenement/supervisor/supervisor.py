"""The supervisor: it owns the instances, ports, store and events of one data dir.

It keeps one :class:`~tenement.supervisor.runner.Runner` per instance (``runner.py``:
launch, watch, recover from a crash with backoff, stop) and lends the runners its
resources (``shared.py``); here are the operations the API, the proxy and the server call:
lookups and views, the proxy's memory-only side, spawn, restart, weights, deploy, route,
wake, reload, detach. The proxy's methods (:meth:`Supervisor.target`,
:meth:`Supervisor.weighted_targets`, :meth:`Supervisor.connection`, ...) read memory only,
never the database.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import attrs
import trio

from tenement.config import Config, Service
from tenement.errors import TenementError
from tenement.ids import NAME_RULE, InstanceRef, InvalidInstanceId, is_valid_name
from tenement.store import InstanceRecord, LogEntry, Store
from tenement.supervisor.errors import (
    DeployError,
    Fenced,
    InstanceNotFound,
    NotAllowedHere,
    OwnedElsewhere,
    RestartPending,
    UnknownService,
    WakeError,
)
from tenement.supervisor.events import LifecycleEvent
from tenement.supervisor.health import Health
from tenement.supervisor.instance import (
    FAILED,
    STOPPED,
    Changes,
    Instance,
    InstanceView,
    Target,
)
from tenement.supervisor.logtail import LogTailer, TailerStatistics
from tenement.supervisor.runner import Runner
from tenement.supervisor.shared import Shared
from tenement.supervisor.spec import socket_path
from tenement.supervisor.storage import StorageInfo, quota_bytes, storage_info

log = logging.getLogger(__name__)

#: how often deploy asks an instance for its health
DEPLOY_POLL_SECONDS = 0.5

__all__ = ["Supervisor", "SupervisorStatistics"]

MAX_WEIGHT = 100


@attrs.frozen
class SupervisorStatistics:
    """Counters and gauges for ``/metrics`` and ``ten ps``.

    Attributes:
        instances_up: instances with a running process.
        instances_failed: instances marked failed.
        events: lifecycle event kind -> how many (spawn, exit, crash_restart, wake, ...).
        instance_restarts: (service, tenant, restarts) for every instance ever restarted.
        logs: the log tailer's counters.
    """

    instances_up: int
    instances_failed: int
    events: tuple[tuple[str, int], ...]
    instance_restarts: tuple[tuple[str, str, int], ...]
    logs: TailerStatistics


class Supervisor:
    """Owns the instances of one data dir. Build it with :func:`open_supervisor`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        environ: Mapping[str, str],
        nursery: trio.Nursery,
        tailer: LogTailer,
    ) -> None:
        self._shared = Shared(config, store, environ=environ, nursery=nursery, tailer=tailer)
        self._runners: dict[str, Runner] = {}
        #: moves when an instance is kept or forgotten, or the config changes (changes())
        self._kept = 0
        self._detached = False
        #: why this fleet node serves no tenant now (it lost the database for
        #: node_timeout: ``server/fencing.py``), and the Retry-After to send; None: serving
        self.fenced: tuple[str, int] | None = None
        #: instances being moved to another fleet node (``server/moves.py``): never woken
        #: meanwhile, whichever serving process asks
        self.moving: set[str] = set()

    # ---- configuration and lookups --------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._shared.config

    @property
    def data_dir(self) -> Path:
        return self._shared.data_dir

    @property
    def log_dir(self) -> Path:
        return self._shared.log_dir

    @property
    def detached(self) -> bool:
        return self._detached

    @property
    def allocated_ports(self) -> frozenset[int]:
        """The TCP ports its instances hold now."""
        return self._shared.ports.allocated

    def service(self, name: str) -> Service | None:
        """The configured service ``name``, or None."""
        return self._shared.service(name)

    def _service_or_raise(self, name: str) -> Service:
        svc = self.service(name)
        if svc is None:
            raise UnknownService(name)
        return svc

    def _runner_for(self, svc: Service, tenant: str) -> Runner:
        if not is_valid_name(tenant):
            raise InvalidInstanceId(
                f"Invalid instance ID '{svc.name}:{tenant}': '{tenant}' must be {NAME_RULE}"
            )
        iid = f"{svc.name}:{tenant}"
        runner = self._runners.get(iid)
        if runner is None:
            runner = self.register(Instance(svc.name, tenant, socket_path(svc, tenant)))
        return runner

    def _registered(self, iid: str) -> Runner:
        runner = self._runners.get(iid)
        if runner is None or runner.inst.state == STOPPED:
            raise InstanceNotFound(iid)
        return runner

    def _all_instances(self) -> Iterator[Instance]:
        return (runner.inst for runner in self._runners.values())

    def instance_dir(self, service: str, tenant: str) -> Path:
        return self._shared.instance_dir(service, tenant)

    # ---- the registry (adoption and the background passes use it) ---------------------------

    def register(self, inst: Instance) -> Runner:
        """Keep ``inst`` (replacing any instance of its id) and return its runner."""
        runner = Runner(inst, self._shared)
        self._runners[inst.id] = runner
        self._kept += 1
        return runner

    def start_soon(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` in the supervisor's nursery (it ends with the supervisor)."""
        self._shared.nursery.start_soon(work)

    def forget(self, iid: str) -> None:
        """Drop ``iid`` from memory (not its row): another fleet node owns it now."""
        self._runners.pop(iid, None)
        self._kept += 1

    async def owner_elsewhere(self, iid: str) -> str | None:
        """The other fleet node whose row holds ``iid`` (it moved or was placed there),
        or None: a single host, an instance this node runs, or a row naming no other
        node. One query, for a standby's or worker's wake only."""
        store = self._shared.store
        if store.node is None or iid in self._runners:
            return None
        owner: str | None = await store.run(store.instance_node, iid)
        return owner if owner is not None and owner != store.node else None

    def refuse_if_fenced(self, iid: str) -> None:
        """Raise :class:`Fenced` while this fleet node is fenced: it starts nothing."""
        if self.fenced is not None:
            reason, retry_after = self.fenced
            raise Fenced(iid, reason, retry_after)

    def runner(self, iid: str) -> Runner | None:
        """The runner of instance ``iid`` (stopped ones too), or None."""
        return self._runners.get(iid)

    def runners(self) -> list[Runner]:
        """The runner of every instance it knows (stopped ones too)."""
        return list(self._runners.values())

    def reserve_port(self, port: int) -> None:
        """Hold ``port``, which an adopted tenant listens on."""
        self._shared.ports.reserve(port)

    async def save_adoption(
        self, changed: list[InstanceRecord], events: list[LifecycleEvent]
    ) -> None:
        """Write the rows adoption changed and the audit rows of its ``events`` in one
        transaction, then count and log the events."""
        shared = self._shared
        audits = [args for event in events if (args := shared.events.audit_args(event)) is not None]
        await shared.store.run(shared.store.save_adoption, changed, audits)
        for event in events:
            shared.events.record(event)

    async def prune_logs(self, *, older_than_ms: int, keep_rows: int) -> int:
        """Delete log lines older than ``older_than_ms`` (epoch ms) and beyond the newest
        ``keep_rows``; returns how many."""
        store = self._shared.store

        def prune() -> int:
            return store.prune_logs(older_than_ms=older_than_ms, keep_rows=keep_rows)

        return await store.run(prune)

    # ---- views ------------------------------------------------------------------------------

    def _view(self, inst: Instance) -> InstanceView:
        svc = self.service(inst.service)
        return inst.view(quota_bytes=quota_bytes(svc.storage_quota_mb if svc else None))

    def instances(self) -> list[InstanceView]:
        """Every instance that is running, starting or failed, by id."""
        return [
            self._view(runner.inst)
            for iid, runner in sorted(self._runners.items())
            if runner.inst.state != STOPPED
        ]

    def signature(self, tenant: str | None = None) -> int:
        """A hash of what :meth:`instances` (only ``tenant``'s, if given) shows, but the
        clock: it changes when any of it changes, not as uptime and idle seconds grow.
        About 0.3 ms for 1,000 instances, a tenth of :meth:`instances` (see
        :meth:`Instance.signature`); the API's ETags are made of it."""
        quotas: dict[str, int | None] = {}
        items = []
        for runner in self._runners.values():
            inst = runner.inst
            if inst.state == STOPPED or (tenant is not None and inst.tenant != tenant):
                continue
            if inst.service not in quotas:
                svc = self.service(inst.service)
                quotas[inst.service] = quota_bytes(svc.storage_quota_mb if svc else None)
            items.append((inst.signature(), quotas[inst.service]))
        # a set: the same instances registered in another order list the same
        return hash(frozenset(items))

    def changes(self) -> tuple[int, int]:
        """A validator of what :meth:`instances` shows, but the clock, in O(1): it moves
        whenever that may have changed (an instance's shown field set to another value,
        an instance kept or forgotten, a new config's quotas), so an equal value means
        an equal list. It may move without a change (it counts every instance of the
        process); :meth:`signature` is the exact one, at O(n)."""
        return (Changes.count, self._kept)

    def get(self, iid: str, *, stopped: bool = False) -> InstanceView | None:
        """The instance ``iid`` unless it is stopped (``stopped``: stopped too) or unknown."""
        runner = self._runners.get(iid)
        if runner is None or (runner.inst.state == STOPPED and not stopped):
            return None
        return self._view(runner.inst)

    def storage(self, iid: str) -> StorageInfo:
        """Disk usage of the instance's data dir, as of the last storage pass.

        Raises:
            InstanceNotFound: no such running or failed instance.
        """
        inst = self._registered(iid).inst
        svc = self.service(inst.service)
        quota = quota_bytes(svc.storage_quota_mb if svc else None)
        path = self.instance_dir(inst.service, inst.tenant)
        return storage_info(path, inst.storage_used_bytes, quota)

    def statistics(self) -> SupervisorStatistics:
        events = self._shared.events
        restarts = []
        for iid, count in sorted(events.restarts.items()):
            ref = InstanceRef.parse(iid)
            restarts.append((ref.service, ref.tenant, count))
        return SupervisorStatistics(
            instances_up=sum(1 for inst in self._all_instances() if inst.running),
            instances_failed=sum(1 for inst in self._all_instances() if inst.state == FAILED),
            events=tuple(sorted(events.counts.items())),
            instance_restarts=tuple(restarts),
            logs=self._shared.tailer.statistics(),
        )

    # ---- the proxy's side: memory only ----------------------------------------------------

    def target(self, service: str, tenant: str) -> Target | None:
        """Where to send a request for ``tenant`` of ``service``; None unless it is routable.

        Touches the instance's last activity (the idle reaper reads it).
        """
        runner = self._runners.get(f"{service}:{tenant}")
        if runner is None or not runner.inst.routable or self.fenced is not None:
            return None
        runner.inst.touch()
        return runner.inst.target()

    def weighted_targets(self, service: str) -> list[Target]:
        """Every routable instance of ``service`` (weight 0 included), by id.

        The proxy picks among those with a weight above 0.
        """
        if self.fenced is not None:
            return []
        return [
            runner.inst.target()
            for iid, runner in sorted(self._runners.items())
            if runner.inst.service == service and runner.inst.routable
        ]

    def may_wake(self, service: str, tenant: str) -> bool:
        """Whether a request for an instance that is not routable goes to :meth:`wake`
        (rather than a 404).

        True for an instance known from earlier (a row; a failed one or one in backoff
        too: :meth:`wake` then refuses it with 503, or waits for its restart), one listed
        in ``[instances]``, or any valid id with ``settings.wake_any_id`` (the
        reference's behaviour); never for an unknown service.

        Changed in 0.3.0: True for a failed instance, which is answered 503 as the
        reference answers it (its dead process fails the proxy's probe), not 404.
        """
        if self.service(service) is None or not is_valid_name(tenant):
            return False
        if f"{service}:{tenant}" in self._runners:
            return True
        if tenant in self.config.instances.get(service, ()):
            return True
        return self.config.settings.wake_any_id

    def connection(self, iid: str) -> contextlib.AbstractContextManager[object]:
        """Count one proxied connection to ``iid`` for as long as the block runs.

        A stop waits (up to 5 s) for the count to reach 0, and the idle reaper skips an
        instance with connections.
        """
        runner = self._runners.get(iid)
        return contextlib.nullcontext() if runner is None else _Counted(runner.inst)

    def note_activity(self, iid: str, seconds_ago: float) -> None:
        """Another server routed a request to ``iid`` ``seconds_ago``: the idle reaper counts it."""
        runner = self._runners.get(iid)
        if runner is not None:
            at = trio.current_time() - max(0.0, seconds_ago)
            runner.inst.last_activity = max(runner.inst.last_activity, at)

    # ---- logs -------------------------------------------------------------------------------

    def subscribe_logs(self) -> trio.MemoryReceiveChannel[LogEntry]:
        """A live feed of new log lines (bounded: a slow reader misses lines)."""
        return self._shared.tailer.subscribe()

    # ---- spawn, stop, restart ---------------------------------------------------------------

    async def spawn(self, service: str, tenant: str) -> InstanceView:
        """Start ``tenant`` of ``service`` unless it is running; wait until it accepts.

        Idempotent: concurrent and repeated calls start one process. A failed instance is
        started again (with a fresh restart budget). Waits up to the service's
        ``startup_timeout`` for the instance to accept a connection; past that it logs a
        warning and returns anyway (as the reference does).

        Raises:
            UnknownService: ``Unknown process: X``.
            InvalidInstanceId: ``tenant`` is not a valid id.
            SpawnError: the process could not be started or exited before accepting
                (the port is released and nothing is left behind).
            PortsExhausted: no free port.
        """
        svc = self._service_or_raise(service)
        self.refuse_if_fenced(f"{service}:{tenant}")
        await self._claim(svc, tenant)
        runner = self._runner_for(svc, tenant)
        await runner.start(svc, revive=True)
        return self._view(runner.inst)

    async def _claim(self, svc: Service, tenant: str, *, place: bool = False) -> None:
        """In a fleet, make the instance this node's before it starts here, or raise when
        another node runs it (starting it here would run two copies), or when it has no
        row yet and ``[service.X] nodes`` leaves this node out. Asked only of an instance
        this node does not run yet; a single host pays nothing.

        ``place``: an instance with no row yet (a request woke a new tenant) goes where
        the placement policy says, as a spawn does (``store/placement.py``); raises
        :class:`OwnedElsewhere` naming that node when it is another one."""
        store = self._shared.store
        iid = f"{svc.name}:{tenant}"
        node = store.node
        if node is None or iid in self._runners or not is_valid_name(tenant):
            return  # an invalid id is refused by _runner_for, with its own message
        fleet = self._shared.config.fleet
        if place and fleet is not None:
            placed = await store.run(
                store.place_instance,
                iid,
                svc.name,
                tenant,
                svc.nodes,
                fleet.node_timeout,
                time.time(),
            )
            if placed.node is None:
                if not svc.allows(node):
                    raise NotAllowedHere(iid, node, svc.nodes or ())
                raise WakeError(
                    iid,
                    f"Instance {iid} was not started: no live fleet node may run it "
                    f"(live: {', '.join(placed.live) or 'none'}); ten nodes lists the fleet",
                )
            if placed.node != node:
                if placed.chosen:
                    log.info("placed %s on fleet node %s (a request woke it)", iid, placed.node)
                raise OwnedElsewhere(iid, placed.node)
        if not svc.allows(node):
            # a row naming this node (placed before the constraint changed) is still its own
            owner = await store.run(store.instance_node, iid)
            if owner is None:
                raise NotAllowedHere(iid, node, svc.nodes or ())
            if owner != node:
                raise OwnedElsewhere(iid, owner)
        owner = await store.run(store.claim_instance, iid, svc.name, tenant, time.time())
        if owner is not None:
            raise OwnedElsewhere(iid, owner)

    async def spawn_listed(self, service: str, tenant: str) -> None:
        """:meth:`spawn` an instance of ``[instances]``; a failure is logged, not raised."""
        try:
            await self.spawn(service, tenant)
        except OwnedElsewhere as exc:  # a fleet's nodes share [instances]: one runs each
            log.info("[instances] %s:%s runs on fleet node %s: not here", service, tenant, exc.node)
        except NotAllowedHere:  # [service.X] nodes: one of those nodes starts it
            log.info(
                "[instances] %s:%s: not on this fleet node ([service.%s] nodes leaves it out)",
                service,
                tenant,
                service,
            )
        except TenementError as exc:  # logged; startup goes on, as in the reference
            log.error("could not start [instances] %s:%s: %s", service, tenant, exc)

    async def stop(self, iid: str) -> None:
        """Stop an instance: drain connections (up to 5 s), TERM its group, grace, KILL.

        Releases its port, and deletes its data dir when ``storage_persist = false``. Its
        weight and restart history are kept for its next start.

        Raises:
            InstanceNotFound: ``Instance not found: p:i``.
        """
        await self._registered(iid).stop(kind="stop")

    async def restart(self, iid: str) -> InstanceView:
        """Stop, wait the restart policy's delay, start again. Brings a failed instance back.

        During the delay the instance is in backoff, as after a crash: requests wait for
        it (or get 503 with ``Retry-After``) and start nothing.

        Raises:
            InstanceNotFound: no such running or failed instance.
        """
        await self._registered(iid).restart()
        return self._view(self._registered(iid).inst)  # NotFound once a stop took over

    async def check_health(self, iid: str) -> Health:
        """Check the instance now; ``unknown`` when it is not running, ``failed`` if failed.

        Raises:
            InstanceNotFound: no such running or failed instance.
        """
        return await self._registered(iid).check_health()

    # ---- weights, deploy, route -------------------------------------------------------------

    async def set_weight(self, iid: str, weight: int) -> int:
        """Set the share of weighted traffic (capped to 0..100); kept across restarts."""
        runner = self._registered(iid)
        inst = runner.inst
        inst.weight = max(0, min(MAX_WEIGHT, int(weight)))
        await runner.save()
        await self._shared.events.emit(
            LifecycleEvent("weight", inst.service, inst.tenant, details=f"weight {inst.weight}")
        )
        return inst.weight

    async def deploy(
        self, service: str, version: str, *, weight: int = 100, timeout: float = 30
    ) -> InstanceView:
        """Start ``version`` of ``service`` with ``weight`` and wait until it is healthy.

        Raises:
            DeployError: it failed, or was not healthy within ``timeout`` s (it is stopped).
            UnknownService, SpawnError: as :meth:`spawn`.
        """
        events = self._shared.events
        await self.spawn(service, version)
        iid = f"{service}:{version}"
        await self.set_weight(iid, weight)
        with trio.move_on_after(timeout):
            while True:
                status = await self.check_health(iid)
                if status is Health.HEALTHY:
                    await events.emit(
                        LifecycleEvent("deploy", service, version, details=f"weight {weight}")
                    )
                    return self._view(self._registered(iid).inst)
                if status is Health.FAILED:
                    await events.emit(
                        LifecycleEvent(
                            "deploy_failed", service, version, details="failed", success=False
                        )
                    )
                    raise DeployError(iid, f"Deployment {iid} failed health checks")
                await trio.sleep(DEPLOY_POLL_SECONDS)
        with contextlib.suppress(InstanceNotFound):
            await self.stop(iid)
        await events.emit(
            LifecycleEvent("deploy_failed", service, version, details="timeout", success=False)
        )
        raise DeployError(
            iid, f"Deployment {iid} did not become healthy within {timeout:g} seconds"
        )

    async def route(
        self, service: str, from_version: str, to_version: str
    ) -> tuple[InstanceView, InstanceView]:
        """Move all weighted traffic from one instance to another at once (0 and 100).

        Raises:
            InstanceNotFound: either instance is not running.
        """
        try:
            old = self._registered(f"{service}:{from_version}")
            new = self._registered(f"{service}:{to_version}")
        except InstanceNotFound as exc:  # the reference words this one differently
            raise InstanceNotFound(
                exc.instance_id, f"Instance {exc.instance_id} not found"
            ) from None
        old.inst.weight, new.inst.weight = 0, MAX_WEIGHT  # one step: the proxy never sees a mix
        await old.save()
        await new.save()
        await self._shared.events.emit(
            LifecycleEvent("route", service, to_version, details=f"{from_version} -> {to_version}")
        )
        return self._view(old.inst), self._view(new.inst)

    # ---- wake -------------------------------------------------------------------------------

    async def wake(self, service: str, tenant: str) -> Target:
        """Start the instance for a request unless it runs; concurrent wakes share one start.

        An instance in backoff is not started early: the request waits for its scheduled
        restart if that is due within the service's ``request_timeout``, else it is
        refused with the seconds until then. A wake whose start fails counts as a restart
        and puts the instance in backoff, and the request waits for that restart in turn.

        Raises:
            RestartPending: in backoff, the restart due after ``request_timeout``
                (the proxy answers 503 with ``Retry-After``).
            InstanceFailed: it failed (503); an operator's restart or spawn brings it back.
            WakeError: it could not start, or did not accept within its
                ``startup_timeout`` (the proxy answers 503).
            UnknownService: no such service.
        """
        iid = f"{service}:{tenant}"
        self.refuse_if_fenced(iid)
        if iid in self.moving:
            raise WakeError(iid, f"Instance {iid} is being moved to another fleet node")
        runner = self._runners.get(iid)
        if runner is not None:
            inst = runner.inst
            if inst.routable and inst.run is not None and inst.run.ready:
                inst.touch()
                return inst.target()
        svc = self._service_or_raise(service)
        await self._claim(svc, tenant, place=True)
        deadline = trio.current_time() + svc.request_timeout
        while True:
            runner = self._runners.get(iid)
            pending = None if runner is None else runner.inst.pending_restart
            if pending is not None:
                retry_after = await pending.wait_attempted(deadline=deadline)
                if retry_after is not None:
                    raise RestartPending(
                        iid,
                        retry_after,
                        f"Instance {iid} is in backoff: its restart is due in {retry_after} s, "
                        f"beyond the service's request_timeout ({svc.request_timeout:g} s); "
                        f"retry after {retry_after} s",
                    )
                continue
            try:
                current = self._service_or_raise(service)  # a reload may have changed it
                runner = self._runner_for(current, tenant)
                launched = await runner.start(current, revive=False)
            except WakeError:  # InstanceFailed
                raise
            except TenementError as exc:  # SpawnError, PortsExhausted, InvalidInstanceId
                now = self._runners.get(iid)
                counted = now is not None and (
                    now.inst.pending_restart is not None or now.inst.state == FAILED
                )
                if not counted:
                    raise WakeError(iid, f"Instance {iid} failed to wake: {exc}") from exc
                continue  # counted, and in backoff now: wait for its restart
            if runner.inst.pending_restart is None:
                break
        inst = runner.inst
        run = inst.run
        if run is None or not run.ready:
            if launched and run is not None:
                runner.not_ready_wake(svc)
            raise WakeError(
                iid, f"Instance {iid} failed to start within {svc.startup_timeout:g} seconds"
            )
        if launched:
            # the waiting request goes on now; the audit row is written meanwhile (before:
            # a write transaction in a worker thread, ~5% of a cold wake, came first)
            events = self._shared.events
            event = LifecycleEvent("wake", service, tenant, pid=run.pid)
            events.record(event)
            self._shared.nursery.start_soon(events.write_audit, event)
        inst.touch()
        return inst.target()

    # ---- lifecycle (open_supervisor) --------------------------------------------------------

    def detach(self) -> None:
        """On exit, leave every tenant running (state flushed) for the next server to adopt."""
        self._detached = True

    async def reload(self, config: Config) -> tuple[str, ...]:
        """Use a new config: new services can start; removed services' instances stop.

        Running instances of a changed service keep running; the change applies at their
        next start.

        Returns:
            The ids of the instances it stopped (their services were removed), sorted.
        """
        old = self._shared.config
        self._shared.config = config
        self._kept += 1  # the services' quotas are in the list
        removed = [
            runner
            for runner in self._runners.values()
            if runner.inst.service not in config.services and runner.inst.state != STOPPED
        ]
        async with trio.open_nursery() as nursery:
            for runner in removed:
                nursery.start_soon(functools.partial(runner.stop, kind="stop"))
        for service, tenants in config.instances.items():
            for tenant in tenants:
                if tenant not in old.instances.get(service, ()):
                    self._shared.nursery.start_soon(self.spawn_listed, service, tenant)
        return tuple(sorted(runner.inst.id for runner in removed))

    async def shutdown(self) -> None:
        """Stop every instance, or, detached, leave them running with their rows saved.

        :func:`open_supervisor` calls it on the way out.
        """
        live = [runner for runner in self._runners.values() if runner.inst.state != STOPPED]
        shared = self._shared
        if self._detached:
            for runner in live:
                runner.let_go()
            # one transaction for all: a restart's stop should not grow with the tenants
            records = [runner.inst.record() for runner in live]
            # with the database out of reach the next server adopts from the rows as
            # they were last written (each names its pid and start time)
            with shared.store.outage.tolerated("the rows of the tenants left running"):
                await shared.store.run(shared.store.save_instances, records)
            log.info("detached: %d instances left running for the next server", len(live))
        else:
            async with trio.open_nursery() as nursery:
                for runner in live:
                    nursery.start_soon(functools.partial(runner.stop, kind="stop", drain=False))
        await shared.tailer.poll_once()


class _Counted:
    """:meth:`Supervisor.connection`'s block: a class, as it runs for every proxied
    request (a generator-based context manager cost ~3% of one, py-spy)."""

    __slots__ = ("_inst",)

    def __init__(self, inst: Instance) -> None:
        self._inst = inst

    def __enter__(self) -> None:
        self._inst.active_connections += 1
        self._inst.touch()

    def __exit__(self, *exc_info: object) -> None:
        self._inst.active_connections -= 1
        self._inst.touch()
