"""One instance's life: launch, watch, recover from a crash with backoff, stop.

What happens when a tenant crashes is here. The supervisor keeps one :class:`Runner` per
instance (as circus's arbiter keeps its watchers) and lends it its config, ports, store,
events and log tailer (``shared.py``). One watcher task per running instance lives in the
supervisor's nursery: it waits for the process to exit (through its pidfd, so a crash is
seen at once) while running the health checks; on a crash or an unhealthy verdict
(:meth:`Runner._recover`) it restarts the instance after the restart policy's delay
(``backoff.py``), or marks it failed. Every change is written to the instance's row
so that the next server can adopt the tenants (``adoption.py``).

Backoff is a state, not a sleep: the delay is an ``Instance.pending_restart`` that one
task carries out, and that requests wait for instead of starting the instance themselves
(``Supervisor.wake``). A stop or an operator's start calls it off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import trio

from tenement.config import Service
from tenement.errors import TenementError
from tenement.store import passage_dir, private_dir
from tenement.supervisor import backoff, health, identity
from tenement.supervisor.errors import InstanceFailed, UnknownService
from tenement.supervisor.events import LifecycleEvent
from tenement.supervisor.health import Health, HealthState
from tenement.supervisor.instance import (
    FAILED,
    RUNNING,
    STARTING,
    STOPPED,
    Instance,
    PendingRestart,
    Run,
)
from tenement.supervisor.logtail import LogSource
from tenement.supervisor.ports import port_is_free
from tenement.supervisor.process import SpawnError, start_process
from tenement.supervisor.readiness import wait_accepting
from tenement.supervisor.shared import Shared
from tenement.supervisor.spec import TenantUser, build_spec, log_paths, socket_path
from tenement.supervisor.storage import dir_size, quota_bytes, quota_level

log = logging.getLogger(__name__)

#: a health check that takes longer than this failed (the reference's 5 s)
HEALTH_CHECK_TIMEOUT = 5.0
#: how long a stop waits for proxied connections to finish (reference §5.17)
DRAIN_SECONDS = 5.0
DRAIN_POLL_SECONDS = 0.05
#: starts again on another port when the checked-free port was taken before the bind
PORT_RACE_RETRIES = 2


class _PortTaken(SpawnError):
    """The tenant exited before accepting, and someone else listens on its port now."""


class Runner:
    """One instance's life: its process launched, watched, restarted and stopped.

    The supervisor makes one per instance and keeps it; every change to the instance goes
    through it, under the instance's lock, and is saved to its row.
    """

    def __init__(self, inst: Instance, shared: Shared) -> None:
        self.inst = inst
        self._shared = shared

    @property
    def watching(self) -> bool:
        """Whether a task watches (or restarts) the instance."""
        return self.inst.watcher is not None

    async def save(self) -> None:
        """Write the instance's row."""
        await self._shared.save(self.inst.record())

    # ---- start ------------------------------------------------------------------------------

    async def start(self, svc: Service, *, revive: bool) -> bool:
        """Start the instance unless it runs; returns whether this call started it.

        ``revive`` (an operator's spawn) also starts a failed instance, with a fresh
        restart budget, and one in backoff at once. A request's wake (``revive=False``)
        starts neither: it raises :class:`InstanceFailed`, or returns without starting an
        instance in backoff (the caller waits for its restart); a wake whose start
        fails puts the instance in backoff.
        """
        inst = self.inst
        async with inst.lock:
            if inst.run is not None and inst.state in (STARTING, RUNNING):
                return False
            if inst.pending_restart is not None:
                if not revive:
                    return False
                self._call_off_restart()
            if inst.state == FAILED:
                if not revive:
                    raise InstanceFailed(inst.id)
                inst.restart_times = ()
            try:
                await self._launch(svc)
            except TenementError as exc:
                if not revive:
                    self._wake_failed(str(exc))
                raise
            return True

    async def _launch(self, svc: Service) -> None:
        """Start a process for the instance and wait for it to accept. The caller holds
        the lock.

        A tenant that exits at once because another program took its port between the
        check and its bind is started again on a port picked elsewhere in the range
        (twice at most).
        """
        inst = self.inst
        for _ in range(PORT_RACE_RETRIES):
            try:
                await self._launch_once(svc)
                return
            except _PortTaken as exc:  # an event: counted, as the start it costs is
                self._shared.ports.scatter()
                self._shared.events.record(
                    LifecycleEvent(
                        "port_taken",
                        inst.service,
                        inst.tenant,
                        details=f"{exc}; starting it on another port",
                    )
                )
        await self._launch_once(svc)

    async def _launch_once(self, svc: Service) -> None:
        inst, shared = self.inst, self._shared
        port = shared.ports.allocate()
        try:
            user = await shared.tenant_user(svc)
            await trio.to_thread.run_sync(self._prepare_dirs, svc, user)
            spec = build_spec(
                svc,
                inst.tenant,
                data_dir=shared.data_dir,
                port=port,
                environ=shared.environ,
                log_dir=shared.log_dir,
                user=user,
            )
            process = await start_process(spec)
        except BaseException as exc:
            shared.ports.release(port)
            if isinstance(exc, Exception):
                await shared.events.emit(
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
        self.watch(run)
        await self.save()
        await shared.events.emit(
            LifecycleEvent("spawn", inst.service, inst.tenant, pid=run.pid, details=f"port {port}")
        )
        with trio.move_on_after(svc.startup_timeout):
            async with trio.open_nursery() as nursery:

                async def ready() -> None:
                    await wait_accepting(port, inst.socket, owner=run.process.pgid)
                    run.ready = True
                    nursery.cancel_scope.cancel()

                async def exited() -> None:
                    await run.exited.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(ready)
                nursery.start_soon(exited)
        if run.exited.is_set():
            self._release(run)
            inst.state = STOPPED
            await self.save()
            shared.tailer.kick()
            if not port_is_free(port):
                raise _PortTaken(f"{inst.id} exited at once: port {port} was taken meanwhile")
            raise SpawnError(
                f"{inst.id} exited with code {run.exit_code} before accepting connections; "
                f"see its output with `ten logs {inst.service} --id {inst.tenant}`"
            )
        inst.state = RUNNING
        inst.touch()  # a slow start does not count as idle time
        run.handed_over.set()
        await self.save()
        if run.ready:
            shared.events.record(LifecycleEvent("ready", inst.service, inst.tenant, pid=run.pid))
        else:
            shared.events.record(
                LifecycleEvent(
                    "not_ready",
                    inst.service,
                    inst.tenant,
                    pid=run.pid,
                    details=f"not accepting on port {port} after {svc.startup_timeout:g} s",
                )
            )

    def _prepare_dirs(self, svc: Service, user: TenantUser | None = None) -> None:
        """Make the instance's directories: with a ``user``, its own directory is that
        user's (0700) and every directory above it only passable; the log directories are
        the server's alone (it opens the log files for the tenant)."""
        inst, shared = self.inst, self._shared
        instance_dir = shared.instance_dir(inst.service, inst.tenant)
        if user is None:
            instance_dir.mkdir(parents=True, exist_ok=True)
        else:
            passage_dir(instance_dir.parent)
            passage_dir(shared.data_dir)
            identity.claim_dir(instance_dir, user)
        sockets = Path(socket_path(svc, inst.tenant)).parent
        sockets.mkdir(parents=True, exist_ok=True)
        if user is not None:
            identity.share_socket_dir(sockets)
        private_dir(shared.log_dir)
        for path in log_paths(shared.log_dir, inst.service, inst.tenant):
            private_dir(path.parent)

    def _release(self, run: Run) -> None:
        """Forget a process that is gone: its port goes back to the pool."""
        inst = self.inst
        if inst.run is run:
            inst.run = None
            inst.port = None
        self._shared.ports.release(run.port)

    # ---- watching ---------------------------------------------------------------------------

    def watch(self, run: Run, first_check_delay: float = 0.0) -> None:
        """Tail the instance's log files and watch ``run`` for its exit; health checks
        begin ``first_check_delay`` s after its hand-over (adoption spreads the first
        checks of many tenants over an interval)."""
        inst, shared = self.inst, self._shared
        stdout, stderr = log_paths(shared.log_dir, inst.service, inst.tenant)
        shared.tailer.watch(LogSource(str(stdout), "stdout", inst.service, inst.tenant))
        shared.tailer.watch(LogSource(str(stderr), "stderr", inst.service, inst.tenant))
        scope = trio.CancelScope()
        inst.watcher = scope
        shared.nursery.start_soon(self._watch, run, scope, first_check_delay)

    async def _watch(self, run: Run, scope: trio.CancelScope, first_check_delay: float) -> None:
        inst = self.inst
        with scope:
            async with trio.open_nursery() as nursery:
                run.trouble_scope = nursery.cancel_scope
                nursery.start_soon(self._health_loop, run, first_check_delay)
                code = await run.process.wait_exited()
                run.exit_code = code
                run.trouble = "exit"
                run.exited.set()
                nursery.cancel_scope.cancel()
            if run.trouble == "exit":
                self._shared.tailer.kick()
                self._shared.events.record(
                    LifecycleEvent("exit", inst.service, inst.tenant, pid=run.pid, exit_code=code)
                )
            if not run.handed_over.is_set():
                return  # still starting: the launcher reports it
            await self._recover(run)

    async def _health_loop(self, run: Run, first_check_delay: float) -> None:
        await run.handed_over.wait()
        await trio.sleep(first_check_delay)
        while True:
            if await self._check(run) is Health.UNHEALTHY:
                return
            await trio.sleep(self._shared.config.settings.health_check_interval)

    async def _check(self, run: Run) -> Health:
        """One health check of ``run``; an unhealthy verdict hands it to the watcher."""
        inst = self.inst
        svc = self._shared.service(inst.service)
        ok = False
        with trio.move_on_after(HEALTH_CHECK_TIMEOUT):
            ok = await health.check(run.port, inst.socket, svc.health if svc else None)
        if inst.run is not run or inst.state == FAILED:
            return inst.health
        before = inst.health
        inst.health_state = health.after_check(inst.health_state, ok)
        if inst.health is not before:
            self._shared.events.record(
                LifecycleEvent(
                    "health", inst.service, inst.tenant, pid=run.pid, details=str(inst.health)
                )
            )
            await self.save()
        if inst.health is Health.UNHEALTHY and run.trouble is None:
            run.trouble = "unhealthy"
            if run.trouble_scope is not None:
                run.trouble_scope.cancel()
        return inst.health

    async def check_health(self) -> Health:
        """Check the instance now; ``unknown`` when it is not running, ``failed`` if failed."""
        inst = self.inst
        if inst.state == FAILED:
            return Health.FAILED
        run = inst.run
        if run is None or not run.handed_over.is_set():
            return Health.UNKNOWN
        return await self._check(run)

    # ---- a crash: recovery with backoff -----------------------------------------------------

    async def _recover(self, run: Run) -> None:
        """Restart after a crash or an unhealthy verdict, with backoff; or mark failed."""
        inst = self.inst
        kind = "crash_restart" if run.trouble == "exit" else "health_restart"
        if run.trouble != "exit":
            details = "health check failed"
        elif run.exit_code is None:  # adopted: only its real parent learns the code
            details = "exited"
        else:
            details = f"exited with code {run.exit_code}"
        async with inst.lock:
            if inst.run is not run:
                return  # stopped or started again by someone else meanwhile
            if not run.exited.is_set():
                await self._terminate(run)
            self._release(run)
            # scheduled before the lock is let go: a request never finds the instance
            # without a process and without a scheduled restart, which it would start
            self._start_restarts(self._schedule_restart(), kind, details)

    def revive(self) -> None:
        """Restart, under the restart policy, an instance that died while no server watched."""
        self.inst.state = STARTING
        pending = self._schedule_restart()
        self._start_restarts(pending, "crash_restart", "exited while no server watched")

    def _wake_failed(self, details: str) -> None:
        """A wake's start failed: count it as a restart and put the instance in backoff.

        Called under the instance's lock, before it is let go (see :meth:`_recover`).
        """
        inst, shared = self.inst, self._shared
        policy = backoff.RestartPolicy.from_settings(shared.config.settings)
        inst.restart_times = backoff.count_failed_start(policy, inst.restart_times, now=time.time())
        inst.restarts_total += 1
        event = LifecycleEvent(
            "wake_failed", inst.service, inst.tenant, details=details, success=False
        )
        shared.events.record(event)
        shared.nursery.start_soon(shared.events.write_audit, event)
        self._start_restarts(self._schedule_restart(), "crash_restart", details)

    def not_ready_wake(self, svc: Service) -> None:
        """A woken process that did not accept within ``startup_timeout`` counts as a
        failed start; it is left running for the health checks to judge."""
        inst, shared = self.inst, self._shared
        policy = backoff.RestartPolicy.from_settings(shared.config.settings)
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
        shared.events.record(event)
        shared.nursery.start_soon(shared.events.write_audit, event)

    def _schedule_restart(self) -> PendingRestart | None:
        """Ask the restart policy: put the instance in backoff, or mark it failed (None).

        Synchronous, so that the caller can do it under the instance's lock.
        """
        inst = self.inst
        policy = backoff.RestartPolicy.from_settings(self._shared.config.settings)
        now = time.time()
        decision = backoff.decide(policy, inst.restart_times, now=now)
        if decision.give_up:
            inst.state = FAILED
            inst.health_state = HealthState(Health.FAILED, inst.health_state.consecutive_failures)
            inst.pending_restart = None
            return None
        delay = decision.delay_seconds
        inst.restart_times = decision.history
        inst.restarts_total += 1
        inst.state = STARTING
        inst.health_state = HealthState()
        inst.pending_restart = PendingRestart(
            at=trio.current_time() + delay, at_epoch=now + delay, delay_seconds=delay
        )
        return inst.pending_restart

    def _start_restarts(self, pending: PendingRestart | None, kind: str, details: str) -> None:
        """Carry out ``pending`` (and the restarts after it) in a task of the supervisor's
        nursery; its scope is the instance's watcher, so a stop calls it off."""
        scope = trio.CancelScope()
        self.inst.watcher = scope
        self._shared.nursery.start_soon(self._restarts, scope, pending, kind, details)

    async def _restarts(
        self,
        scope: trio.CancelScope,
        pending: PendingRestart | None,
        kind: str,
        details: str,
    ) -> None:
        """Start the instance again when ``pending`` is due, until it runs; or mark it failed."""
        inst, shared = self.inst, self._shared
        with scope:
            try:
                while pending is not None:
                    await self.save()
                    await shared.events.emit(
                        LifecycleEvent(
                            kind,
                            inst.service,
                            inst.tenant,
                            details=f"{details}; restarting in {pending.delay_seconds:g} s",
                        )
                    )
                    failure = await self._attempt(scope, pending)
                    _settle(inst, pending)
                    if failure is None:
                        return
                    kind, details = "crash_restart", failure
                    pending = inst.pending_restart
            finally:
                if pending is not None:  # called off midway (a stop cancelled the scope)
                    _settle(inst, pending)
            if inst.state != FAILED:
                return
            await self.save()
            policy = backoff.RestartPolicy.from_settings(shared.config.settings)
            await shared.events.emit(
                LifecycleEvent(
                    "failed",
                    inst.service,
                    inst.tenant,
                    details=f"{details}; {len(inst.restart_times)} restarts within "
                    f"{policy.window_seconds:g} s (max_restarts = {policy.max_restarts})",
                    success=False,
                )
            )

    async def _attempt(self, scope: trio.CancelScope, pending: PendingRestart) -> str | None:
        """Wait until ``pending`` is due, then start the instance.

        Returns:
            None when it started, or when the restart was called off; else why the start
            failed: the next restart (or the failed state) is then already scheduled, so
            that a request woken by this attempt finds it rather than an instance it
            could start itself.
        """
        inst = self.inst
        await trio.sleep_until(pending.at)
        async with inst.lock:
            if inst.pending_restart is not pending:
                return None  # called off: stopped, or started by an operator
            svc = self._shared.service(inst.service)
            if svc is None:
                inst.pending_restart = None
                inst.state = STOPPED
                await self.save()
                return None
            try:
                await self._launch(svc)
            except TenementError as exc:  # SpawnError, PortsExhausted: counts as a crash
                self._schedule_restart()
                inst.watcher = scope  # the failed launch had put its own watcher there
                return str(exc)
            return None

    def _call_off_restart(self) -> None:
        """Forget the scheduled restart (a stop, or an operator's start, takes over);
        requests waiting for it look again. The caller holds the lock."""
        inst = self.inst
        pending = inst.pending_restart
        if pending is not None:
            if inst.watcher is not None:
                inst.watcher.cancel()
                inst.watcher = None
            _settle(inst, pending)

    # ---- an operator's restart --------------------------------------------------------------

    async def restart(self) -> None:
        """Stop, wait the restart policy's delay, start again. Brings a failed instance back.

        During the delay the instance is in backoff, as after a crash: requests wait for
        it (or get 503 with ``Retry-After``) and start nothing. Returns early, without
        starting it, when a stop or a spawn took over meanwhile.

        Raises:
            UnknownService: its service was removed meanwhile.
        """
        inst = self.inst
        policy = backoff.RestartPolicy.from_settings(self._shared.config.settings)
        if inst.state == FAILED:
            inst.restart_times = ()
        now = time.time()
        decision = backoff.decide(policy, inst.restart_times, now=now, automatic=False)
        await self.stop(kind="restart")
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
                    return
                await self._start_again()
                return
            finally:
                if inst.pending_restart is pending:  # cancelled before the spawn
                    inst.pending_restart = None
                    if inst.run is None and inst.state == STARTING:
                        inst.state = STOPPED
                pending.attempted.set()
        await self._start_again()

    async def _start_again(self) -> None:
        svc = self._shared.service(self.inst.service)
        if svc is None:
            raise UnknownService(self.inst.service)
        await self.start(svc, revive=True)

    # ---- stop -------------------------------------------------------------------------------

    async def _terminate(self, run: Run) -> None:
        inst = self.inst
        svc = self._shared.service(inst.service)
        grace = svc.stop_timeout if svc else 5.0
        killed = await run.process.terminate(grace)
        if killed:
            self._shared.events.record(
                LifecycleEvent(
                    "kill",
                    inst.service,
                    inst.tenant,
                    pid=run.pid,
                    details=f"still running {grace:g} s after SIGTERM; sent SIGKILL",
                )
            )

    async def stop(
        self,
        *,
        kind: str = "stop",
        drain: bool = True,
        still_wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Stop the instance: drain connections (up to 5 s), TERM its group, grace, KILL.

        Releases its port, and deletes its data dir when ``storage_persist = false``. Its
        weight and restart history are kept for its next start. ``kind`` is the event
        recorded; ``still_wanted`` is re-checked under the lock (the idle reaper's).
        """
        inst, shared = self.inst, self._shared
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
            self._call_off_restart()
            if inst.watcher is not None:
                inst.watcher.cancel()
                inst.watcher = None
            run = inst.run
            pid = None if run is None else run.pid
            if run is not None:
                await self._terminate(run)
                self._release(run)
            inst.state = STOPPED
            inst.health_state = HealthState()
            svc = shared.service(inst.service)
            await trio.to_thread.run_sync(self._clean_files, svc)
            await self.save()
        shared.tailer.kick()
        await shared.events.emit(LifecycleEvent(kind, inst.service, inst.tenant, pid=pid))

    def _clean_files(self, svc: Service | None) -> None:
        inst = self.inst
        with contextlib.suppress(FileNotFoundError):
            os.unlink(inst.socket)
        if svc is not None and not svc.storage_persist:
            shutil.rmtree(self._shared.instance_dir(inst.service, inst.tenant), ignore_errors=True)

    def let_go(self) -> None:
        """Stop watching the instance and leave its process running (a detached exit)."""
        if self.inst.watcher is not None:
            self.inst.watcher.cancel()

    # ---- disk usage -------------------------------------------------------------------------

    async def measure_storage(self) -> None:
        """Refresh the instance's disk usage; log when its soft quota is near or past."""
        inst, shared = self.inst, self._shared
        path = shared.instance_dir(inst.service, inst.tenant)
        used = await trio.to_thread.run_sync(dir_size, path)
        inst.storage_used_bytes = used
        svc = shared.service(inst.service)
        quota = quota_bytes(svc.storage_quota_mb if svc else None)
        level = quota_level(used, quota)
        if level is not None:
            shared.events.record(
                LifecycleEvent(
                    "storage",
                    inst.service,
                    inst.tenant,
                    details=f"storage usage {level}: {used} of {quota} bytes",
                )
            )


def _settle(inst: Instance, pending: PendingRestart) -> None:
    """``pending`` was attempted or called off: the instance leaves backoff (unless a
    newer restart is scheduled) and the requests waiting for it look again."""
    if inst.pending_restart is pending:
        inst.pending_restart = None
    pending.attempted.set()
