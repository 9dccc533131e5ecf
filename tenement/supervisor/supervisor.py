"""The supervisor: the operations the API, the proxy and the server call.

Built in layers: ``_base.py`` (state, lookups, views, the proxy's memory-only side,
persistence), ``running.py`` (launch, watch, restart, stop one process), and here the
public operations: spawn, restart, weights, deploy, route, wake, reload, detach.
"""

from __future__ import annotations

import contextlib
import logging
import time

import trio

from tenement.config import Config, Service
from tenement.errors import TenementError
from tenement.supervisor import backoff
from tenement.supervisor._base import MAX_WEIGHT, SupervisorStatistics
from tenement.supervisor.errors import (
    DeployError,
    InstanceFailed,
    InstanceNotFound,
    RestartPending,
    WakeError,
)
from tenement.supervisor.events import LifecycleEvent
from tenement.supervisor.health import Health
from tenement.supervisor.instance import (
    FAILED,
    RUNNING,
    STARTING,
    STOPPED,
    Instance,
    InstanceView,
    PendingRestart,
    Target,
)
from tenement.supervisor.running import Running

log = logging.getLogger(__name__)

#: how often deploy asks an instance for its health
DEPLOY_POLL_SECONDS = 0.5

__all__ = ["Supervisor", "SupervisorStatistics"]


