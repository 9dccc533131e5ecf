"""What the supervisor owns and lends to the runner of every instance.

The supervisor owns the config, the store, the ports, the events and the log tailer; each
:class:`~tenement.supervisor.runner.Runner` reads them through one :class:`Shared`, the
way a circus watcher reads its arbiter's. The supervisor replaces ``config`` on a reload,
so a runner always reads the current one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import trio

from tenement.config import Config, Service
from tenement.store import InstanceRecord, Store
from tenement.supervisor import identity
from tenement.supervisor.events import Events
from tenement.supervisor.logtail import LogTailer
from tenement.supervisor.ports import PortAllocator
from tenement.supervisor.spec import TenantUser


class Shared:
    """The supervisor's resources its runners use."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        environ: Mapping[str, str],
        nursery: trio.Nursery,
        tailer: LogTailer,
    ) -> None:
        self.config = config
        self.store = store
        self.environ = dict(environ)
        self.nursery = nursery
        self.tailer = tailer
        self.ports = PortAllocator()
        self.events = Events(store)
        #: whether tenants get users of their own; learnt at the first start
        self._can_change_uid: bool | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.config.settings.data_dir)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def instance_dir(self, service: str, tenant: str) -> Path:
        return self.data_dir / service / tenant

    def service(self, name: str) -> Service | None:
        return self.config.services.get(name)

    async def save(self, record: InstanceRecord) -> None:
        # while the database is out of reach the row waits for the instance's next save
        # (or the flush of a detaching server); the tenant runs on meanwhile
        with self.store.outage.tolerated("instance rows"):
            await self.store.run(self.store.save_instance, record)

    async def tenant_user(self, svc: Service) -> TenantUser | None:
        """The user ``svc``'s tenants run as; None for the server's own (it cannot change
        uid, or ``settings.tenant_users`` is false).

        Raises:
            SpawnError: its configured user no longer exists.
            UidsExhausted: no uid of ``settings.tenant_uids`` is free for it.
        """
        if not self.config.settings.tenant_users:
            return None
        if self._can_change_uid is None:
            self._can_change_uid = identity.can_change_uid()
        if not self._can_change_uid:
            return None
        if svc.user is not None:
            return identity.named_user(svc)
        first, last = self.config.settings.tenant_uids
        store = self.store
        uid = await store.run(
            lambda: store.service_uid(
                svc.name, first, last, taken=identity.uid_taken, now=time.time()
            )
        )
        return identity.allotted_user(svc.name, uid)
