"""A standby server: it serves while another server on the same data dir holds the lease.

A second ``ten serve`` on the same config and data dir (the two-binary switchover) does
not supervise: :class:`SharedBackends` routes the proxy from the ``instances`` rows the
leader keeps current (reloaded when their signature changes), and asks the leader to wake
instances. :class:`LeaderApi` is its API: ``/health`` answers for this server, every
other request is relayed to the leader's control socket. When the leader hands over (or
dies), this server takes the lease, adopts the tenants and becomes the leader
(``roles.py``); requests waiting for a leader meanwhile are served by it then.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import trio

from tenement.api import http
from tenement.config import Config, Service
from tenement.errors import TenementError
from tenement.ids import is_valid_name
from tenement.proxy import ProxyMetrics
from tenement.server.control import PREFIX, LeaderClient, NoLeader, name_client
from tenement.supervisor import Supervisor, Target, WakeError
from tenement.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from tenement.store import Store

log = logging.getLogger(__name__)

#: what a leader answered (:func:`until_leader`)
Answer = TypeVar("Answer")
#: what this server does itself once it leads (:func:`until_leader`)
Local = TypeVar("Local")

#: how often the instance rows are checked for changes
REFRESH_SECONDS = 0.2
#: how often the leader hears which instances this server routed to (its idle reaper
#: must not stop an instance busy here; idle timeouts are whole seconds) and what its
#: proxy counted
REPORT_SECONDS = 1.0
#: how long a request waits for a leader during a handover
LEADER_WAIT_SECONDS = 30.0
#: how long a relayed API request may take to answer (a deploy waits for health)
API_TIMEOUT_SECONDS = 300.0


async def until_leader(
    attempt: Callable[[], Awaitable[Answer]],
    local: Callable[[], Local | None],
    *,
    what: str,
) -> Answer | Local:
    """Run ``attempt`` until a leader answers it, or return what ``local`` returns (this
    server's supervisor, or its API) once it is not None: this server became the leader
    first.

    Raises:
        NoLeader: none answered within :data:`LEADER_WAIT_SECONDS`.
    """
    with trio.move_on_after(LEADER_WAIT_SECONDS):
        while True:
            sup = local()
            if sup is not None:
                return sup
            try:
                return await attempt()
            except NoLeader as exc:
                log.debug("%s: waiting for a leader: %s", what, exc)
            await trio.sleep(REFRESH_SECONDS / 2)
    raise NoLeader(f"{what}: no server took the supervisor lease within {LEADER_WAIT_SECONDS:g} s")


class SharedBackends:
    """The proxy's backends on a standby: instance rows from the database, wakes by the leader.

    Args:
        config: the configuration (services, ``[instances]``, ``wake_any_id``).
        store: the shared :class:`~tenement.store.Store`.
        leader: how to reach the lease holder.
        local: returns this server's supervisor once it holds the lease, else None.
        metrics: this server's proxy metrics; what they count is reported to the leader.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        leader: LeaderClient,
        local: Callable[[], Supervisor | None],
        metrics: ProxyMetrics,
    ) -> None:
        self.config = config
        self._store = store
        self._leader = leader
        self._local = local
        self._metrics = metrics
        self._signature: tuple[int, float] | None = None
        self._targets: dict[str, Target] = {}
        self._by_service: dict[str, list[Target]] = {}
        self._known: set[str] = set()
        self._touched: dict[str, float] = {}
        self._connections: dict[str, int] = {}

    # ---- keeping up with the rows ----------------------------------------------------------

    async def refresh(self) -> bool:
        """Reload the rows if they changed since the last look; True if they did."""
        store = self._store
        signature = await store.run(store.instances_signature)
        if signature == self._signature:
            return False
        records = await store.run(store.load_instances)
        targets: dict[str, Target] = {}
        by_service: dict[str, list[Target]] = {}
        for rec in records:  # ordered by id, as the supervisor's weighted_targets
            if rec.state == "running" and rec.pid is not None:
                target = Target(
                    rec.instance_id, rec.service, rec.tenant, rec.port, rec.socket, rec.weight
                )
                targets[rec.instance_id] = target
                by_service.setdefault(rec.service, []).append(target)
        self._targets, self._by_service = targets, by_service
        self._known = {rec.instance_id for rec in records}
        self._signature = signature
        return True

    async def follow(self) -> None:
        """Keep the rows current and report to the leader, until cancelled."""
        last_report = trio.current_time()
        while True:
            await trio.sleep(REFRESH_SECONDS)
            # while the database is out of reach it routes by the rows it has
            with self._store.outage.tolerated("the instance rows"):
                await self.refresh()
            if trio.current_time() - last_report >= REPORT_SECONDS:
                last_report = trio.current_time()
                await self.report()

    async def report(self) -> None:
        """Send the leader the time since the last request of every instance routed to
        since the last report (or with a connection open now), and the proxy's new counts.
        What does not arrive goes with the next report."""
        now = trio.current_time()
        touched = dict(self._touched)
        activity = {iid: now - at for iid, at in touched.items()}
        activity.update({iid: 0.0 for iid, count in self._connections.items() if count})
        metrics = self._metrics.report()
        if not activity and not metrics["requests"] and not metrics["series"]:
            return
        try:
            await self._leader.report(activity, metrics)
        except NoLeader as exc:
            log.debug("report not delivered: %s", exc)
            return
        self._metrics.acknowledge(metrics)
        for iid, at in touched.items():  # forget what was reported, unless touched since
            if self._touched.get(iid) == at:
                del self._touched[iid]

    # ---- the proxy's side (memory only, except wake) ----------------------------------------

    def service(self, name: str) -> Service | None:
        return self.config.services.get(name)

    def target(self, service: str, tenant: str) -> Target | None:
        iid = f"{service}:{tenant}"
        target = self._targets.get(iid)
        if target is not None:
            self._touched[iid] = trio.current_time()
        return target

    def weighted_targets(self, service: str) -> list[Target]:
        return list(self._by_service.get(service, ()))

    def may_wake(self, service: str, tenant: str) -> bool:
        """As the supervisor's: a known (failed ones too: the leader refuses those with
        503), listed or (``wake_any_id``) any valid tenant."""
        if self.service(service) is None or not is_valid_name(tenant):
            return False
        iid = f"{service}:{tenant}"
        if iid in self._known:
            return True
        if tenant in self.config.instances.get(service, ()):
            return True
        return self.config.settings.wake_any_id

    async def wake(self, service: str, tenant: str) -> Target:
        """The leader wakes it (this server, once it holds the lease).

        Raises:
            WakeError: it could not be woken, or no leader answered in time.
        """

        async def ask_leader() -> Target:
            return await self._leader.wake(service, tenant)

        try:
            found = await until_leader(ask_leader, self._local, what=f"waking {service}:{tenant}")
        except NoLeader as exc:
            raise WakeError(f"{service}:{tenant}", str(exc)) from exc
        if isinstance(found, Supervisor):
            return await found.wake(service, tenant)
        # for this request only: the next ones use the rows once they have it, and ask
        # the leader again until then (a target kept here would outlive an instance
        # that moved to another fleet node, still served here until its new copy runs)
        self._touched[found.instance_id] = trio.current_time()
        return found

    def connection(self, iid: str) -> contextlib.AbstractContextManager[object]:
        return _Counted(self, iid)


