"""``POST /api/instances/{id}/move``, ``DELETE`` of it (abort the move under way), and
what the destination of a move is sent.

The move, and its abort, are the owner's to do (``tenement/server/moves.py``): a call to
any other node is relayed to it. The owner then calls the destination itself, node to
node, as a relayed call (the fleet secret, and the caller's admin token):

- ``POST /api/fleet/storage/{service}/{tenant}/check?bytes=N``: 204 if the data fits,
  507 with the numbers otherwise (asked before the tenant stops);
- ``PUT /api/fleet/storage/{service}/{tenant}?sha256=HEX``: the data, one tar file; 200
  once it is checked and in place. The sum may instead come last, as the trailer field
  ``X-Tenement-Sha256`` of a chunked body: a node sends the data as it packs it;
- ``DELETE /api/fleet/storage/{service}/{tenant}?sha256=HEX``: the tree taken in by
  that PUT is removed, when the move failed after it (it must never start there);
- ``POST /api/fleet/storage/{service}/{tenant}/start``: 204 once the destination has
  looked at its rows, starting the tenant a drain handed over to it (it would at its
  next look, within a second, else); ``?from=NODE``: a stateless tenant, which that
  node serves until it runs here (the destination sends its requests there meanwhile).

All are refused (403) without the fleet secret: only nodes of the fleet send them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.api.errors import ApiError
from tenement.api.instances import check_name, raise_if_elsewhere
from tenement.supervisor import InstanceNotFound, OwnedElsewhere
from tenement.types import Send

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the trailer field that gives the data's SHA-256 at the end of a chunked body
SHA256_TRAILER = b"x-tenement-sha256"


class Mover(Protocol):
    """What the API needs of a fleet node to move tenants (``server/moves.py``)."""

    async def move(
        self, instance_id: str, to: str, authorization: bytes, keep_source: int | None = None
    ) -> dict[str, Any]:
        """Move this node's ``instance_id`` to node ``to``, keeping the old copy of its
        data ``keep_source`` seconds (the node's ``keep_moved`` when None); what was done."""

    @property
    def node(self) -> str:
        """This node's name."""

    async def abort(self, instance_id: str) -> dict[str, Any]:
        """Abort the move of ``instance_id`` under way from this node; what was done."""

    def moving(self, instance_id: str) -> bool:
        """Whether ``instance_id`` is being moved away from this node now."""

    def progress(self) -> dict[str, dict[str, Any]]:
        """The moves under way from this node, by instance (``ten ps`` shows them)."""

    def check_room(self, service: str, tenant: str, size: int) -> None:
        """Raise (507) unless ``size`` bytes of data for the tenant fit here."""

    async def look_now(self, instance_id: str | None = None, source: str | None = None) -> None:
        """Look at this node's rows now, starting what was handed over to it;
        ``source`` serves ``instance_id`` until it runs here."""

    async def receive(
        self,
        service: str,
        tenant: str,
        sha256: Callable[[], str],
        chunks: AsyncIterator[bytes],
    ) -> dict[str, Any]:
        """Take in the tenant's data (a tar file, streamed); ``sha256()``, once it all
        arrived, is the sum it must have."""

    async def discard(self, service: str, tenant: str, sha256: str) -> dict[str, Any]:
        """Remove the tree taken in (from the archive ``sha256``) for a failed move."""


async def move(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    request.require_admin("Moving an instance needs the admin token")
    body = await request.json()
    to = http.field(body, "to", str)
    keep_source = None
    if body.get("keep_source") is not None:  # seconds the old node keeps its copy
        keep_source = http.non_negative_int(body, "keep_source", maximum=http.MAX_KEEP_SOURCE)
    if api.mover is None:
        raise ApiError(
            400,
            "This server is not a fleet node (no [fleet] in its tenement.toml): an instance "
            "moves between the nodes of a fleet (docs/fleet.md)",
        )
    await raise_if_elsewhere(api, str(ref))
    report = await api.mover.move(str(ref), to, _authorization(request), keep_source)
    return http.json_response(report)


async def abort_move(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    request.require_admin("Aborting a move needs the admin token")
    iid = str(ref)
    if api.mover is None:
        raise ApiError(
            400,
            "This server is not a fleet node (no [fleet] in its tenement.toml): there is "
            "no move to abort",
        )
    if not api.mover.moving(iid):
        if api.supervisor.get(iid) is None:
            owner = await api.relay.owner_of(iid) if api.relay is not None else None
            if owner is not None:
                raise OwnedElsewhere(iid, owner)  # the move is its owner's: relayed there
            raise InstanceNotFound(iid)
        raise ApiError(
            409,
            f"No move of {iid} is under way: it runs on fleet node {api.mover.node} "
            f"(ten move {iid} --to NODE moves it)",
        )
    return http.json_response(await api.mover.abort(iid))


async def check_room(api: ApiContext, request: Request, send: Send) -> http.Response:
    mover, service, tenant = _from_a_node(api, request)
    raw = request.query().get("bytes", "")
    if not raw.isdigit():
        raise ApiError(400, f"Invalid bytes '{raw}': the size of the data, in bytes")
    mover.check_room(service, tenant, int(raw))
    return http.empty(204)


async def receive_data(api: ApiContext, request: Request, send: Send) -> http.Response:
    mover, service, tenant = _from_a_node(api, request)
    given = _sha256(request) if "sha256" in request.query() else None
    trailers: dict[bytes, bytes] = {}

    def sha256() -> str:
        if given is not None:
            return given
        sent = trailers.get(SHA256_TRAILER, b"").decode("latin-1")
        if not _SHA256.fullmatch(sent):
            raise ApiError(
                400,
                f"Invalid sha256 '{sent[:80]}': the data's SHA-256 comes as ?sha256= or as the "
                "chunked body's trailer X-Tenement-Sha256, 64 lowercase hex digits",
            )
        return sent

    answer = await mover.receive(service, tenant, sha256, _body(request, trailers))
    return http.json_response(answer)


async def start_handed(api: ApiContext, request: Request, send: Send) -> http.Response:
    mover, service, tenant = _from_a_node(api, request)
    # from a stateless move: the node that serves the tenant until it runs here
    source = request.query().get("from") or None
    await mover.look_now(f"{service}:{tenant}", source)
    return http.empty(204)


async def discard_data(api: ApiContext, request: Request, send: Send) -> http.Response:
    mover, service, tenant = _from_a_node(api, request)
    return http.json_response(await mover.discard(service, tenant, _sha256(request)))


def _sha256(request: Request) -> str:
    sha256 = request.query().get("sha256", "")
    if not _SHA256.fullmatch(sha256):
        raise ApiError(400, f"Invalid sha256 '{sha256[:80]}': 64 lowercase hex digits")
    return sha256


def _from_a_node(api: ApiContext, request: Request) -> tuple[Mover, str, str]:
    """The mover and the tenant, for a call only another node of the fleet may make."""
    if api.mover is None or api.relay is None:
        raise ApiError(404, "Not found: this server is not a fleet node")
    if api.relay.hop(request.scope["headers"]) != "valid":
        raise ApiError(
            403, "Forbidden: only the nodes of this fleet send a tenant's data (the fleet secret)"
        )
    request.require_admin("Sending a tenant's data needs the admin token")
    service = check_name("process name", request.params["service"])
    tenant = check_name("instance id", request.params["tenant"])
    return api.mover, service, tenant


async def _body(request: Request, trailers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
    """The body's pieces; its trailer fields, if any, go into ``trailers`` at its end."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "The sending node went away before the data was whole")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            trailers.update(message.get("trailers", ()))
            return


def _authorization(request: Request) -> bytes:
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            return bytes(value)
    return b""
