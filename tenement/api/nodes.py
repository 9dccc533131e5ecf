"""``GET /api/nodes``: the fleet's nodes as the shared database knows them (admin)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.api.errors import ApiError
from tenement.shown import shown
from tenement.store.drain import DEFAULT_PARALLEL, MAX_PARALLEL
from tenement.types import Send


def node_json(row: Any, held: int = 0) -> dict[str, Any]:
    """A node row as the API shows it; times are the database's epoch seconds. ``held``:
    the instance rows naming it, stopped ones too (what a drain has left to move)."""
    return {
        "name": row.name,
        "advertise": row.advertise,
        "version": row.version,
        "state": row.state,
        "started_at": _finite(row.started_at),
        "heartbeat_at": _finite(row.heartbeat_at),
        "silent_secs": None if _finite(row.silent_s) is None else max(row.silent_s, 0.0),
        "cpus": row.cpus,
        "memory_total_bytes": row.memory_total,
        "memory_available_bytes": row.memory_available,
        "instances": row.instances,
        "down_at": _finite(row.down_at),
        "down_by": row.down_by,
        "instances_held": held,
        "drain_parallel": (row.drain_parallel or DEFAULT_PARALLEL)
        if row.state == "draining"
        else None,
    }


def _finite(seconds: float | None) -> float | None:
    """None for NaN and the infinities, which PostgreSQL's double precision stores (a
    hostile or broken peer may write them) and JSON has no word for."""
    return seconds if seconds is not None and math.isfinite(seconds) else None


async def list_nodes(api: ApiContext, request: Request, send: Send) -> http.Response:
    request.require_admin("The node list requires admin token")
    store = api.store
    if store.node is None:  # a single host: no [fleet], nothing to list
        return http.json_response({"fleet": False, "node": None, "nodes": []})
    rows = await store.run(store.list_nodes)
    held = await store.run(store.rows_per_node)
    return http.json_response(
        {
            "fleet": True,
            "node": store.node,
            "nodes": [node_json(row, held.get(row.name, 0)) for row in rows],
        }
    )


def _fleet_store(api: ApiContext, what: str) -> Any:
    if api.store.node is None or api.relay is None:
        raise ApiError(
            400,
            f"This server is not a fleet node (no [fleet] in its tenement.toml): {what} "
            "is for the nodes of a fleet (docs/fleet.md)",
        )
    return api.store


def _allowed(api: ApiContext) -> Callable[[str], Collection[str] | None]:
    supervisor = api.supervisor

    def allowed(name: str) -> Collection[str] | None:
        service = supervisor.service(name) if supervisor is not None else None
        return service.nodes if service is not None else None

    return allowed


async def drain(api: ApiContext, request: Request, send: Send) -> http.Response:
    """``POST /api/nodes/{name}/drain``: mark the node draining; it moves its tenants
    away itself (``server/drain.py``), from the rows, ``parallel`` at a time, until it
    holds none. Asked again of a draining node, a ``parallel`` given changes it."""
    request.require_admin("Draining a node requires the admin token")
    name = request.params["name"]
    parallel = _parallel(await _optional_json(request))
    store = _fleet_store(api, "ten drain")
    assert api.relay is not None
    asked = await store.run(store.drain_node, name, api.relay.node_timeout, _allowed(api), parallel)
    node = asked.node
    if node is None:
        raise ApiError(
            400,
            f"Invalid node '{shown(name)}': it is not a node of this fleet; its nodes are "
            f"{', '.join(asked.nodes) or 'none'} (ten nodes lists them)",
        )
    if not asked.alive:
        raise ApiError(
            409,
            f"Fleet node {node.name} is {node.state}, not up: only a live node is drained "
            f"(its tenants move from it); a down node's tenants failed over or wait for it",
        )
    if asked.alone:
        raise ApiError(
            409,
            f"Cannot drain fleet node {node.name}: it is the only live node of the fleet, so "
            f"its {asked.left} instance(s) would have nowhere to go; start another node "
            "first. Nothing was moved",
        )
    if asked.stuck:
        shown_ids = ", ".join(asked.stuck[:10]) + (" …" if len(asked.stuck) > 10 else "")
        raise ApiError(
            409,
            f"Cannot drain fleet node {node.name}: {len(asked.stuck)} of its instance(s) "
            f"would have nowhere to go (no other live node their [service.X] nodes allow): "
            f"{shown_ids}; start another node first. Nothing was moved",
        )
    return http.json_response(
        {
            "node": node.name,
            "state": node.state,
            "already": asked.already,
            "instances_left": asked.left,
            "parallel": asked.parallel,
        }
    )


async def _optional_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object; none at all (an older ``ten drain``) is ``{}``."""
    if http.header(request.scope, b"content-type") is None:
        if await http.read_body(request.receive):
            raise ApiError(415, "Expected request with `Content-Type: application/json`")
        return {}
    return await request.json()


def _parallel(body: dict[str, Any]) -> int | None:
    """The body's ``parallel`` (None: not given), checked to be 1 to :data:`MAX_PARALLEL`."""
    if body.get("parallel") is None:
        return None
    value = http.field(body, "parallel", int)
    if not 1 <= value <= MAX_PARALLEL:
        shown_value = str(value) if len(str(value)) <= 40 else str(value)[:40] + "..."
        raise ApiError(
            422,
            f"field `parallel` must be an integer from 1 to {MAX_PARALLEL} (how many tenants "
            f"move at once), got {shown_value}",
        )
    return int(value)


async def undrain(api: ApiContext, request: Request, send: Send) -> http.Response:
    """``POST /api/nodes/{name}/undrain``: a draining node goes back to up (the move under
    way finishes; no other starts). Harmless for a node that is not draining."""
    request.require_admin("Undraining a node requires the admin token")
    name = request.params["name"]
    store = _fleet_store(api, "ten undrain")
    node, was = await store.run(store.undrain_node, name)
    if node is None:
        names = ", ".join(row.name for row in await store.run(store.list_nodes))
        raise ApiError(
            400,
            f"Invalid node '{shown(name)}': it is not a node of this fleet; its nodes are "
            f"{names or 'none'} (ten nodes lists them)",
        )
    left = (await store.run(store.rows_per_node)).get(node.name, 0)
    return http.json_response(
        {"node": node.name, "state": node.state, "was_draining": was, "instances_left": left}
    )
