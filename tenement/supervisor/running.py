"""Starting, watching, restarting and stopping one instance's process.

One watcher task per instance lives in the supervisor's nursery: it waits for the process
to exit (through its pidfd, so a crash is seen at once) while running the health checks;
on a crash or an unhealthy verdict it restarts the instance after the restart policy's
delay (``backoff.py``), or marks it failed. Every change is written to the instance's row
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

import trio

from tenement.config import Service
from tenement.errors import TenementError
from tenement.supervisor import backoff, health
from tenement.supervisor._base import SupervisorBase
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
from tenement.supervisor.ports import port_is_free
from tenement.supervisor.process import SpawnError, start_process
from tenement.supervisor.readiness import wait_accepting
from tenement.supervisor.spec import build_spec, socket_path

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


class Running(SupervisorBase):
    """Processes: launch and readiness, the watcher, recovery, stop."""

    async def _launch(self, inst: Instance, svc: Service) -> None:
        """Start a process for ``inst`` and wait for it to accept. The caller holds the lock.

        A tenant that exits at once because another program took its port between the
        check and its bind is started again on another port (twice at most).
        """
        for _ in range(PORT_RACE_RETRIES):
            try:
                await self._launch_once(inst, svc)
                return
            except _PortTaken as exc:  # an event: counted, as the start it costs is
                self._events.record(
                    LifecycleEvent(
                        "port_taken",
                        inst.service,
                        inst.tenant,
                        details=f"{exc}; starting it on another port",
                    )
                )
        await self._launch_once(inst, svc)

    async def _launch_once(self, inst: Instance, svc: Service) -> None:
        port = self._ports.allocate()
        try:
            user = await self._tenant_user(svc)
            await trio.to_thread.run_sync(self._prepare_dirs, inst, svc, user)
            spec = build_spec(
                svc,
                inst.tenant,
                data_dir=self.data_dir,
                port=port,
                environ=self._environ,
                log_dir=self.log_dir,
                user=user,
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
                    await wait_accepting(port, inst.socket, owner=run.process.pgid)
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

    # ---- watching ---------------------------------------------------------------------------

    def _start_watcher(self, inst: Instance, run: Run, first_check_delay: float = 0.0) -> None:
        """Watch ``run`` for its exit; health checks begin ``first_check_delay`` s after its
        hand-over (adoption spreads the first checks of many tenants over an interval)."""
        scope = trio.CancelScope()
        inst.watcher = scope
        self._nursery.start_soon(self._watch, inst, run, scope, first_check_delay)

    async def _watch(
        self, inst: Instance, run: Run, scope: trio.CancelScope, first_check_delay: float = 0.0
    ) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                run.trouble_scope = nursery.cancel_scope
                nursery.start_soon(self._health_loop, inst, run, first_check_delay)
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

    async def _health_loop(self, inst: Instance, run: Run, first_check_delay: float) -> None:
        await run.handed_over.wait()
        await trio.sleep(first_check_delay)
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
                await self._terminate(inst, run)
            self._release(inst, run)
            # scheduled before the lock is let go: a request never finds the instance
            # without a process and without a scheduled restart, which it would start
            self._start_restarts(inst, self._schedule_restart(inst), kind, details)

    def revive(self, inst: Instance) -> None:
        """Restart, under the restart policy, an instance that died while no server watched."""
        pending = self._schedule_restart(inst)
        self._start_restarts(inst, pending, "crash_restart", "exited while no server watched")

    def _wake_failed(self, inst: Instance, details: str) -> None:
        """A wake's start failed: count it as a restart and put the instance in backoff.

        Called under the instance's lock, before it is let go (see :meth:`_recover`).
        """
        policy = backoff.RestartPolicy.from_settings(self._config.settings)
        inst.restart_times = backoff.count_failed_start(policy, inst.restart_times, now=time.time())
        inst.restarts_total += 1
        event = LifecycleEvent(
            "wake_failed", inst.service, inst.tenant, details=details, success=False
        )
        self._events.record(event)
        self._nursery.start_soon(self._events.write_audit, event)
        self._start_restarts(inst, self._schedule_restart(inst), "crash_restart", details)

    def _schedule_restart(self, inst: Instance) -> PendingRestart | None:
        """Ask the restart policy: put ``inst`` in backoff, or mark it failed (None).

        Synchronous, so that the caller can do it under the instance's lock.
        """
        policy = backoff.RestartPolicy.from_settings(self._config.settings)
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

    def _start_restarts(
        self, inst: Instance, pending: PendingRestart | None, kind: str, details: str
    ) -> None:
        """Carry out ``pending`` (and the restarts after it) in a task of the supervisor's
        nursery; its scope is the instance's watcher, so a stop calls it off."""
        scope = trio.CancelScope()
        inst.watcher = scope
        self._nursery.start_soon(self._restarts, inst, scope, pending, kind, details)

    async def _restarts(
        self,
        inst: Instance,
        scope: trio.CancelScope,
        pending: PendingRestart | None,
        kind: str,
        details: str,
    ) -> None:
        """Start ``inst`` again when ``pending`` is due, until it runs; or mark it failed."""
        with scope:
            try:
                while pending is not None:
                    await self._save(inst)
                    await self._events.emit(
                        LifecycleEvent(
                            kind,
                            inst.service,
                            inst.tenant,
                            details=f"{details}; restarting in {pending.delay_seconds:g} s",
                        )
                    )
                    failure = await self._attempt(inst, scope, pending)
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
            await self._save(inst)
            policy = backoff.RestartPolicy.from_settings(self._config.settings)
            await self._events.emit(
                LifecycleEvent(
                    "failed",
                    inst.service,
                    inst.tenant,
                    details=f"{details}; {len(inst.restart_times)} restarts within "
                    f"{policy.window_seconds:g} s (max_restarts = {policy.max_restarts})",
                    success=False,
                )
            )

    async def _attempt(
        self, inst: Instance, scope: trio.CancelScope, pending: PendingRestart
    ) -> str | None:
        """Wait until ``pending`` is due, then start ``inst``.

        Returns:
            None when it started, or when the restart was called off; else why the start
            failed: the next restart (or the failed state) is then already scheduled, so
            that a request woken by this attempt finds it rather than an instance it
            could start itself.
        """
        await trio.sleep_until(pending.at)
        async with inst.lock:
            if inst.pending_restart is not pending:
                return None  # called off: stopped, or started by an operator
            svc = self.service(inst.service)
            if svc is None:
                inst.pending_restart = None
                inst.state = STOPPED
                await self._save(inst)
                return None
            try:
                await self._launch(inst, svc)
            except TenementError as exc:  # SpawnError, PortsExhausted: counts as a crash
                self._schedule_restart(inst)
                inst.watcher = scope  # the failed launch had put its own watcher there
                return str(exc)
            return None

    def _call_off_restart(self, inst: Instance) -> None:
        """Forget the scheduled restart (a stop, or an operator's start, takes over);
        requests waiting for it look again. The caller holds the lock."""
        pending = inst.pending_restart
        if pending is not None:
            if inst.watcher is not None:
                inst.watcher.cancel()
                inst.watcher = None
            _settle(inst, pending)

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
            self._call_off_restart(inst)
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


def _settle(inst: Instance, pending: PendingRestart) -> None:
    """``pending`` was attempted or called off: the instance leaves backoff (unless a
    newer restart is scheduled) and the requests waiting for it look again."""
    if inst.pending_restart is pending:
        inst.pending_restart = None
    pending.attempted.set()
