"""The supervisor: starts, watches, restarts and stops every instance.

One watcher task per instance lives in the supervisor's nursery: it waits for the process
to exit (through its pidfd, so a crash is seen at once) while running the health checks;
on a crash or an unhealthy verdict it restarts the instance after the restart policy's
delay, or marks it failed. Every change is written to the instance's row through
``store.run`` so that the next server can adopt the tenants (``adoption.py``).

The proxy's methods (:meth:`Supervisor.target`, :meth:`~Supervisor.weighted_targets`,
:meth:`~Supervisor.connection`, ...) read memory only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

from tenement.config import Config, Service
from tenement.ids import NAME_RULE, InstanceRef, InvalidInstanceId, is_valid_name
from tenement.store import InstanceRecord, LogEntry
from tenement.supervisor import backoff, health
from tenement.supervisor.errors import DeployError, InstanceNotFound, UnknownService, WakeError
from tenement.supervisor.events import Events, LifecycleEvent
from tenement.supervisor.health import Health, HealthState
from tenement.supervisor.instance import (
    FAILED,
    RUNNING,
    STARTING,
    STOPPED,
    Instance,
    InstanceView,
    Run,
    Target,
)
from tenement.supervisor.logtail import LogSource, LogTailer, TailerStatistics
from tenement.supervisor.ports import PortAllocator, port_is_free
from tenement.supervisor.process import SpawnError, start_process
from tenement.supervisor.readiness import wait_accepting
from tenement.supervisor.spec import build_spec, log_paths, socket_path
from tenement.supervisor.storage import StorageInfo, quota_bytes, storage_info

log = logging.getLogger(__name__)

#: a health check that takes longer than this failed (the reference's 5 s)
HEALTH_CHECK_TIMEOUT = 5.0
#: how long a stop waits for proxied connections to finish (reference §5.17)
DRAIN_SECONDS = 5.0
DRAIN_POLL_SECONDS = 0.05
#: how often deploy asks an instance for its health
DEPLOY_POLL_SECONDS = 0.5
MAX_WEIGHT = 100
#: starts again on another port when the checked-free port was taken before the bind
PORT_RACE_RETRIES = 2


class _PortTaken(SpawnError):
    """The tenant exited before accepting, and someone else listens on its port now."""


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
        store: Any,
        *,
        environ: Mapping[str, str],
        nursery: trio.Nursery,
        tailer: LogTailer,
    ) -> None:
        self._config = config
        self._store = store
        self._environ = dict(environ)
        self._nursery = nursery
        self._tailer = tailer
        self._ports = PortAllocator()
        self._events = Events(store)
        self._instances: dict[str, Instance] = {}
        self._detached = False

    # ---- configuration and lookups --------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._config

    @property
    def data_dir(self) -> Path:
        return Path(self._config.settings.data_dir)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def detached(self) -> bool:
        return self._detached

    def service(self, name: str) -> Service | None:
        """The configured service ``name``, or None."""
        return self._config.services.get(name)

    def _service_or_raise(self, name: str) -> Service:
        svc = self.service(name)
        if svc is None:
            raise UnknownService(name)
        return svc

    def _instance_for(self, svc: Service, tenant: str) -> Instance:
        if not is_valid_name(tenant):
            raise InvalidInstanceId(
                f"Invalid instance ID '{svc.name}:{tenant}': '{tenant}' must be {NAME_RULE}"
            )
        iid = f"{svc.name}:{tenant}"
        inst = self._instances.get(iid)
        if inst is None:
            inst = Instance(svc.name, tenant, socket_path(svc, tenant))
            self._instances[iid] = inst
        return inst

    def _registered(self, iid: str) -> Instance:
        inst = self._instances.get(iid)
        if inst is None or inst.state == STOPPED:
            raise InstanceNotFound(iid)
        return inst

    def instance_dir(self, service: str, tenant: str) -> Path:
        return self.data_dir / service / tenant

    # ---- views ------------------------------------------------------------------------------

    def _view(self, inst: Instance) -> InstanceView:
        svc = self.service(inst.service)
        return inst.view(quota_bytes=quota_bytes(svc.storage_quota_mb if svc else None))

    def instances(self) -> list[InstanceView]:
        """Every instance that is running, starting or failed, by id."""
        return [
            self._view(inst)
            for iid, inst in sorted(self._instances.items())
            if inst.state != STOPPED
        ]

    def get(self, iid: str) -> InstanceView | None:
        """The instance ``iid`` unless it is stopped (or unknown)."""
        inst = self._instances.get(iid)
        return None if inst is None or inst.state == STOPPED else self._view(inst)

    def storage(self, iid: str) -> StorageInfo:
        """Disk usage of the instance's data dir, as of the last storage pass.

        Raises:
            InstanceNotFound: no such running or failed instance.
        """
        inst = self._registered(iid)
        svc = self.service(inst.service)
        quota = quota_bytes(svc.storage_quota_mb if svc else None)
        path = self.instance_dir(inst.service, inst.tenant)
        return storage_info(path, inst.storage_used_bytes, quota)

    def statistics(self) -> SupervisorStatistics:
        instances = self._instances.values()
        restarts = []
        for iid, count in sorted(self._events.restarts.items()):
            ref = InstanceRef.parse(iid)
            restarts.append((ref.service, ref.tenant, count))
        return SupervisorStatistics(
            instances_up=sum(1 for inst in instances if inst.running),
            instances_failed=sum(1 for inst in instances if inst.state == FAILED),
            events=tuple(sorted(self._events.counts.items())),
            instance_restarts=tuple(restarts),
            logs=self._tailer.statistics(),
        )

    # ---- the proxy's side: memory only ----------------------------------------------------

    def target(self, service: str, tenant: str) -> Target | None:
        """Where to send a request for ``tenant`` of ``service``; None unless it is routable.

        Touches the instance's last activity (the idle reaper reads it).
        """
        inst = self._instances.get(f"{service}:{tenant}")
        if inst is None or not inst.routable:
            return None
        inst.touch()
        return inst.target()

    def weighted_targets(self, service: str) -> list[Target]:
        """Every routable instance of ``service`` (weight 0 included), by id.

        The proxy picks among those with a weight above 0.
        """
        return [
            inst.target()
            for iid, inst in sorted(self._instances.items())
            if inst.service == service and inst.routable
        ]

    def may_wake(self, service: str, tenant: str) -> bool:
        """Whether a request for an instance that is not running may start it.

        True for an instance known from earlier (a row), one listed in ``[instances]``, or
        any valid id with ``settings.wake_any_id`` (the reference's behaviour); never for a
        failed instance or an unknown service.
        """
        if self.service(service) is None or not is_valid_name(tenant):
            return False
        inst = self._instances.get(f"{service}:{tenant}")
        if inst is not None:
            return inst.state != FAILED
        if tenant in self._config.instances.get(service, ()):
            return True
        return self._config.settings.wake_any_id

    @contextlib.contextmanager
    def connection(self, iid: str) -> Iterator[None]:
        """Count one proxied connection to ``iid`` for as long as the block runs.

        A stop waits (up to 5 s) for the count to reach 0, and the idle reaper skips an
        instance with connections.
        """
        inst = self._instances.get(iid)
        if inst is None:
            yield
            return
        inst.active_connections += 1
        inst.touch()
        try:
            yield
        finally:
            inst.active_connections -= 1
            inst.touch()

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

    async def _launch(self, inst: Instance, svc: Service) -> None:
        """Start a process for ``inst`` and wait for it to accept. The caller holds the lock.

        A tenant that exits at once because another program took its port between the
        check and its bind is started again on another port (twice at most).
        """
        for _ in range(PORT_RACE_RETRIES):
            try:
                await self._launch_once(inst, svc)
                return
            except _PortTaken as exc:
                log.warning("%s; starting it on another port", exc, extra={"INSTANCE": inst.id})
        await self._launch_once(inst, svc)

    async def _launch_once(self, inst: Instance, svc: Service) -> None:
        port = self._ports.allocate()
        try:
            await trio.to_thread.run_sync(self._prepare_dirs, inst, svc)
            spec = build_spec(
                svc,
                inst.tenant,
                data_dir=self.data_dir,
                port=port,
                environ=self._environ,
                log_dir=self.log_dir,
            )
            process = await start_process(spec)
        except BaseException as exc:
            self._ports.release(port)
            if isinstance(exc, Exception):
                await self._events.emit(
                    LifecycleEvent(
                        "spawn_failed", inst.service, inst.tenant, details=str(exc), success=False
                    )
                )
            raise
        run = Run(process, port)
        inst.run = run
        inst.port = port
        inst.socket = socket_path(svc, inst.tenant)
        inst.state = STARTING
        inst.health_state = HealthState()
        inst.started_at = time.time()
        inst.touch()
        self._watch_logs(inst)
        self._start_watcher(inst, run)
        await self._save(inst)
        await self._events.emit(
            LifecycleEvent("spawn", inst.service, inst.tenant, pid=run.pid, details=f"port {port}")
        )
        with trio.move_on_after(svc.startup_timeout):
            async with trio.open_nursery() as nursery:

                async def ready() -> None:
                    await wait_accepting(port, inst.socket)
                    run.ready = True
                    nursery.cancel_scope.cancel()

                async def exited() -> None:
                    await run.exited.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(ready)
                nursery.start_soon(exited)
        if run.exited.is_set():
            self._release(inst, run)
            inst.state = STOPPED
            await self._save(inst)
            self._tailer.kick()
            if not port_is_free(port):
                raise _PortTaken(f"{inst.id} exited at once: port {port} was taken meanwhile")
            raise SpawnError(
                f"{inst.id} exited with code {run.exit_code} before accepting connections; "
                f"see its output with `ten logs {inst.service} --id {inst.tenant}`"
            )
        inst.state = RUNNING
        inst.touch()  # a slow start does not count as idle time
        run.handed_over.set()
        await self._save(inst)
        if run.ready:
            self._events.record(LifecycleEvent("ready", inst.service, inst.tenant, pid=run.pid))
        else:
            self._events.record(
                LifecycleEvent(
                    "not_ready",
                    inst.service,
                    inst.tenant,
                    pid=run.pid,
                    details=f"not accepting on port {port} after {svc.startup_timeout:g} s",
                )
            )

    def _prepare_dirs(self, inst: Instance, svc: Service) -> None:
        self.instance_dir(inst.service, inst.tenant).mkdir(parents=True, exist_ok=True)
        Path(socket_path(svc, inst.tenant)).parent.mkdir(parents=True, exist_ok=True)
        for path in log_paths(self.log_dir, inst.service, inst.tenant):
            path.parent.mkdir(parents=True, exist_ok=True)

    def _watch_logs(self, inst: Instance) -> None:
        stdout, stderr = log_paths(self.log_dir, inst.service, inst.tenant)
        self._tailer.watch(LogSource(str(stdout), "stdout", inst.service, inst.tenant))
        self._tailer.watch(LogSource(str(stderr), "stderr", inst.service, inst.tenant))

    def _release(self, inst: Instance, run: Run) -> None:
        """Forget a process that is gone: its port goes back to the pool."""
        if inst.run is run:
            inst.run = None
        self._ports.release(run.port)

    # ---- watching ---------------------------------------------------------------------------

    def _start_watcher(self, inst: Instance, run: Run) -> None:
        scope = trio.CancelScope()
        inst.watcher = scope
        self._nursery.start_soon(self._watch, inst, run, scope)

    async def _watch(self, inst: Instance, run: Run, scope: trio.CancelScope) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                run.trouble_scope = nursery.cancel_scope
                nursery.start_soon(self._health_loop, inst, run)
                code = await run.process.wait_exited()
                run.exit_code = code
                run.trouble = "exit"
                run.exited.set()
                nursery.cancel_scope.cancel()
            if run.trouble == "exit":
                self._tailer.kick()
                self._events.record(
                    LifecycleEvent("exit", inst.service, inst.tenant, pid=run.pid, exit_code=code)
                )
            if not run.handed_over.is_set():
                return  # still starting: the launcher reports it
            await self._recover(inst, run)

    async def _health_loop(self, inst: Instance, run: Run) -> None:
        await run.handed_over.wait()
        while True:
            if await self._check(inst, run) is Health.UNHEALTHY:
                return
            await trio.sleep(self._config.settings.health_check_interval)

    async def _check(self, inst: Instance, run: Run) -> Health:
        """One health check of ``run``; an unhealthy verdict hands it to the watcher."""
        svc = self.service(inst.service)
        ok = False
        with trio.move_on_after(HEALTH_CHECK_TIMEOUT):
            ok = await health.check(run.port, inst.socket, svc.health if svc else None)
        if inst.run is not run or inst.state == FAILED:
            return inst.health
        before = inst.health
        inst.health_state = health.after_check(inst.health_state, ok)
        if inst.health is not before:
            self._events.record(
                LifecycleEvent(
                    "health", inst.service, inst.tenant, pid=run.pid, details=str(inst.health)
                )
            )
            await self._save(inst)
        if inst.health is Health.UNHEALTHY and run.trouble is None:
            run.trouble = "unhealthy"
            if run.trouble_scope is not None:
                run.trouble_scope.cancel()
        return inst.health

    async def _recover(self, inst: Instance, run: Run) -> None:
        """Restart after a crash or an unhealthy verdict, with backoff; or mark failed."""
        policy = backoff.RestartPolicy.from_settings(self._config.settings)
        kind = "crash_restart" if run.trouble == "exit" else "health_restart"
        if run.trouble != "exit":
            details = "health check failed"
        elif run.exit_code is None:  # adopted: only its real parent learns the code
            details = "exited"
        else:
            details = f"exited with code {run.exit_code}"
        async with inst.lock:
            if inst.run is run:
                if not run.exited.is_set():
                    await self._terminate(inst, run)
                self._release(inst, run)
        while True:
            decision = backoff.decide(policy, inst.restart_times, now=time.time())
            if decision.give_up:
                inst.state = FAILED
                inst.health_state = HealthState(
                    Health.FAILED, inst.health_state.consecutive_failures
                )
                await self._save(inst)
                await self._events.emit(
                    LifecycleEvent(
                        "failed",
                        inst.service,
                        inst.tenant,
                        details=f"{details}; {len(decision.history)} restarts within "
                        f"{policy.window_seconds:g} s (max_restarts = {policy.max_restarts})",
                        success=False,
                    )
                )
                return
            inst.restart_times = decision.history
            inst.restarts_total += 1
            inst.state = STARTING
            inst.health_state = HealthState()
            await self._save(inst)
            await self._events.emit(
                LifecycleEvent(
                    kind,
                    inst.service,
                    inst.tenant,
                    details=f"{details}; restarting in {decision.delay_seconds:g} s",
                )
            )
            await trio.sleep(decision.delay_seconds)
            async with inst.lock:
                svc = self.service(inst.service)
                if inst.run is not None or inst.state != STARTING:
                    return  # started or stopped by someone else meanwhile
                if svc is None:
                    inst.state = STOPPED
                    await self._save(inst)
                    return
                try:
                    await self._launch(inst, svc)
                    return
                except SpawnError as exc:
                    details = str(exc)
                    kind = "crash_restart"

    async def _terminate(self, inst: Instance, run: Run) -> None:
        svc = self.service(inst.service)
        grace = svc.stop_timeout if svc else 5.0
        killed = await run.process.terminate(grace)
        if killed:
            self._events.record(
                LifecycleEvent(
                    "kill",
                    inst.service,
                    inst.tenant,
                    pid=run.pid,
                    details=f"still running {grace:g} s after SIGTERM; sent SIGKILL",
                )
            )

    # ---- stop and restart -------------------------------------------------------------------

    async def stop(self, iid: str) -> None:
        """Stop an instance: drain connections (up to 5 s), TERM its group, grace, KILL.

        Releases its port, and deletes its data dir when ``storage_persist = false``. Its
        weight and restart history are kept for its next start.

        Raises:
            InstanceNotFound: ``Instance not found: p:i``.
        """
        await self._stop(self._registered(iid), kind="stop")

    async def _stop(
        self,
        inst: Instance,
        *,
        kind: str,
        drain: bool = True,
        still_wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Stop ``inst`` (see :meth:`stop`); ``still_wanted`` is re-checked under the lock."""
        if drain and inst.active_connections:
            with trio.move_on_after(DRAIN_SECONDS):
                while inst.active_connections:
                    await trio.sleep(DRAIN_POLL_SECONDS)
            if inst.active_connections:
                log.warning(
                    "stopping %s with %d active connections after %g s",
                    inst.id,
                    inst.active_connections,
                    DRAIN_SECONDS,
                    extra={"INSTANCE": inst.id},
                )
        async with inst.lock:
            if still_wanted is not None and not still_wanted():
                return
            if inst.watcher is not None:
                inst.watcher.cancel()
                inst.watcher = None
            run = inst.run
            pid = None if run is None else run.pid
            if run is not None:
                await self._terminate(inst, run)
                self._release(inst, run)
            inst.state = STOPPED
            inst.health_state = HealthState()
            svc = self.service(inst.service)
            await trio.to_thread.run_sync(self._clean_files, inst, svc)
            await self._save(inst)
        self._tailer.kick()
        await self._events.emit(LifecycleEvent(kind, inst.service, inst.tenant, pid=pid))

    def _clean_files(self, inst: Instance, svc: Service | None) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(inst.socket)
        if svc is not None and not svc.storage_persist:
            shutil.rmtree(self.instance_dir(inst.service, inst.tenant), ignore_errors=True)

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

    async def check_health(self, iid: str) -> Health:
        """Check the instance now; ``unknown`` when it is not running, ``failed`` if failed.

        Raises:
            InstanceNotFound: no such running or failed instance.
        """
        inst = self._registered(iid)
        if inst.state == FAILED:
            return Health.FAILED
        run = inst.run
        if run is None or not run.handed_over.is_set():
            return Health.UNKNOWN
        return await self._check(inst, run)

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
        old = self._registered(f"{service}:{from_version}")
        new = self._registered(f"{service}:{to_version}")
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
        except SpawnError as exc:
            raise WakeError(iid, f"Instance {iid} failed to wake: {exc}") from exc
        run = inst.run
        if run is None or not run.ready:
            raise WakeError(
                iid, f"Instance {iid} failed to start within {svc.startup_timeout:g} seconds"
            )
        if launched:
            await self._events.emit(LifecycleEvent("wake", service, tenant, pid=run.pid))
        inst.touch()
        return inst.target()

    # ---- logs -------------------------------------------------------------------------------

    async def query_logs(
        self,
        *,
        process: str | None = None,
        instance_id: str | None = None,
        level: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """Indexed log lines (see ``Store.query_logs``); what the tailer has seen so far."""
        store = self._store

        def query() -> list[LogEntry]:
            return store.query_logs(
                process=process, instance_id=instance_id, level=level, search=search, limit=limit
            )

        return await store.run(query)

    def subscribe_logs(self) -> trio.MemoryReceiveChannel[LogEntry]:
        """A live feed of new log lines (bounded: a slow reader misses lines)."""
        return self._tailer.subscribe()

    # ---- persistence ------------------------------------------------------------------------

    def _record(self, inst: Instance) -> InstanceRecord:
        run = inst.run
        return InstanceRecord(
            instance_id=inst.id,
            service=inst.service,
            tenant=inst.tenant,
            pid=None if run is None else run.pid,
            start_ticks=None if run is None else run.process.start_ticks,
            pgid=None if run is None else run.process.pgid,
            port=None if run is None else run.port,
            socket=inst.socket,
            state=inst.state,
            updated_at=time.time(),
            weight=inst.weight,
            health=str(inst.health),
            restart_times=inst.restart_times,
            restarts_total=inst.restarts_total,
            started_at=inst.started_at,
        )

    async def _save(self, inst: Instance) -> None:
        record = self._record(inst)
        await self._store.run(self._store.save_instance, record)

    # ---- lifecycle (open_supervisor) --------------------------------------------------------

    def detach(self) -> None:
        """On exit, leave every tenant running (state flushed) for the next server to adopt."""
        self._detached = True

    async def reload(self, config: Config) -> None:
        """Use a new config: new services can start; removed services' instances stop.

        Running instances of a changed service keep running; the change applies at their
        next start.
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

    async def _spawn_listed(self, service: str, tenant: str) -> None:
        try:
            await self.spawn(service, tenant)
        except SpawnError as exc:
            log.error("could not start [instances] %s:%s: %s", service, tenant, exc)

    async def _shutdown(self) -> None:
        """Stop every instance, or, detached, leave them running with their rows saved."""
        live = [inst for inst in self._instances.values() if inst.state != STOPPED]
        if self._detached:
            for inst in live:
                if inst.watcher is not None:
                    inst.watcher.cancel()
                await self._save(inst)
            log.info("detached: %d instances left running for the next server", len(live))
        else:
            async with trio.open_nursery() as nursery:
                for inst in live:
                    nursery.start_soon(lambda i=inst: self._stop(i, kind="stop", drain=False))
        await self._tailer.poll_once()
