"""``open_supervisor``: the lease, adoption, background passes, and the way out.

While a supervisor is open it holds the store's supervisor lease (renewed in the
background), so two servers never manage the same tenants. Its nursery owns one watcher
per instance, the log tailer, and a maintenance pass every ``health_check_interval``
(idle reaper, disk usage, log retention).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping

import trio

from tenement.config import Config
from tenement.processes import process_exists
from tenement.store import DatabaseUnavailable, Store
from tenement.supervisor import idle
from tenement.supervisor.adoption import adopt_all, watch_adopted
from tenement.supervisor.errors import SupervisorBusy
from tenement.supervisor.instance import Instance, Run
from tenement.supervisor.logtail import LogTailer
from tenement.supervisor.runner import Runner
from tenement.supervisor.supervisor import Supervisor

log = logging.getLogger(__name__)

LEASE_TTL_SECONDS = 30.0
LEASE_RENEW_SECONDS = 10.0
#: how long stopping every instance on the way out may take, beyond their grace periods
SHUTDOWN_SECONDS = 60.0
#: log retention, checked every this many seconds
RETENTION_EVERY_SECONDS = 300.0
LOG_RETENTION_DAYS = 7
LOG_RETENTION_ROWS = 1_000_000
DAY_MS = 86_400_000
#: adopted tenants whose watchers start at once, and the pause between two such batches
#: (1,000 tenants: all watched ~0.2 s after the server serves)
WATCH_BATCH = 10
WATCH_PAUSE_SECONDS = 0.002


def new_holder() -> str:
    """A lease holder name for this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_alive(holder: str) -> bool:
    """Whether the lease ``holder`` (``host:pid:token``) may still be running."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine: only its lease expiry tells
    return process_exists(int(pid_text))


def _acquire(store: Store, holder: str) -> None:
    now = time.time()
    if store.try_acquire_lease(holder, LEASE_TTL_SECONDS, now):
        return
    current = store.lease_holder(now)
    if current is not None and not holder_alive(current):
        log.warning("taking over the lease of %s, which is no longer running", current)
        store.release_lease(current)
        if store.try_acquire_lease(holder, LEASE_TTL_SECONDS, now):
            return
        current = store.lease_holder(now)
    raise SupervisorBusy(current or "unknown", store.display_url)


@contextlib.asynccontextmanager
async def open_supervisor(
    config: Config,
    store: Store,
    *,
    environ: Mapping[str, str] | None = None,
    log_poll_seconds: float = 0.25,
    holder: str | None = None,
    serving: trio.Event | None = None,
) -> AsyncIterator[Supervisor]:
    """Supervise the instances of ``config`` recorded in ``store``.

    On entry: take the supervisor lease, adopt every recorded live instance, mark the rows
    of dead ones stopped, start the ``[instances]``, and start the background tasks.
    On exit: stop every instance (TERM to its group, grace, KILL), unless
    :meth:`Supervisor.detach` was called: then the rows are flushed and the tenants keep
    running for the next supervisor to adopt. The lease is released either way.

    Args:
        config: the loaded configuration (``settings.data_dir`` absolute).
        store: an open, migrated :class:`~tenement.store.Store`; not closed here.
        environ: the environment tenants inherit (scrubbed of systemd's variables);
            ``os.environ`` when None.
        log_poll_seconds: how often the log tailer looks at idle log files.
        holder: the name the lease is held under, ``host:pid:anything`` (a server passes
            its registered server id, so that others can find its control socket);
            one is made up when None.
        serving: set by a server once it serves (``READY=1``): the adopted tenants'
            watchers, health checks and log tailing resume then, so that starting a
            thousand of them does not hold the server's readiness back; at once when
            None. Nothing is missed meanwhile: a pidfd reports an exit that came before
            the watch, logs are read from the saved offsets, and the first health checks
            are spread over an interval anyway.

    Raises:
        SupervisorBusy: another live server holds the lease.
    """
    holder = holder or new_holder()
    await store.run(_acquire, store, holder)
    try:
        tailer = LogTailer(store, poll_seconds=log_poll_seconds)
        async with trio.open_nursery() as nursery:
            sup = Supervisor(
                config,
                store,
                environ=os.environ if environ is None else environ,
                nursery=nursery,
                tailer=tailer,
            )
            # a fleet node first takes the rows that name no node (from before the fleet)
            claimed = 0 if store.node is None else await store.run(store.claim_unowned_instances)
            if claimed:
                log.info(
                    "fleet node %s took %d instance rows that named no node (from before "
                    "the fleet): they are this node's now",
                    store.node,
                    claimed,
                )
            records = await store.run(store.load_instances)
            adopted = await adopt_all(sup, records, now=trio.current_time())
            if adopted:
                log.info("adopted %d running instances", len(adopted))
            await nursery.start(tailer.serve)
            nursery.start_soon(_watch_when_serving, sup, adopted, serving)
            nursery.start_soon(_renew_lease, sup, store, holder)
            nursery.start_soon(_maintain, sup, store)
            for service, tenants in config.instances.items():
                for tenant in tenants:
                    nursery.start_soon(sup.spawn_listed, service, tenant)
            try:
                yield sup
            finally:
                with trio.move_on_after(SHUTDOWN_SECONDS, shield=True):
                    await sup.shutdown()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await store.run(store.release_lease, holder)


async def _watch_when_serving(
    sup: Supervisor, adopted: list[tuple[Runner, Run]], serving: trio.Event | None
) -> None:
    """Once the server serves, resume supervising the adopted tenants, a few at a time:
    started all at once, a thousand watchers held the first requests back ~0.15 s (the
    bench's 1,000 tenants: READY to the first answer 160-200 ms, in batches 40-50 ms)."""
    if serving is not None:
        await serving.wait()
    for start in range(0, len(adopted), WATCH_BATCH):
        watch_adopted(sup, adopted, start, start + WATCH_BATCH)
        await trio.sleep(WATCH_PAUSE_SECONDS)


async def _renew_lease(sup: Supervisor, store: Store, holder: str) -> None:
    """Keep the lease; if another live server took it, leave the tenants to it and stop.

    While the database is out of reach the lease cannot be renewed, and the tenants run
    on; once it has been out of reach so long that the lease would expire (and another
    server could take it when the database is back), the supervisor detaches and stops:
    the tenants stay for the next server to adopt.

    Raises:
        SupervisorBusy: the lease is someone else's now (the supervisor detaches first, so
            its exit does not stop tenants another server supervises).
        DatabaseUnavailable: out of reach for longer than the lease can wait (detached).
    """
    renewed_at = trio.current_time()
    while True:
        await trio.sleep(LEASE_RENEW_SECONDS)
        try:
            renewed = await store.run(store.renew_lease, holder, LEASE_TTL_SECONDS, time.time())
        except DatabaseUnavailable as exc:
            store.outage.noted("the supervisor lease", exc)
            waited = trio.current_time() - renewed_at
            if waited + LEASE_RENEW_SECONDS < LEASE_TTL_SECONDS:
                continue
            if store.node is not None:
                # a fleet node's peers may have re-placed its tenants by now: leaving
                # them running could serve two copies (it fenced itself already unless
                # node_timeout is longer than the lease can wait)
                log.error(
                    "the database has been out of reach for %.0f s and the supervisor "
                    "lease expires soon: fleet node %s stops its tenants",
                    waited,
                    store.node,
                )
                raise
            log.error(
                "the database has been out of reach for %.0f s and the supervisor lease "
                "expires soon: leaving the tenants running for the next server",
                waited,
            )
            sup.detach()
            raise
        store.outage.ended()
        renewed_at = trio.current_time()
        if renewed:
            continue
        log.error("lost the supervisor lease (%s); taking it back", holder)
        try:
            await store.run(_acquire, store, holder)
        except SupervisorBusy:
            sup.detach()
            raise


async def _maintain(sup: Supervisor, store: Store) -> None:
    """Every ``health_check_interval``: reap idle instances, measure disks, prune logs."""
    last_retention = -RETENTION_EVERY_SECONDS
    while True:
        await trio.sleep(sup.config.settings.health_check_interval)
        await reap_idle(sup)
        await measure_storage(sup)
        if trio.current_time() - last_retention >= RETENTION_EVERY_SECONDS:
            with store.outage.tolerated("log retention"):
                await prune_logs(sup)
                last_retention = trio.current_time()


async def reap_idle(sup: Supervisor) -> int:
    """Stop every idle instance (concurrently). Returns how many were stopped."""
    runners = {runner.inst.id: runner for runner in sup.runners()}
    victims = idle.idle_instances(
        [runner.inst for runner in runners.values()],
        sup.config.services,
        now=trio.current_time(),
    )

    async def reap(inst: Instance) -> None:
        def still_idle() -> bool:
            service = sup.service(inst.service)
            return idle.is_idle(inst, service, now=trio.current_time())

        runner = runners[inst.id]
        await runner.stop(kind="idle_stop", drain=False, still_wanted=still_idle)

    async with trio.open_nursery() as nursery:
        for inst in victims:
            nursery.start_soon(reap, inst)
    return len(victims)


async def measure_storage(sup: Supervisor) -> None:
    """Refresh every running instance's disk usage; log when a soft quota is near or past."""
    for runner in [r for r in sup.runners() if r.inst.running]:
        await runner.measure_storage()


async def prune_logs(sup: Supervisor) -> int:
    cutoff = int(time.time() * 1000) - LOG_RETENTION_DAYS * DAY_MS
    return await sup.prune_logs(older_than_ms=cutoff, keep_rows=LOG_RETENTION_ROWS)
