"""The supervisor's state: its instances, lookups, views, the proxy's side, persistence.

:class:`SupervisorBase` holds what every part of the supervisor shares; ``running.py``
adds starting, watching and stopping processes, ``supervisor.py`` the public operations.
The proxy's methods (:meth:`~SupervisorBase.target`, :meth:`~SupervisorBase.weighted_targets`,
:meth:`~SupervisorBase.connection`, ...) read memory only, never the database.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

from tenement.config import Config, Service
from tenement.ids import NAME_RULE, InstanceRef, InvalidInstanceId, is_valid_name
from tenement.store import InstanceRecord, LogEntry, passage_dir, private_dir
from tenement.supervisor import identity
from tenement.supervisor.errors import InstanceNotFound, UnknownService
from tenement.supervisor.events import Events
from tenement.supervisor.instance import (
    FAILED,
    STOPPED,
    Instance,
    InstanceView,
    Run,
    Target,
)
from tenement.supervisor.logtail import LogSource, LogTailer, TailerStatistics
from tenement.supervisor.ports import PortAllocator
from tenement.supervisor.spec import TenantUser, log_paths, socket_path
from tenement.supervisor.storage import StorageInfo, quota_bytes, storage_info

log = logging.getLogger(__name__)

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


class SupervisorBase:
    """The shared state of a :class:`~tenement.supervisor.Supervisor`."""

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
        #: whether tenants get users of their own; learnt at the first start
        self._can_change_uid: bool | None = None

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
        if f"{service}:{tenant}" in self._instances:
            return True
        if tenant in self._config.instances.get(service, ()):
            return True
        return self._config.settings.wake_any_id

    def connection(self, iid: str) -> contextlib.AbstractContextManager[object]:
        """Count one proxied connection to ``iid`` for as long as the block runs.

        A stop waits (up to 5 s) for the count to reach 0, and the idle reaper skips an
        instance with connections.
        """
        inst = self._instances.get(iid)
        return contextlib.nullcontext() if inst is None else _Counted(inst)

    def note_activity(self, iid: str, seconds_ago: float) -> None:
        """Another server routed a request to ``iid`` ``seconds_ago``: the idle reaper counts it."""
        inst = self._instances.get(iid)
        if inst is not None:
            at = trio.current_time() - max(0.0, seconds_ago)
            inst.last_activity = max(inst.last_activity, at)

    # ---- logs -------------------------------------------------------------------------------

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

    # ---- files and ports ---------------------------------------------------------------------

    async def _tenant_user(self, svc: Service) -> TenantUser | None:
        """The user ``svc``'s tenants run as; None for the server's own (it cannot change
        uid, or ``settings.tenant_users`` is false).

        Raises:
            SpawnError: its configured user no longer exists.
            UidsExhausted: no uid of ``settings.tenant_uids`` is free for it.
        """
        if not self._config.settings.tenant_users:
            return None
        if self._can_change_uid is None:
            self._can_change_uid = identity.can_change_uid()
        if not self._can_change_uid:
            return None
        if svc.user is not None:
            return identity.named_user(svc)
        first, last = self._config.settings.tenant_uids
        store = self._store
        uid = await store.run(
            lambda: store.service_uid(
                svc.name, first, last, taken=identity.uid_taken, now=time.time()
            )
        )
        return identity.allotted_user(svc.name, uid)

    def _prepare_dirs(self, inst: Instance, svc: Service, user: TenantUser | None = None) -> None:
        """Make the instance's directories: with a ``user``, its own directory is that
        user's (0700) and every directory above it only passable; the log directories are
        the server's alone (it opens the log files for the tenant)."""
        instance_dir = self.instance_dir(inst.service, inst.tenant)
        if user is None:
            instance_dir.mkdir(parents=True, exist_ok=True)
        else:
            passage_dir(instance_dir.parent)
            passage_dir(self.data_dir)
            identity.claim_dir(instance_dir, user)
        sockets = Path(socket_path(svc, inst.tenant)).parent
        sockets.mkdir(parents=True, exist_ok=True)
        if user is not None:
            identity.share_socket_dir(sockets)
        private_dir(self.log_dir)
        for path in log_paths(self.log_dir, inst.service, inst.tenant):
            private_dir(path.parent)

    def _watch_logs(self, inst: Instance) -> None:
        stdout, stderr = log_paths(self.log_dir, inst.service, inst.tenant)
        self._tailer.watch(LogSource(str(stdout), "stdout", inst.service, inst.tenant))
        self._tailer.watch(LogSource(str(stderr), "stderr", inst.service, inst.tenant))

    def _release(self, inst: Instance, run: Run) -> None:
        """Forget a process that is gone: its port goes back to the pool."""
        if inst.run is run:
            inst.run = None
            inst.port = None
        self._ports.release(run.port)


class _Counted:
    """:meth:`SupervisorBase.connection`'s block: a class, as it runs for every proxied
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