class Supervisor(Running):
    """Owns the instances of one data dir. Build it with :func:`open_supervisor`."""

    # ---- spawn ------------------------------------------------------------------------------

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
        inst, _ = await self._ensure_running(service, tenant, revive=True)
        return self._view(inst)

    async def _ensure_running(
        self, service: str, tenant: str, *, revive: bool
    ) -> tuple[Instance, bool]:
        """Start the instance unless it runs; returns it and whether this call started it.

        ``revive`` (an operator's spawn) also starts a failed instance, with a fresh
        restart budget, and one in backoff at once. A request's wake (``revive=False``)
        starts neither: it raises :class:`InstanceFailed`, or returns without starting an
        instance in backoff (the caller waits for its restart); a wake whose start
        fails puts the instance in backoff.
        """
        svc = self._service_or_raise(service)
        inst = self._instance_for(svc, tenant)
        async with inst.lock:
            if inst.run is not None and inst.state in (STARTING, RUNNING):
                return inst, False
            if inst.pending_restart is not None:
                if not revive:
                    return inst, False
                self._call_off_restart(inst)
            if inst.state == FAILED:
                if not revive:
                    raise InstanceFailed(inst.id)
                inst.restart_times = ()
            try:
                await self._launch(inst, svc)
            except TenementError as exc:
                if not revive:
                    self._wake_failed(inst, str(exc))
                raise
            return inst, True

    async def restart(self, iid: str) -> InstanceView:
        """Stop, wait the restart policy's delay, start again. Brings a failed instance back.

        During the delay the instance is in backoff, as after a crash: requests wait for
        it (or get 503 with ``Retry-After``) and start nothing.

        Raises:
            InstanceNotFound: no such running or failed instance.
        """
        inst = self._registered(iid)
        policy = backoff.RestartPolicy.from_settings(self._config.settings)
        if inst.state == FAILED:
            inst.restart_times = ()
        now = time.time()
        decision = backoff.decide(policy, inst.restart_times, now=now, automatic=False)
        await self._stop(inst, kind="restart")
        inst.restart_times = decision.history
        inst.restarts_total += 1
        delay = decision.delay_seconds
        if delay > 0:
            pending = PendingRestart(
                at=trio.current_time() + delay, at_epoch=time.time() + delay, delay_seconds=delay
            )
            inst.pending_restart = pending
            inst.state = STARTING
            try:
                with trio.move_on_at(pending.at):
                    await pending.attempted.wait()  # set early if a stop or a spawn took over
                if inst.pending_restart is not pending:
                    return self._view(self._registered(iid))  # NotFound once stopped
                return await self.spawn(inst.service, inst.tenant)
            finally:
                if inst.pending_restart is pending:  # cancelled before the spawn
                    inst.pending_restart = None
                    if inst.run is None and inst.state == STARTING:
                        inst.state = STOPPED
                pending.attempted.set()
        return await self.spawn(inst.service, inst.tenant)

    # ---- weights, health, deploy, route -----------------------------------------------------

    async def set_weight(self, iid: str, weight: int) -> int:
        """Set the share of weighted traffic (capped to 0..100); kept across restarts."""
        inst = self._registered(iid)
        inst.weight = max(0, min(MAX_WEIGHT, int(weight)))
        await self._save(inst)
        await self._events.emit(
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
        await self.spawn(service, version)
        iid = f"{service}:{version}"
        await self.set_weight(iid, weight)
        with trio.move_on_after(timeout):
            while True:
                status = await self.check_health(iid)
                if status is Health.HEALTHY:
                    await self._events.emit(
                        LifecycleEvent("deploy", service, version, details=f"weight {weight}")
                    )
                    return self._view(self._registered(iid))
                if status is Health.FAILED:
                    await self._events.emit(
                        LifecycleEvent(
                            "deploy_failed", service, version, details="failed", success=False
                        )
                    )
                    raise DeployError(iid, f"Deployment {iid} failed health checks")
                await trio.sleep(DEPLOY_POLL_SECONDS)
        with contextlib.suppress(InstanceNotFound):
            await self.stop(iid)
        await self._events.emit(
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
        old.weight, new.weight = 0, MAX_WEIGHT  # one step: the proxy never sees a mix
        await self._save(old)
        await self._save(new)
        await self._events.emit(
            LifecycleEvent("route", service, to_version, details=f"{from_version} -> {to_version}")
        )
        return self._view(old), self._view(new)

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
        inst = self._instances.get(f"{service}:{tenant}")
        if inst is not None and inst.routable and inst.run is not None and inst.run.ready:
            inst.touch()
            return inst.target()
        svc = self._service_or_raise(service)
        iid = f"{service}:{tenant}"
        deadline = trio.current_time() + svc.request_timeout
        while True:
            inst = self._instances.get(iid)
            pending = None if inst is None else inst.pending_restart
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
                inst, launched = await self._ensure_running(service, tenant, revive=False)
            except WakeError:  # InstanceFailed
                raise
            except TenementError as exc:  # SpawnError, PortsExhausted, InvalidInstanceId
                now_inst = self._instances.get(iid)
                counted = now_inst is not None and (
                    now_inst.pending_restart is not None or now_inst.state == FAILED
                )
                if not counted:
                    raise WakeError(iid, f"Instance {iid} failed to wake: {exc}") from exc
                continue  # counted, and in backoff now: wait for its restart
            if inst.pending_restart is None:
                break
        run = inst.run
        if run is None or not run.ready:
            if launched and run is not None:
                self._not_ready_wake(inst, svc)
            raise WakeError(
                iid, f"Instance {iid} failed to start within {svc.startup_timeout:g} seconds"
            )
        if launched:
            # the waiting request goes on now; the audit row is written meanwhile (before:
            # a write transaction in a worker thread, ~5% of a cold wake, came first)
            event = LifecycleEvent("wake", service, tenant, pid=run.pid)
            self._events.record(event)
            self._nursery.start_soon(self._events.write_audit, event)
        inst.touch()
        return inst.target()

    def _not_ready_wake(self, inst: Instance, svc: Service) -> None:
        """A woken process that did not accept within ``startup_timeout`` counts as a
        failed start; it is left running for the health checks to judge."""
        policy = backoff.RestartPolicy.from_settings(self._config.settings)
        inst.restart_times = backoff.count_failed_start(policy, inst.restart_times, now=time.time())
        inst.restarts_total += 1
        event = LifecycleEvent(
            "wake_failed",
            inst.service,
            inst.tenant,
            pid=inst.pid,
            details=f"not accepting after {svc.startup_timeout:g} s",
            success=False,
        )
        self._events.record(event)
        self._nursery.start_soon(self._events.write_audit, event)

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
        old = self._config
        self._config = config
        removed = [
            inst
            for inst in self._instances.values()
            if inst.service not in config.services and inst.state != STOPPED
        ]
        async with trio.open_nursery() as nursery:
            for inst in removed:
                nursery.start_soon(lambda i=inst: self._stop(i, kind="stop"))
        for service, tenants in config.instances.items():
            for tenant in tenants:
                if tenant not in old.instances.get(service, ()):
                    self._nursery.start_soon(self._spawn_listed, service, tenant)
        return tuple(sorted(inst.id for inst in removed))

    async def _spawn_listed(self, service: str, tenant: str) -> None:
        try:
            await self.spawn(service, tenant)
        except TenementError as exc:  # logged; startup goes on, as in the reference
            log.error("could not start [instances] %s:%s: %s", service, tenant, exc)

    async def _shutdown(self) -> None:
        """Stop every instance, or, detached, leave them running with their rows saved."""
        live = [inst for inst in self._instances.values() if inst.state != STOPPED]
        if self._detached:
            for inst in live:
                if inst.watcher is not None:
                    inst.watcher.cancel()
            # one transaction for all: a restart's stop should not grow with the tenants
            records = [self._record(inst) for inst in live]
            await self._store.run(self._store.save_instances, records)
            log.info("detached: %d instances left running for the next server", len(live))
        else:
            async with trio.open_nursery() as nursery:
                for inst in live:
                    nursery.start_soon(lambda i=inst: self._stop(i, kind="stop", drain=False))
        await self._tailer.poll_once()
