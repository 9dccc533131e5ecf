"""Leader or standby: the part a ``ten serve`` plays among the servers on one data dir.

One server holds the supervisor lease (the *leader*): it runs the supervisor and answers
its API itself. Any other server started on the same config and data dir is a *standby*:
it serves proxy traffic from the shared instance rows and relays wakes and API requests
to the leader (``standby.py``). Every server registers itself in the ``servers`` table
and heartbeats there; a leader told to stop (SIGTERM) while another live server is
registered hands its tenants over instead of stopping them, and the standby that sees
the lease free takes it and adopts them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from tenement.api import build_api
from tenement.api.history import History
from tenement.config import Config
from tenement.proxy import Proxy, ProxyMetrics
from tenement.server.control import ControlApp, LeaderClient
from tenement.server.standby import LeaderApi, SharedBackends
from tenement.store import DatabaseUnavailable
from tenement.supervisor import Supervisor, SupervisorBusy, holder_alive, open_supervisor
from tenement.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from tenement.api.relay import Relay
    from tenement.proxy.fleet import Owners
    from tenement.server.moves import Mover
    from tenement.store import Store

log = logging.getLogger(__name__)

#: how often a standby looks at the lease
LEASE_POLL_SECONDS = 0.2
#: how often a server says it is alive, and how old that may be for it to count as alive
HEARTBEAT_SECONDS = 2.0
SERVER_MAX_AGE_SECONDS = 3 * HEARTBEAT_SECONDS


class Node:
    """This server's role, and the apps that serve it (they follow the role).

    Args:
        config: the configuration to start with.
        store: the open, migrated :class:`~tenement.store.Store`.
        server_id: ``host:pid:token``; the lease is held under this name.
        environ: what tenants inherit (see :func:`~tenement.supervisor.open_supervisor`).
        domain: ``ten serve --domain``.
        ready: whether this server is ready (``GET /health``).
        may_lead: False for a worker process (``workers.py``): it stands by for good.
        reload: what ``POST /_tenement/reload`` on the control socket runs (``reload.py``).
        fleet: a fleet node's directory of other nodes' tenants (``directory.py``): the
            proxy forwards requests for them. None on a single host.
        fleet_relay: how the API relays a call for another node's instance to it
            (``relay.py``). None on a single host.

    Attributes:
        proxy: the app for the server's sockets (routes with the supervisor once this
            server leads, with :class:`SharedBackends` while it stands by).
        control: the app for the server's control socket.
        supervisor: the supervisor while this server leads, else None.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        server_id: str,
        environ: Mapping[str, str],
        domain: str,
        ready: Callable[[], bool],
        may_lead: bool = True,
        reload: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        fleet: Owners | None = None,
        fleet_relay: Relay | None = None,
    ) -> None:
        self.config = config
        self._may_lead = may_lead
        self.server_id = server_id
        self.supervisor: Supervisor | None = None
        self._store = store
        self._environ = environ
        self._domain = domain
        self._ready = ready
        self._api: ASGIApp | None = None
        self._fleet_relay = fleet_relay
        #: a fleet node's mover of tenants (``moves.py``), set by the server; None on a
        #: single host
        self.mover: Mover | None = None
        self._leave = trio.Event()
        self._done = trio.Event()
        #: set by the server once it serves: adopted tenants' watchers start then
        self.serving = trio.Event()
        self._hand_over = False
        #: the built-in TLS's certificates and failures for /api/tls/status; set by the
        #: server once its TLS front runs (None: no TLS here)
        self.tls_status: Callable[[], dict[str, Any]] | None = None
        self.metrics = ProxyMetrics()
        #: the last hour of request rate and latency, for the dashboard's charts
        self.history = History()
        leader = LeaderClient(store, server_id)
        self.standby = SharedBackends(config, store, leader, lambda: self.supervisor, self.metrics)
        leader_api = LeaderApi(self._relay, leader, ready, lambda: self._api)
        self.proxy = Proxy(
            self.standby, domain=domain, fallback=leader_api, metrics=self.metrics, fleet=fleet
        )
        self.control = ControlApp(self.proxy, lambda: self.supervisor, self.metrics, reload)

    async def _relay(
        self, path: str, scope: Scope, receive: Receive, send: Send, *, timeout: float
    ) -> bool:
        return await self.proxy.relay(path, scope, receive, send, timeout=timeout)

    @property
    def leading(self) -> bool:
        return self.supervisor is not None

    # ---- the role ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Lead when the lease can be had, stand by while it cannot, until :meth:`leave`.

        Started (``task_status``) once this server can serve: as the leader after adopting
        the tenants, as a standby after reading the instance rows.
        """
        try:
            await self._run(task_status)
        finally:
            self._done.set()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        started = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.history.run, self.metrics, lambda: self.supervisor)
            following: trio.CancelScope | None = None
            while not self._leave.is_set():
                if not self._may_lead or await self._lease_taken():
                    if following is None:
                        await self.standby.refresh()
                        following = await nursery.start(self._follow)
                    if not started:
                        task_status.started()
                        started = True
                    with trio.move_on_after(LEASE_POLL_SECONDS):
                        await self._leave.wait()
                    continue
                try:
                    async with open_supervisor(
                        self.config,
                        self._store,
                        environ=self._environ,
                        holder=self.server_id,
                        serving=self.serving,
                    ) as sup:
                        if following is not None:
                            following.cancel()
                            log.info("took over the supervisor lease: this server leads now")
                        self._lead(sup)
                        if not started:
                            task_status.started()
                            started = True
                        await self._leave.wait()
                        if self._hand_over:
                            sup.detach()
                    # tenants stopped or handed over, lease released: wakes relayed here
                    # from now on are refused (503), and their senders look for the leader
                    self.supervisor = None
                    break
                except SupervisorBusy:
                    continue  # taken between our look and our try: stand by
            nursery.cancel_scope.cancel()

    async def _lease_taken(self) -> bool:
        """Whether another live server holds the lease now (while the database is out of
        reach: taken, as far as this server may tell; it stands by)."""
        store = self._store
        try:
            holder = await store.run(store.lease_holder, time.time())
        except DatabaseUnavailable as exc:
            store.outage.noted("the supervisor lease", exc)
            return True
        store.outage.ended()
        if holder is None or holder == self.server_id:
            return False
        return holder_alive(holder)

    async def _follow(self, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            if self._may_lead:
                log.info("standing by: another server holds the supervisor lease")
            task_status.started(scope)
            await self.standby.follow()

    def _lead(self, sup: Supervisor) -> None:
        self.supervisor = sup
        self._api = build_api(
            sup,
            self._store,
            ready=self._ready,
            settings=self.config.settings,
            domain=self._domain,
            proxy_metrics=self.metrics,
            request_history=self.history,
            tls_status=lambda: self.tls_status() if self.tls_status is not None else None,
            fleet_relay=self._fleet_relay,
            mover=self.mover,
        )
        self.proxy.use(sup, self._api)
        if self.mover is not None:
            # moves a killed server of this node left half done (``moves.py``), and
            # the copies of moved tenants' data whose time is up (``moved_copies.py``)
            sup.start_soon(self.mover.recover)
            sup.start_soon(self.mover.sweep_moved)

    def hand_over(self) -> None:
        """When leaving, leave the tenants running (a restart, or a successor present)."""
        self._hand_over = True
        if self.supervisor is not None:
            self.supervisor.detach()

    async def leave(self) -> None:
        """Stop leading or standing by: the caller's :meth:`run` returns once the
        supervisor has stopped (or handed over) the tenants and released the lease; so
        does this."""
        self._leave.set()
        await self._done.wait()

    async def reload(self, config: Config) -> tuple[str, ...]:
        """Serve with ``config`` from now on; returns the instances that stopped (the
        leader stops those of removed services; a standby stops none)."""
        self.config = config
        self.standby.config = config
        if self.supervisor is not None:
            return await self.supervisor.reload(config)
        return ()

    # ---- the server list ----------------------------------------------------------------------

    async def register(
        self, url: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Be in the ``servers`` table (with the control socket's ``url``) while this runs."""
        store = self._store
        await store.run(store.register_server, self.server_id, os.getpid(), url, time.time())
        task_status.started()
        try:
            while True:
                await trio.sleep(HEARTBEAT_SECONDS)
                with store.outage.tolerated("the server list"):
                    if not await store.run(store.server_heartbeat, self.server_id, time.time()):
                        await store.run(
                            store.register_server, self.server_id, os.getpid(), url, time.time()
                        )
        finally:
            with trio.CancelScope(shield=True), store.outage.tolerated("the server list"):
                await store.run(store.unregister_server, self.server_id)

    async def successor_present(self) -> bool:
        """Whether another live server on this data dir could take the tenants over."""
        store = self._store
        rows = await store.run(store.live_servers, time.time(), SERVER_MAX_AGE_SECONDS)
        return any(row.server_id != self.server_id and holder_alive(row.server_id) for row in rows)
