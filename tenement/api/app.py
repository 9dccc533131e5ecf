"""The API as one ASGI app: public paths, authentication, a small router.

Order per request (reference §2): public paths answer without a token; every other path,
known or not, needs a valid token first (an unknown path without one is 401, with one
404 ``Not found``); then the route runs. Handlers raise
:class:`~tenement.errors.TenementError`; :mod:`tenement.api.errors` picks the status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from tenement.api import http, relay
from tenement.api.auth import Authenticator, Identity, RateLimited, StreamTickets, Unauthorized
from tenement.api.errors import ApiError, status_for
from tenement.api.fleet_list import PeerAnswers
from tenement.config import Settings
from tenement.errors import TenementError
from tenement.ids import InstanceRef
from tenement.supervisor import OwnedElsewhere
from tenement.types import Receive, Scope, Send

log = logging.getLogger(__name__)

#: paths that need no token (reference), plus our OpenAPI document
PUBLIC_PATHS = frozenset({"/", "/health", "/metrics", "/api/telemetry", "/api/openapi.json"})
PUBLIC_PREFIXES = ("/assets/",)
#: the paths a stream ticket opens (see :class:`~tenement.api.auth.StreamTickets`): the
#: read-only event streams, which a browser's EventSource opens without a header
TICKET_PATHS = frozenset({"/api/logs/stream", "/api/instances/stream"})
#: the paths a node may call with the fleet secret and no token (``api/moves.py``)
NODE_PATHS = "/api/fleet/storage/"
#: a refused forged hop is logged at most this often
FORGED_LOG_SECONDS = 10.0


@attrs.frozen(kw_only=True)
class ApiContext:
    """What every handler may use; built once by :func:`tenement.api.build_api`."""

    supervisor: Any
    store: Any
    settings: Settings
    domain: str
    proxy_metrics: Any
    ready: Callable[[], bool]
    authenticator: Authenticator
    keepalive_seconds: float
    tickets: StreamTickets = attrs.field(factory=StreamTickets)
    #: the request history (:class:`tenement.api.history.History`); None keeps none
    history: Any = None
    #: the built-in TLS's live state for /api/tls/status (None: no TLS in this server)
    tls_status: Callable[[], dict[str, Any] | None] | None = None
    #: a fleet node's way to relay a call to the node that runs its instance (None: a
    #: single host, where another node's instance cannot be)
    relay: relay.Relay | None = None
    #: a fleet node's mover of tenants to other nodes (None: a single host)
    mover: Any = None
    #: a fleet node's peers' last answers to its fleet-wide lists (see
    #: :mod:`tenement.api.fleet_list`)
    peer_answers: PeerAnswers = attrs.field(factory=PeerAnswers)


@attrs.frozen
class Request:
    """One API request: the ASGI scope and receive, who sent it, and the path parameters."""

    scope: Scope
    receive: Receive
    identity: Identity | None
    params: dict[str, str]

    @property
    def tenant(self) -> str | None:
        """The tenant of a tenant token; None for the admin (or a public path)."""
        return self.identity.tenant if self.identity is not None else None

    def query(self) -> dict[str, str]:
        return http.query(self.scope)

    async def json(self) -> dict[str, Any]:
        return await http.read_json_object(self.scope, self.receive)

    def instance(self) -> InstanceRef:
        """The ``{id}`` path parameter, parsed and checked against a tenant token.

        Raises:
            InvalidInstanceId: 400 for an id that is not ``service:tenant``.
            ApiError: 403 when a tenant token names another tenant's instance.
        """
        ref = InstanceRef.parse(self.params["id"])
        self.require_tenant(ref.tenant)
        return ref

    def require_tenant(self, tenant: str) -> None:
        if self.tenant is not None and tenant != self.tenant:
            raise ApiError(403, f"Tenant token can only access instance '{self.tenant}'")

    def require_admin(self, message: str) -> None:
        if self.tenant is not None:
            raise ApiError(403, message)


#: a handler answers with a Response, or sends its own (streaming) response and returns None
Handler = Callable[[ApiContext, Request, Send], Awaitable[http.Response | None]]


@attrs.frozen
class Route:
    method: str
    path: str
    handler: Handler
    #: a call about one instance that only the fleet node running it can answer (a
    #: mutation, or a read of what it alone holds): relayed to that node
    relayable: bool = False
    #: its answer is a stream (relayed as it comes, not read whole first)
    streamed: bool = False
    segments: tuple[str, ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.path.strip("/").split("/")))

    def match(self, parts: tuple[str, ...]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params = {}
        for pattern, part in zip(self.segments, parts, strict=True):
            if pattern.startswith("{"):
                if not part:
                    return None
                params[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return params


async def not_found(api: ApiContext, request: Request, send: Send) -> http.Response:
    """The default handler: a path no route knows (asked with a valid token)."""
    return http.text(404, "Not found")


class ApiApp:
    """The ASGI application (HTTP only; lifespan is acknowledged, websockets refused).

    Args:
        routes: tried in order; a path that matches one with another method is 405.
        default: answers a path no route matches, like starlette's ``Router(default=)``
            (the dashboard's SPA fallback is passed in here, so this module need not
            know the dashboard).
    """

    def __init__(
        self, context: ApiContext, routes: list[Route], *, default: Handler = not_found
    ) -> None:
        self.context = context
        self.routes = routes
        self.default = default
        #: forged hops refused since the last line logged, and when that was
        self._forged_unlogged = 0
        self._forged_logged_at = -FORGED_LOG_SECONDS

    def _log_forged(self, path: str, scope: Scope) -> None:
        """Log a refused forged hop, at most once per :data:`FORGED_LOG_SECONDS` (a
        client that sends them again and again must not fill the log)."""
        now = trio.current_time()
        if now - self._forged_logged_at < FORGED_LOG_SECONDS:
            self._forged_unlogged += 1
            return
        client = scope.get("client")
        log.warning(
            "refused an API call to %s from %s: hop header without the fleet secret "
            "(and %d more since the last such line)",
            path,
            client[0] if client else "?",
            self._forged_unlogged,
        )
        self._forged_logged_at = now
        self._forged_unlogged = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = await self._respond(scope, receive, send)
        if response is not None:
            await (await http.compressed(response, scope))(send)

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> http.Response | None:
        path = scope["path"]
        identity = None
        #: the token behind a redeemed stream ticket: what a relayed stream carries
        ticket_token = None
        fleet = self.context.relay
        hop = fleet.hop(scope["headers"]) if fleet is not None else "none"
        if hop == "forged":
            self._log_forged(path, scope)
            return http.error_response(relay.FORGED.status, relay.FORGED.message)
        if not _is_public(path):
            authorization = http.header(scope, b"authorization")
            ticket = http.query(scope).get("ticket") if path in TICKET_PATHS else None
            if authorization is None and hop == "valid" and path.startswith(NODE_PATHS):
                # a node's own call (a drain moving its tenants, maybe after its server
                # restarted: no caller's token): the fleet secret vouches for it, on the
                # paths that only take a tenant's data from another node
                identity = Identity()
            elif authorization is None and ticket is not None:
                redeemed = self.context.tickets.redeem_with_token(ticket, trio.current_time())
                if redeemed is None:
                    return http.empty(401)
                identity, ticket_token = redeemed
            else:
                client = scope.get("client")
                client_key = client[0] if client else "local"
                try:
                    identity = await self.context.authenticator.authenticate(
                        authorization, client_key
                    )
                except Unauthorized:
                    return http.empty(401)
                except RateLimited as exc:
                    return http.empty(429, ((b"retry-after", str(exc.retry_after).encode()),))
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        parts = tuple(path.strip("/").split("/"))
        allowed = []
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            body = b""
            try:
                if fleet is not None and route.relayable and not route.streamed:
                    body = await http.read_body(receive)
                    receive = relay.replay(body)
                request = Request(scope, receive, identity, params)
                return await route.handler(self.context, request, send)
            except OwnedElsewhere as exc:
                if fleet is None or not route.relayable:
                    return http.error_response(status_for(exc), exc.message)
                if hop == "valid":
                    return relay.loop_detected(exc.instance_id, exc.node)
                if route.streamed:
                    return await relay.relay_stream(
                        fleet, exc.node, scope, receive, send, authorization=ticket_token
                    )
                return await relay.relay_call(
                    fleet, exc.node, scope, body, authorization=ticket_token
                )
            except TenementError as exc:
                status = status_for(exc)
                if status >= 500:
                    log.warning("%s %s failed: %s", method, path, exc)
                return http.error_response(status, exc.message)
        if allowed:
            if "GET" in allowed:
                allowed.append("HEAD")
            return http.empty(405, ((b"allow", ",".join(allowed).encode()),))
        return await self.default(self.context, Request(scope, receive, identity, {}), send)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