class _Counted:
    """:meth:`SharedBackends.connection`'s block: a class, not a generator, as it runs
    for every proxied request. The supervisor's ``_Counted`` (``supervisor/_base.py``) is
    its twin over an ``Instance``'s fields; this one counts in :class:`SharedBackends`'s
    dicts, so the two share only the name."""

    __slots__ = ("_backends", "_iid")

    def __init__(self, backends: SharedBackends, iid: str) -> None:
        self._backends = backends
        self._iid = iid

    def __enter__(self) -> None:
        connections = self._backends._connections
        connections[self._iid] = connections.get(self._iid, 0) + 1

    def __exit__(self, *exc_info: object) -> None:
        backends = self._backends
        backends._connections[self._iid] -= 1
        backends._touched[self._iid] = trio.current_time()


class LeaderApi:
    """A standby's API: ``/health`` is this server's, the rest is relayed to the leader.

    Args:
        relay: :meth:`Proxy.relay <tenement.proxy.Proxy.relay>` of this server's proxy
            (its connection pool reaches the leader's control socket).
        leader: how to find the leader.
        ready: ``GET /health`` answers 200 while this returns True.
        local_api: returns the API of this server once it holds the lease, else None.
    """

    def __init__(
        self,
        relay: Callable[..., Awaitable[bool]],
        leader: LeaderClient,
        ready: Callable[[], bool],
        local_api: Callable[[], ASGIApp | None],
    ) -> None:
        self._relay = relay
        self._leader = leader
        self._ready = ready
        self._local_api = local_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            return
        if kind != "http":
            await http.error_response(404, "Not found")(send)
            return
        if scope["path"] == "/health":
            up = self._ready()
            await http.json_response({"status": "ok" if up else "starting"}, 200 if up else 503)(
                send
            )
            return
        if scope["path"].startswith(PREFIX):
            await http.error_response(404, "Not found")(send)
            return
        relayed = name_client(scope)

        async def relay() -> None:
            path = await self._leader.socket_path()
            if not await self._relay(path, relayed, receive, send, timeout=API_TIMEOUT_SECONDS):
                raise NoLeader(f"the lease holder's control socket {path} refused the connection")

        try:
            local_api = await until_leader(
                relay, self._local_api, what=f"{scope['method']} {scope['path']}"
            )
        except TenementError as exc:
            log.warning("%s", exc)
            await http.error_response(503, "Service temporarily unavailable")(send)
            return
        if local_api is not None:  # this server leads now: its own API answers
            await local_api(scope, receive, send)
