"""The proxy as an ASGI app: Host -> instance -> forwarded request (reference §5.6-5.9).

Answers it gives by itself, in plain text, sanitised as the reference's:

- 400 ``Bad request``: a Host under the domain that no hostname can have, or a request
  that cannot be written as HTTP/1.1 to the tenant;
- 404 ``Not found``: unknown service, invalid name, or a tenant that is not running and
  may not be woken;
- 502 ``Bad gateway``: the tenant failed before its response head;
- 503 ``Service temporarily unavailable``: waking failed, the instance failed, or no
  instance answered; with ``Retry-After`` (seconds) when the instance is in backoff and
  its scheduled restart is due after the service's ``request_timeout``;
- 504 ``Gateway timeout``: no response head within the service's ``request_timeout``.

The active-connection count (``backends.connection``) covers the whole exchange, body
and WebSocket session included (the reference's ends at the response head), so a stop
drains streaming responses and the idle reaper leaves an open WebSocket alone.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable

import attrs
import trio

from tenement.config import Service
from tenement.errors import TenementError
from tenement.proxy.backends import Backends, Target
from tenement.proxy.fleet import (
    BACK_HEADER,
    FORGED_HOP,
    HERE,
    HOP_HEADER,
    Hop,
    Owners,
    Peer,
    RemoteInstance,
    check_hop,
    loop_detected,
    owner_down,
    sent_back,
    without_hop,
)
from tenement.proxy.forward import (
    BadRequest,
    ClientGone,
    ForwardFailed,
    ForwardTimedOut,
    forward_http,
    forward_whole,
)
from tenement.proxy.metrics import ProxyMetrics, ProxyStatistics
from tenement.proxy.moves import Moves
from tenement.proxy.routing import (
    BAD_HOST,
    NOT_FOUND,
    Direct,
    Fallback,
    Rejected,
    Weighted,
    fallback_order,
    route_for,
    weighted_pick,
)
from tenement.proxy.upstream import Address, Connection, Upstream, UpstreamUnavailable
from tenement.supervisor import InstanceFailed, OwnedElsewhere, RestartPending
from tenement.types import ASGIApp, Receive, Scope, Send, SendWhole
from tenement.wire import WholeRequest

log = logging.getLogger(__name__)

#: how long a connect may take before the instance counts as dead (reference v0.2.2)
PROBE_SECONDS = 0.150
#: how often a dead direct target is looked up again, and for how long
RETRY_INTERVAL_SECONDS = 0.100
RETRY_DEADLINE_SECONDS = 15.0
#: how often a request waiting for a tenant gone from this process's rows has its row
#: read again (it may have moved to another fleet node)
RECHECK_SECONDS = 0.5
#: how long a connect to another fleet node may take before it counts as down (a node
#: cut off by a partition answers nothing: without this, the kernel's minutes)
PEER_CONNECT_SECONDS = 2.0
#: forged hop headers are logged at most once in this many seconds
FORGED_LOG_SECONDS = 10.0

UNAVAILABLE = Rejected(503, "Service temporarily unavailable")
BAD_GATEWAY = Rejected(502, "Bad gateway")
GATEWAY_TIMEOUT = Rejected(504, "Gateway timeout")


class Proxy:
    """Routes requests for tenant hosts to their instances; everything else to ``fallback``.

    Args:
        backends: the running instances (the supervisor; see
            :class:`tenement.proxy.Backends`).
        domain: the base domain; ``alice.notes.<domain>`` reaches ``notes:alice``.
        fallback: the ASGI app for every other host (API and dashboard), and for
            ``lifespan``.
        rng: the weighted pick's random source (seed it in tests).
        metrics: where requests are counted (shared with whoever reports them); a new
            :class:`ProxyMetrics` by default.
        fleet: with ``[fleet]``, the owners of tenants that run on other nodes: a
            request for one is forwarded there (``tenement/proxy/fleet.py``). None on a
            single host: nothing of the fleet is looked at.

    Resource handling: owns a connection pool; call :meth:`aclose` when done serving.
    """

    def __init__(
        self,
        backends: Backends,
        *,
        domain: str,
        fallback: ASGIApp,
        rng: random.Random | None = None,
        metrics: ProxyMetrics | None = None,
        fleet: Owners | None = None,
    ) -> None:
        self._backends = backends
        self._fleet = fleet
        self._forged_logged_at = -FORGED_LOG_SECONDS
        self._forged_unlogged = 0
        self._domain = domain.strip().lower().rstrip(".")
        self._fallback = fallback
        self._rng = rng or random.Random()
        self._upstream = Upstream()
        self.metrics = metrics if metrics is not None else ProxyMetrics()
        #: tenants being moved to another fleet node: their requests wait
        self.moves = Moves()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            return await self._fallback(scope, receive, send)
        host = None
        for name, value in scope["headers"]:
            if name == b"host" or name == b":authority":
                host = value.decode("latin-1")
                break
        route = route_for(host, self._domain)
        if isinstance(route, Fallback):
            return await self._fallback(scope, receive, send)
        self.metrics.request()
        started = trio.current_time()
        if isinstance(route, Rejected):
            return await self._answer(scope, send, route)
        fleet = self._fleet
        hop = back = False
        if fleet is not None:
            checked = check_hop(scope["headers"], fleet.secret)
            if checked is Hop.FORGED:
                self._log_forged(host, _client_host(scope))
                return await self._answer(scope, send, FORGED_HOP)
            if checked is Hop.VALID:
                hop = True
                back = sent_back(scope["headers"])
                # the peer told the client's address in X-Forwarded-For already
                scope = {**scope, "headers": without_hop(scope["headers"]), "client": None}
        service = self._backends.service(route.service)
        if service is None:
            return await self._answer(scope, send, NOT_FOUND)
        if isinstance(route, Direct):
            iid = f"{route.service}:{route.tenant}"
            moves = self.moves
            while True:
                if moves.moving(iid) and not await moves.hold(iid, service.request_timeout):
                    return await self._answer(scope, send, _still_moving(iid))
                if hop and (back or moves.moved_recently(iid) or _moved(fleet, iid)):
                    hop = False  # forwarded once more, to where it went (proxy/moves.py)
                known = False
                if fleet is not None and self._backends.target(route.service, route.tenant) is None:
                    source = None if hop else moves.arriving_from(iid)
                    old = fleet.peer(source) if source is not None else None
                    if old is not None and old.up:
                        # moved here without a pause: served where it ran until it runs here
                        return await self._to_peer(
                            old, route, hop, scope, receive, send, started, back=True
                        )
                    peer = await fleet.owner(iid)
                    if isinstance(peer, Peer) and hop:
                        # forwarded here by a node whose map says this one runs it: this
                        # process's map may be the one behind (each keeps its own)
                        peer = await fleet.recheck(iid)
                        hop = not fleet.moved_recently(iid)
                    if isinstance(peer, Peer):
                        return await self._to_peer(peer, route, hop, scope, receive, send, started)
                    # this node's row: its to wake, even where this process has not read the
                    # row yet (a worker or standby reads them every 0.2 s)
                    known = peer is HERE
                connected = await self._connect_direct(route.service, route.tenant, known=known)
                if not isinstance(connected, _Moving):
                    found = connected
                    break
                # it began to move while this request waited for it: held, then routed again
            if isinstance(found, OwnedElsewhere):
                # claimed by another node (or moved there) since this process's map looked:
                # a forwarded request goes on once more, to that node
                assert fleet is not None
                peer = await fleet.find_peer(found.node)
                if peer is None:
                    return await self._answer(scope, send, UNAVAILABLE)
                return await self._to_peer(peer, route, False, scope, receive, send, started)
        else:
            if fleet is not None and not hop:
                remote = fleet.remote_instances(route.service)
                if not remote and not self._backends.weighted_targets(route.service):
                    remote = await fleet.find_instances(route.service)
                if remote:
                    every: list[Target | RemoteInstance] = [
                        *self._backends.weighted_targets(route.service),
                        *remote,
                    ]
                    picked = weighted_pick(every, self._rng)
                    if isinstance(picked, RemoteInstance):
                        # the owner picks among its own instances again, by weight:
                        # each instance's share of the fleet's total stays its weight's
                        named = Direct(picked.tenant, picked.service)
                        return await self._to_peer(
                            picked.peer, named, hop, scope, receive, send, started
                        )
            found = await self._connect_weighted(route.service)
        if isinstance(found, Rejected):
            return await self._answer(scope, send, found)
        target, conn = found
        timeout = service.request_timeout
        answer = None

        async def upgrade() -> float:
            nonlocal answer
            answer = await websocket.upgrade_websocket(conn, scope, receive, timeout=timeout)
            return trio.current_time()

        if kind == "websocket":
            # wsproto (~15 ms to import) is loaded with the first WebSocket, not at start
            from tenement.proxy import websocket

        with self._backends.connection(target.instance_id):
            if kind == "http":
                forward = forward_http(self._upstream, conn, scope, receive, send, timeout=timeout)
            else:
                forward = upgrade()
            try:
                failure = await self._forwarded(target, started, forward)
            except ClientGone:
                return None
            if failure is not None:
                return await self._answer(scope, send, failure)
            if answer is not None:
                await websocket.relay_websocket(conn, answer, scope, receive, send)
        return None

    def _log_forged(self, host: str | None, client: str) -> None:
        """Log a forged hop, at most once per :data:`FORGED_LOG_SECONDS` (a client that
        sends them by the thousand must not fill the log), with how many went unlogged."""
        now = trio.current_time()
        if now - self._forged_logged_at < FORGED_LOG_SECONDS:
            self._forged_unlogged += 1
            return
        log.warning(
            "refused a request for %s from %s: hop header without the fleet secret "
            "(and %d more since the last such line)",
            host,
            client,
            self._forged_unlogged,
        )
        self._forged_logged_at = now
        self._forged_unlogged = 0

    async def _to_peer(
        self,
        peer: Peer,
        route: Direct,
        hop: bool,
        scope: Scope,
        receive: Receive,
        send: Send,
        started: float,
        *,
        back: bool = False,
    ) -> None:
        """Forward the request for ``route`` to ``peer``, the node that runs it: once
        (a hop that would go on is a loop: 508), with the fleet secret, streamed both
        ways, a WebSocket relayed; 503 with ``Retry-After`` if that node is down.
        ``back``: to the node a stateless move took it from, which still serves it."""
        assert self._fleet is not None
        iid = f"{route.service}:{route.tenant}"
        if hop:
            log.warning("a forwarded request for %s arrived, but %s runs it", iid, peer.node)
            return await self._answer(scope, send, loop_detected(iid, peer.node))
        retry_after = self._fleet.retry_after_seconds
        if not peer.up:
            return await self._answer(scope, send, owner_down(iid, peer, retry_after, "is down"))
        conn = self._upstream.take_idle(peer.address)
        if conn is None:
            why = "does not answer"
            with trio.move_on_after(PEER_CONNECT_SECONDS):
                try:
                    conn = await self._upstream.open(peer.address)
                except UpstreamUnavailable as exc:
                    why = f"cannot be reached ({exc})"
            if conn is None:
                log.warning("%s: fleet node %s %s", iid, peer.node, why)
                return await self._answer(scope, send, owner_down(iid, peer, retry_after, why))
        sent = [*without_hop(scope["headers"]), (HOP_HEADER, self._fleet.secret)]
        if back:
            sent.append((BACK_HEADER, b"1"))
        scope = {**scope, "headers": sent}
        service = self._backends.service(route.service)
        timeout = service.request_timeout if service is not None else 60.0
        target = _PeerTarget(iid, route.service, route.tenant)
        answer = None

        async def upgrade() -> float:
            nonlocal answer
            answer = await websocket.upgrade_websocket(conn, scope, receive, timeout=timeout)
            return trio.current_time()

        if scope["type"] == "websocket":
            from tenement.proxy import websocket

            forward = upgrade()
        else:
            forward = forward_http(self._upstream, conn, scope, receive, send, timeout=timeout)
        try:
            failure = await self._forwarded(target, started, forward)
        except ClientGone:
            return None
        if failure is not None:
            return await self._answer(scope, send, failure)
        if answer is not None:
            await websocket.relay_websocket(conn, answer, scope, receive, send)
        return None

    def routes_to_instance(self, host: str, *, running_only: bool = False) -> bool:
        """Whether ``host`` names an instance this server knows (a running one, one it
        would wake, or a service with instances): the guard on ordering a TLS
        certificate for a host name (``tenement.tls``). ``running_only``: only one that
        runs now. On a fleet node, a tenant another node holds counts too (this node
        serves it, forwarding), as far as this node's map knows."""
        route = route_for(host, self._domain)
        if isinstance(route, Direct):
            if self._backends.service(route.service) is None:
                return False
            if self._backends.target(route.service, route.tenant) is not None:
                return True
            if self._fleet is not None:
                owner = self._fleet.known_owner(f"{route.service}:{route.tenant}")
                if isinstance(owner, Peer):
                    return True
            return not running_only and self._backends.may_wake(route.service, route.tenant)
        if isinstance(route, Weighted):
            return bool(self._backends.weighted_targets(route.service))
        return False

    async def express(
        self,
        request: WholeRequest,
        client_host: str | None,
        receive: Receive,
        send: Send,
        send_whole: SendWhole,
        secure: bool = False,
    ) -> bool:
        """Serve a whole HTTP/1.1 request that ``h1.py`` read itself (its express
        lane), when it is for a running instance with an idle pooled connection;
        ``secure``: it came over TLS (the tenant sees ``X-Forwarded-Proto: https``).

        Returns:
            False, having done nothing, for anything else: the request then takes the
            ASGI way in (:meth:`__call__`), which routes by weight, wakes, waits out a
            restart, connects, and answers errors. True once it was answered.
        """
        route = route_for(request.host.decode("latin-1"), self._domain)
        if not isinstance(route, Direct) or self.moves.moving(f"{route.service}:{route.tenant}"):
            return False  # a tenant being moved: held the ASGI way
        service = self._backends.service(route.service)
        if service is None:
            return False
        fleet = self._fleet
        hop = False
        if fleet is not None:
            checked = check_hop(request.headers, fleet.secret)
            if checked is Hop.FORGED:
                return False  # refused, and logged, the ASGI way
            if checked is Hop.VALID:
                hop = True
                request = request._replace(headers=without_hop(request.headers))
                client_host = None  # the peer told it in X-Forwarded-For
        target = self._backends.target(route.service, route.tenant)
        if target is None:
            if fleet is None or hop:
                return False
            return await self._express_to_peer(
                fleet, route, service, request, client_host, receive, send, send_whole, secure
            )
        started = trio.current_time()
        conn = self._upstream.take_idle(Address.of(target), started)
        if conn is None:
            return False
        self.metrics.request()
        with self._backends.connection(target.instance_id):
            forward = forward_whole(
                self._upstream,
                conn,
                request,
                client_host,
                receive,
                send,
                send_whole,
                timeout=service.request_timeout,
                scheme="https" if secure else "http",
            )
            try:
                failure = await self._forwarded(target, started, forward)
            except ClientGone:
                return True
            if failure is not None:
                await self._answer(_HTTP_SCOPE, send, failure)
        return True

    async def _express_to_peer(
        self,
        fleet: Owners,
        route: Direct,
        service: Service,
        request: WholeRequest,
        client_host: str | None,
        receive: Receive,
        send: Send,
        send_whole: SendWhole,
        secure: bool,
    ) -> bool:
        """:meth:`express` for a tenant another node runs, when this node's map knows
        the node, it is up and a pooled connection to it is idle; False otherwise (the
        ASGI way then connects, looks up, or answers the failure)."""
        iid = f"{route.service}:{route.tenant}"
        peer = fleet.known_owner(iid)
        if not isinstance(peer, Peer) or not peer.up:
            return False
        started = trio.current_time()
        conn = self._upstream.take_idle(peer.address, started)
        if conn is None:
            return False
        self.metrics.request()
        # the client's own hop header, if any, was refused above: this one is the only one
        request = request._replace(
            headers=[*without_hop(request.headers), (HOP_HEADER, fleet.secret)]
        )
        forward = forward_whole(
            self._upstream,
            conn,
            request,
            client_host,
            receive,
            send,
            send_whole,
            timeout=service.request_timeout,
            scheme="https" if secure else "http",
        )
        try:
            failure = await self._forwarded(
                _PeerTarget(iid, route.service, route.tenant), started, forward
            )
        except ClientGone:
            return True
        if failure is not None:
            await self._answer(_HTTP_SCOPE, send, failure)
        return True

    async def _forwarded(
        self, target: Target, started: float, forward: Awaitable[float]
    ) -> Rejected | None:
        """Await ``forward`` (it returns when the response head arrived) and record how
        long the request took; the proxy's own answer when it failed before the head.

        Raises:
            ClientGone: the client left (nothing is recorded or answered).
        """
        try:
            head_at = await forward
        except (ForwardTimedOut, ForwardFailed, BadRequest) as exc:
            failure: Rejected | None = _failure(target, exc)
            head_at = trio.current_time()
        else:
            failure = None
        self.metrics.record(
            target.instance_id, target.service, target.tenant, (head_at - started) * 1000.0
        )
        return failure

    def use(self, backends: Backends, fallback: ASGIApp) -> None:
        """Route with ``backends`` and fall back to ``fallback`` from the next request on
        (a standby server that becomes the leader); requests in flight finish as they began."""
        self._backends = backends
        self._fallback = fallback

    async def relay(
        self, path: str, scope: Scope, receive: Receive, send: Send, *, timeout: float
    ) -> bool:
        """Forward this HTTP request to the server on the Unix socket ``path`` and relay
        its answer (a standby's API requests go to the leader this way).

        Returns:
            False if nothing accepted the connection (nothing was read or sent: the
            caller may try elsewhere); True once the request was handled, answered with
            502/504 by the proxy itself if the server failed.
        """
        try:
            conn = await self._upstream.acquire(Address(None, path))
        except UpstreamUnavailable:
            return False
        try:
            await forward_http(
                self._upstream, conn, scope, receive, send, timeout=timeout, trailers=True
            )
        except ForwardTimedOut as exc:
            log.warning("%s", exc)
            await respond(scope, send, GATEWAY_TIMEOUT.status, GATEWAY_TIMEOUT.message)
        except ForwardFailed as exc:
            log.warning("%s", exc)
            await respond(scope, send, BAD_GATEWAY.status, BAD_GATEWAY.message)
        except BadRequest:
            await respond(scope, send, BAD_HOST.status, BAD_HOST.message)
        except ClientGone:
            pass
        return True

    async def _connect_direct(
        self, service: str, tenant: str, *, known: bool = False
    ) -> tuple[Target, Connection] | Rejected | OwnedElsewhere | _Moving:
        """Find (or wake) ``service:tenant`` and connect; wait out a restart (15 s).

        While it waits, an instance that turns out stopped (not restarting) is woken.
        On a fleet node, a wake that finds the instance is another node's returns that,
        and an instance that is being moved away is never woken: :data:`_MOVING`.
        ``known``: its row names this node (woken whatever ``may_wake`` says).
        """
        target = self._backends.target(service, tenant)
        if target is None:
            if self.moves.moving(f"{service}:{tenant}"):
                return _MOVING
            if not (known or self._backends.may_wake(service, tenant)):
                return NOT_FOUND
            woken = await self._wake(service, tenant)
            if isinstance(woken, (Rejected, OwnedElsewhere)):
                return woken
            target = woken
        conn = await self._probe(target)
        if conn is not None:
            return target, conn
        rechecked = -math.inf
        with trio.move_on_after(RETRY_DEADLINE_SECONDS):
            while True:
                await trio.sleep(RETRY_INTERVAL_SECONDS)
                backends = self._backends  # the leader's, if this server became the leader
                again = backends.target(service, tenant)
                if again is None and self.moves.moving(f"{service}:{tenant}"):
                    return _MOVING  # stopped to be moved: never woken here meanwhile
                now = trio.current_time()
                if again is None and self._fleet is not None and now - rechecked >= RECHECK_SECONDS:
                    # gone from this process's rows: moved to another node (the old
                    # process stops once the new one runs)?
                    rechecked = now
                    owner = await self._fleet.recheck(f"{service}:{tenant}")
                    if isinstance(owner, Peer):
                        return OwnedElsewhere(f"{service}:{tenant}", owner.node)
                if again is None and backends.may_wake(service, tenant):
                    woken = await self._wake(service, tenant)
                    if isinstance(woken, (Rejected, OwnedElsewhere)):
                        return woken
                    again = woken
                if again is not None:
                    conn = await self._probe(again)
                    if conn is not None:
                        return again, conn
        log.warning(
            "%s:%s did not accept connections for %g s", service, tenant, RETRY_DEADLINE_SECONDS
        )
        return UNAVAILABLE

    async def _wake(self, service: str, tenant: str) -> Target | Rejected | OwnedElsewhere:
        try:
            return await self._backends.wake(service, tenant)
        except OwnedElsewhere as exc:
            if self._fleet is None:  # pragma: no cover - only a fleet node's store says so
                return UNAVAILABLE
            return exc
        except RestartPending as exc:
            # logged at debug: a client retrying a tenant in backoff would fill the log
            log.debug("%s", exc)
            return attrs.evolve(UNAVAILABLE, retry_after_seconds=exc.retry_after_seconds)
        except InstanceFailed as exc:
            log.debug("%s", exc)  # the failure itself was logged once, as an event
            return UNAVAILABLE
        except TenementError as exc:
            log.warning("waking %s:%s failed: %s", service, tenant, exc)
            return UNAVAILABLE

    async def _connect_weighted(self, service: str) -> tuple[Target, Connection] | Rejected:
        """Weighted pick; if it is dead, the other instances with weight > 0 in order."""
        targets = self._backends.weighted_targets(service)
        picked = weighted_pick(targets, self._rng)
        if picked is None:
            return UNAVAILABLE
        conn = await self._probe(picked)
        if conn is not None:
            return picked, conn
        for target in fallback_order(targets, picked):
            conn = await self._probe(target)
            if conn is not None:
                return target, conn
        return UNAVAILABLE

    async def _probe(self, target: Target) -> Connection | None:
        """A connection to ``target`` within :data:`PROBE_SECONDS`, or None if it is dead.

        A live pooled connection proves the instance alive without a connect.
        """
        address = Address.of(target)
        conn = self._upstream.take_idle(address)
        if conn is not None:
            return conn
        with trio.move_on_after(PROBE_SECONDS):
            try:
                return await self._upstream.open(address)
            except UpstreamUnavailable:
                return None
        return None

    async def _answer(self, scope: Scope, send: Send, answer: Rejected) -> None:
        self.metrics.own_response(answer.status)
        await respond(
            scope, send, answer.status, answer.message, retry_after=answer.retry_after_seconds
        )

    def statistics(self) -> ProxyStatistics:
        """Requests per instance and the connection pool's counters."""
        own = self.metrics.statistics()
        pool = self._upstream.statistics()
        return ProxyStatistics(
            series=own.series,
            requests_total=own.requests_total,
            responses_by_status=own.responses_by_status,
            connections_opened=pool.connections_opened,
            connections_reused=pool.connections_reused,
            idle_connections=pool.idle_connections,
        )

    async def aclose(self) -> None:
        """Close idle tenant connections. Idempotent."""
        await self._upstream.aclose()


