"""A fleet node's API acting on another node's instance: the call is relayed to its owner.

A mutation (spawn, stop, restart, weight) for an instance another node runs, or a read
that only the node running it can answer (its health, storage, request history, and the
live stream of its log), is sent to that node's advertised address with the fleet's hop
header and the caller's own ``Authorization`` (tokens live in the shared database: the
owner authenticates the caller itself, with the scope of its token), and the owner's
answer is returned as it is; a stream is passed on as it comes. A relayed call is never
relayed again: the owner answers it alone, or 508. What the shared database holds (logs,
an instance's events) any node answers itself.

The transport is the server's (:class:`Relay`, ``tenement/server/relay.py``); this module
holds what the API decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from tenement.api import http
from tenement.api.errors import ApiError
from tenement.config import Service
from tenement.types import Receive, Scope, Send

#: the header a relayed call carries (the proxy's hop header: the same secret)
HOP_HEADER = b"x-tenement-hop"
#: the caller's headers a relayed call keeps
KEPT_HEADERS = (b"authorization", b"content-type")
#: the query parameter of a stream ticket: used up by the node called, never relayed
TICKET_PARAM = b"ticket"


class RelayFailed(Exception):
    """The owner could not be asked (down, unreachable, silent): 503 with ``Retry-After``."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_seconds = retry_after_seconds


class Relay(Protocol):
    """What the API needs of the fleet to relay a call."""

    @property
    def node(self) -> str:
        """This node's name."""

    def hop(self, headers: list[tuple[bytes, bytes]]) -> str:
        """``"none"``, ``"valid"`` (a relayed call: the fleet secret) or ``"forged"``."""

    async def owner_of(self, instance_id: str) -> str | None:
        """The other node whose row holds ``instance_id``, else None (the fleet
        directory's answer: from memory, but for a bounded number of lookups)."""

    def node_state(self, node: str) -> str | None:
        """``"up"``, ``"down"``, ``"draining"`` (up, but taking no new tenant), or None
        for a node this one does not know."""

    def live_nodes(self) -> Sequence[str]:
        """The nodes that are up, this one included, sorted."""

    @property
    def node_timeout(self) -> float:
        """``[fleet] node_timeout``: how long a node may be silent and still be live."""

    async def send(
        self, node: str, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> http.Response:
        """The owner's answer to the call, as it is.

        Raises:
            RelayFailed: the node is down, refuses the connection or does not answer.
        """

    async def stream(
        self,
        node: str,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        """Pass the owner's answer to a call without a body on to ``send`` as it comes,
        until the owner ends it or the caller leaves (``http.disconnect`` on ``receive``).

        Raises:
            RelayFailed: before anything was sent, as :meth:`send`.
        """


FORGED = ApiError(
    403,
    "Forbidden: this request carries the fleet's hop header (X-Tenement-Hop) without the "
    "fleet secret; only tenement nodes of this fleet may send it",
)


def loop_detected(instance_id: str, node: str) -> http.Response:
    return http.error_response(
        508,
        f"Loop detected: another fleet node relayed this call for {instance_id} here, but "
        f"fleet node {node} runs it; a call is relayed once, never again",
    )


def check_target(relay: Relay, node: str) -> None:
    """Refuse a ``node`` to spawn on that is unknown or down, naming the live ones."""
    state = relay.node_state(node)
    if state == "up":
        return
    if state == "draining":
        raise ApiError(
            409,
            f"Fleet node {node} is being drained (ten drain {node}): nothing new starts "
            f"there; spawn without --node, or ten undrain {node} first",
        )
    live = ", ".join(relay.live_nodes())
    what = "is not a node of this fleet" if state is None else "is down"
    raise ApiError(
        400,
        f"Invalid node '{node}': it {what}; the live nodes are {live} (ten nodes lists them)",
    )


def check_allowed(relay: Relay, service: Service, node: str) -> None:
    """Refuse a ``node`` that ``[service.X] nodes`` leaves out (the app is not installed
    there), naming the live nodes it allows."""
    if service.allows(node):
        return
    live = [name for name in relay.live_nodes() if service.allows(name)]
    raise ApiError(
        400,
        f"Invalid node '{node}' for {service.name}: [service.{service.name}] nodes = "
        f"{', '.join(service.nodes or ())} (the app runs there only); the live ones are "
        f"{', '.join(live) or 'none'} (spawn with one of them, or without --node)",
    )


def _relayed(scope: Scope, authorization: str | None) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The target and headers of the call of ``scope`` as relayed: ``authorization`` (the
    token behind a stream ticket, which only this node could redeem) replaces the
    caller's header, and the ticket stays here."""
    headers = [(name, value) for name, value in scope["headers"] if name.lower() in KEPT_HEADERS]
    if authorization is not None:
        headers = [(name, value) for name, value in headers if name.lower() != b"authorization"]
        headers.append((b"authorization", authorization.encode("latin-1")))
    target = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    if query and authorization is not None:
        kept = [item for item in query.split(b"&") if item.split(b"=")[0] != TICKET_PARAM]
        query = b"&".join(kept)
    if query:
        target += b"?" + query
    return target.decode("latin-1"), headers


def unavailable(exc: RelayFailed) -> http.Response:
    answer = http.error_response(503, exc.message)
    return attrs.evolve(answer, headers=((b"retry-after", str(exc.retry_after_seconds).encode()),))


async def relay_call(
    relay: Relay, node: str, scope: Scope, body: bytes, *, authorization: str | None = None
) -> http.Response:
    """Send the call of ``scope`` (with ``body``, already read) to ``node``."""
    target, headers = _relayed(scope, authorization)
    try:
        return await relay.send(node, scope["method"], target, headers, body)
    except RelayFailed as exc:
        return unavailable(exc)


async def relay_stream(
    relay: Relay,
    node: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    authorization: str | None = None,
) -> http.Response | None:
    """Pass the answer of ``node`` to the call of ``scope`` (a GET) on as it comes; a
    503 to send instead when ``node`` cannot be asked."""
    target, headers = _relayed(scope, authorization)
    try:
        await relay.stream(node, scope["method"], target, headers, receive, send)
    except RelayFailed as exc:
        return unavailable(exc)
    return None


def replay(body: bytes) -> Receive:
    """An ASGI receive that gives ``body`` (read once, to relay it) to the handler."""
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
