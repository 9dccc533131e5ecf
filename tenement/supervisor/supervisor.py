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

from tenement.config import Config
from tenement.errors import TenementError
from tenement.supervisor import backoff
from tenement.supervisor._base import MAX_WEIGHT, SupervisorStatistics
from tenement.supervisor.errors import DeployError, InstanceNotFound, WakeError
from tenement.supervisor.events import LifecycleEvent
from tenement.supervisor.health import Health
from tenement.supervisor.instance import (
    FAILED,
    RUNNING,
    STARTING,
    STOPPED,
    Instance,
    InstanceView,
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
        svc = self._service_or_raise(service)
        inst = self._instance_for(svc, tenant)
        async with inst.lock:
            if inst.run is not None and inst.state in (STARTING, RUNNING):
                return inst, False
            if inst.state == FAILED:
                if not revive:
                    raise WakeError(
                        inst.id,
                        f"Instance {inst.id} has failed; restart it by hand "
                        f"(ten restart {inst.id})",
                    )
                inst.restart_times = ()
            await self._launch(inst, svc)
            return inst, True

    async def restart(self, iid: str) -> InstanceView:
        """Stop, wait the restart policy's delay, start again. Brings a failed instance back.

        Raises:
            InstanceNotFound: no such running or failed instance.
        """
        inst = self._registered(iid)
        policy = backoff.RestartPolicy.from_settings(self._config.settings)
        if inst.state == FAILED:
            inst.restart_times = ()
        decision = backoff.decide(policy, inst.restart_times, now=time.time(), automatic=False)
        await self._stop(inst, kind="restart")
        inst.restart_times = decision.history
        inst.restarts_total += 1
        await trio.sleep(decision.delay_seconds)
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

        Raises:
            WakeError: it failed, could not start, or did not accept within its
                ``startup_timeout`` (the proxy answers 503).
            UnknownService: no such service.
        """
        inst = self._instances.get(f"{service}:{tenant}")
        if inst is not None and inst.routable and inst.run is not None and inst.run.ready:
            inst.touch()
            return inst.target()
        svc = self._service_or_raise(service)
        iid = f"{service}:{tenant}"
        try:
            inst, launched = await self._ensure_running(service, tenant, revive=False)
        except WakeError:
            raise
        except TenementError as exc:  # SpawnError, PortsExhausted
            raise WakeError(iid, f"Instance {iid} failed to wake: {exc}") from exc
        run = inst.run
        if run is None or not run.ready:
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