@attrs.frozen
class _PeerTarget:
    """A tenant on another node, as the proxy's metrics and logs name it."""

    instance_id: str
    service: str
    tenant: str
    port: int | None = None
    socket: str = ""
    weight: int = 0


class _Moving:
    """What :meth:`Proxy._connect_direct` returns for an instance being moved away."""


_MOVING = _Moving()


def _moved(fleet: Owners | None, instance_id: str) -> bool:
    """Whether this process's fleet map saw ``instance_id`` change node a moment ago."""
    return fleet is not None and fleet.moved_recently(instance_id)


def _still_moving(instance_id: str) -> Rejected:
    return Rejected(
        503,
        f"Service temporarily unavailable: {instance_id} is being moved to another fleet "
        "node; retry in a moment",
        retry_after_seconds=1,
    )


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


#: what :meth:`Proxy._answer` needs to know of an express request's scope
_HTTP_SCOPE: Scope = {"type": "http"}


def _failure(target: Target, exc: TenementError) -> Rejected:
    """The answer for a forward that failed before the response head, logged."""
    if isinstance(exc, ForwardTimedOut):
        log.warning("%s: %s", target.instance_id, exc)
        return GATEWAY_TIMEOUT
    if isinstance(exc, ForwardFailed):
        log.warning("%s: %s", target.instance_id, exc)
        return BAD_GATEWAY
    log.debug("%s: %s", target.instance_id, exc)
    return BAD_HOST


async def respond(
    scope: Scope, send: Send, status: int, text: str, *, retry_after: int | None = None
) -> None:
    """Answer with a short plain-text body (or refuse a WebSocket with that status),
    with a ``Retry-After`` of ``retry_after`` seconds when given."""
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if scope["type"] == "websocket":
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {"type": "websocket.http.response.start", "status": status, "headers": headers}
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
