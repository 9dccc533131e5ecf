"""``/api/instances``: list, spawn, stop, restart, weight, health and storage.

A tenant token reaches only its own instances (the reference lets it read any
instance's storage; we scope that too). Audit rows are the supervisor's job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from typing import Any

import attrs

from tenement.api import conditional, fleet_list, http
from tenement.api.app import ApiContext, Request
from tenement.api.errors import ApiError
from tenement.api.relay import Relay, check_allowed, check_target
from tenement.config import Service
from tenement.ids import NAME_RULE, is_valid_name
from tenement.supervisor import OwnedElsewhere
from tenement.types import Send

log = logging.getLogger(__name__)

#: the largest weight; larger requested weights are capped to it (reference)
MAX_WEIGHT = 100


def listen_address(view: Any) -> str:
    """Where an instance listens: ``127.0.0.1:<port>`` for TCP apps, else its socket path."""
    return f"127.0.0.1:{view.port}" if view.port is not None else view.socket


def live_views(supervisor: Any, tenant: str | None = None) -> list[Any]:
    """The instances that are not stopped (a tenant sees only its own), sorted by id."""
    views = [
        view
        for view in supervisor.instances()
        if view.state != "stopped" and (tenant is None or view.tenant == tenant)
    ]
    return sorted(views, key=lambda view: view.id)


def instance_json(view: Any, usage: Any = None) -> dict[str, Any]:
    """An instance as the API shows it; ``usage`` is its
    :class:`~tenement.api.history.Usage` from the server's last sample, if any."""
    return {
        "id": view.id,
        "socket": listen_address(view),
        "uptime_secs": view.uptime_secs,
        "idle_secs": view.idle_secs,
        "restarts": view.restarts,
        "health": str(view.health),
        "storage_used_bytes": view.storage_used_bytes,
        "storage_quota_bytes": view.storage_quota_bytes,
        "weight": view.weight,
        # ours (added in 0.3.0)
        "service": view.service,
        "tenant": view.tenant,
        "state": view.state,
        "pid": view.pid,
        "port": view.port,
        "active_connections": view.active_connections,
        "memory_bytes": usage.memory_bytes if usage is not None else None,
        "cpu_percent": usage.cpu_percent if usage is not None else None,
    }


def spawn_json(instance: str, view: Any) -> dict[str, Any]:
    return {"instance": instance, "socket": view.socket, "port": view.port}


def check_name(kind: str, value: str) -> str:
    if not is_valid_name(value):
        raise ApiError(400, f"Invalid {kind} '{value}': must be {NAME_RULE}")
    return value


async def list_instances(api: ApiContext, request: Request, send: Send) -> http.Response:
    """The list, with a weak ETag: an ``If-None-Match`` naming it is answered 304
    without building the list (see :mod:`tenement.api.conditional`). A fleet node
    lists the whole fleet's (:func:`fleet_instances`)."""
    if api.store.node is not None and api.relay is not None:
        return await fleet_instances(api, request)
    if request.scope.get("query_string") and "node" in request.query():
        raise ApiError(
            400,
            f"Invalid node '{request.query()['node']}': this server is not a fleet node "
            "(no [fleet]); list without a node",
        )
    history = api.history
    tag = conditional.etag(
        _shown_signature(api, request.tenant), _usage_signature(history, request.tenant)
    )
    unchanged = conditional.not_modified(request.scope, tag)
    if unchanged is not None:
        return unchanged
    views = live_views(api.supervisor, request.tenant)
    usage = history.usage if history is not None else {}
    listed = [instance_json(view, usage.get(view.id)) for view in views]
    return conditional.tagged(http.json_response(listed), tag)


def _shown_signature(api: ApiContext, tenant: str | None) -> object:
    """What the list shows, for its tag: the admin's, the supervisor's O(1) count of
    changes; a tenant's, the hash of its own instances, so that its tag does not move
    with another tenant's (a 304 would say so)."""
    return api.supervisor.changes() if tenant is None else api.supervisor.signature(tenant)


async def fleet_instances(api: ApiContext, request: Request) -> http.Response:
    """A fleet node's list: its own instances, each live peer's (asked, see
    :mod:`tenement.api.fleet_list`), and the rows of down nodes' orphaned instances and
    of live peers that did not answer. ``?node=NAME`` lists one node's. Asked by a
    peer (the hop header), a node lists only its own."""
    relay = api.relay
    assert relay is not None
    store = api.store
    node: str = store.node
    history = api.history
    # read once: the tag and the list say the same of each move
    moves: dict[str, dict[str, Any]] = api.mover.progress() if api.mover is not None else {}
    local_parts = (
        _shown_signature(api, request.tenant),
        _usage_signature(history, request.tenant),
        # a move's step (its seconds aside: the tag would never hold still)
        tuple((iid, move["step"]) for iid, move in sorted(moves.items())),
    )
    if fleet_list.is_hop(relay, request.scope):
        tag = conditional.etag(*local_parts, node)
        unchanged = conditional.not_modified(request.scope, tag)
        if unchanged is not None:
            return unchanged
        return conditional.tagged(http.json_response(_local_list(api, request, node, moves)), tag)
    wanted = request.query().get("node") if request.scope.get("query_string") else None
    if wanted is not None and relay.node_state(wanted) is None:
        names = ", ".join(row.name for row in await store.run(store.list_nodes))
        raise ApiError(
            400,
            f"Invalid node '{wanted}': it is not a node of this fleet; its nodes are {names} "
            "(ten nodes lists them)",
        )
    peers = [name for name in relay.live_nodes() if name != node and wanted in (None, name)]
    parts = await fleet_list.peer_parts(
        relay, api.peer_answers, peers, "/api/instances", request.scope, request.tenant
    )
    silent = fleet_list.silent(parts)
    records = await store.run(store.orphaned_elsewhere)
    if silent:
        records += await store.run(store.listed_rows_of, silent)
    records = [
        record
        for record in records
        if (request.tenant is None or record.tenant == request.tenant)
        and wanted in (None, record.node)
    ]
    tag = conditional.etag(
        *local_parts,
        wanted,
        tuple((part.node, part.tag) for part in parts),
        tuple((r.instance_id, r.node, r.state, r.restarts_total, r.weight) for r in records),
    )
    headers = fleet_list.silent_header(parts)
    unchanged = conditional.not_modified(request.scope, tag)
    if unchanged is not None:
        return attrs.evolve(unchanged, headers=(*unchanged.headers, *headers))
    listed = [item for part in parts for item in part.items]
    if wanted in (None, node):
        listed += _local_list(api, request, node, moves)
    listed = with_rows(listed, records)
    listed.sort(key=lambda item: (str(item.get("id")), str(item.get("node"))))
    answer = conditional.tagged(http.json_response(listed), tag)
    return attrs.evolve(answer, headers=(*answer.headers, *headers))


def with_rows(listed: list[dict[str, Any]], records: list[Any]) -> list[dict[str, Any]]:
    """``listed`` (what nodes answered) and, once each, the rows of instances no node
    answered for: a node declared down a moment ago is still asked (and is silent, so
    its orphaned rows come twice), and one back in the fleet answers for instances its
    rows still call orphaned."""
    shown = {item["id"] for item in listed}
    merged = list(listed)
    for record in records:
        if record.instance_id not in shown:
            shown.add(record.instance_id)
            merged.append(orphan_json(record))
    return merged


def _local_list(
    api: ApiContext, request: Request, node: str, moves: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """This node's own instances, each naming it; one being moved away (``moves``, the
    mover's progress) is ``moving``, with what its move is doing (``move``), stopped as
    it is for most of the move."""
    usage = api.history.usage if api.history is not None else {}
    views = live_views(api.supervisor, request.tenant)
    shown = {view.id for view in views}
    for iid in moves.keys() - shown:
        view = api.supervisor.get(iid, stopped=True)
        if view is not None and request.tenant in (None, view.tenant):
            views.append(view)
    listed = []
    for view in sorted(views, key=lambda view: view.id):
        item = {**instance_json(view, usage.get(view.id)), "node": node}
        if view.id in moves:
            item.update(state="moving", move=moves[view.id])
        listed.append(item)
    return listed


def _usage_signature(history: Any, tenant: str | None) -> Hashable:
    """What of the sampled usage the list shows: all of it for the admin (a counter
    stands for it); for a tenant, only its own instances', so that its tag does not
    move when another tenant's memory or CPU does (a 304 would tell it so)."""
    if history is None:
        return 0
    if tenant is None:
        changes: int = history.usage_changes
        return changes
    suffix = f":{tenant}"
    return tuple(sorted(item for item in history.usage.items() if item[0].endswith(suffix)))


def orphan_json(record: Any) -> dict[str, Any]:
    """An instance shown from its row: orphaned (its node is down and it may not fail
    over: nothing runs it, so it has no process, socket, usage or uptime), or of a live
    node that did not answer (what only that node knows is unknown)."""
    return {
        "id": record.instance_id,
        "socket": "",
        "uptime_secs": 0,
        "idle_secs": 0,
        "restarts": record.restarts_total,
        "health": "unknown",
        "storage_used_bytes": 0,
        "storage_quota_bytes": None,
        "weight": record.weight,
        "service": record.service,
        "tenant": record.tenant,
        "state": record.state,
        "pid": None,
        "port": None,
        "active_connections": 0,
        "memory_bytes": None,
        "cpu_percent": None,
        "node": record.node,
    }


async def spawn(api: ApiContext, request: Request, send: Send) -> http.Response:
    body = await request.json()
    service = check_name("process name", http.field(body, "process", str))
    tenant = check_name("instance id", http.field(body, "id", str))
    node = http.field(body, "node", str, None)
    request.require_tenant(tenant)
    iid = f"{service}:{tenant}"
    if api.mover is not None and api.mover.moving(iid):
        await raise_if_elsewhere(api, iid)  # 409: being moved
    fleet = api.relay
    if fleet is None:
        if node is not None:
            raise ApiError(
                400,
                f"Invalid node '{node}': this server is not a fleet node (no [fleet]); "
                "spawn without a node",
            )
        view = await api.supervisor.spawn(service, tenant)
        return http.json_response(spawn_json(iid, view))
    svc = api.supervisor.service(service)  # None: the spawn below says "Unknown process"
    if node is None:
        if svc is not None and api.supervisor.get(iid) is None:
            owner = await _place(api, fleet, svc, iid, tenant)
            if owner != fleet.node:
                raise OwnedElsewhere(iid, owner)  # the app relays it there
        view = await api.supervisor.spawn(service, tenant)
        return http.json_response(spawn_json(iid, view))
    if node != fleet.node:
        check_target(fleet, node)
    if svc is not None:
        check_allowed(fleet, svc, node)
    if node != fleet.node:
        here = fleet.node if api.supervisor.get(iid) is not None else None
        holder = here or await fleet.owner_of(iid)
        if holder is not None and holder != node:
            raise _held_elsewhere(iid, holder, node)
        raise OwnedElsewhere(iid, node)  # the app relays it there
    try:
        view = await api.supervisor.spawn(service, tenant)
    except OwnedElsewhere as exc:
        raise _held_elsewhere(iid, exc.node, node) from None
    return http.json_response(spawn_json(iid, view))


async def _place(api: ApiContext, fleet: Relay, svc: Service, iid: str, tenant: str) -> str:
    """The node ``iid`` is to run on: its row's, or one the placement policy chooses now
    among the live nodes the service allows (``tenement/store/placement.py``)."""
    store = api.store
    placed = await store.run(
        store.place_instance, iid, svc.name, tenant, svc.nodes, fleet.node_timeout, time.time()
    )
    if placed.node is None:
        why = (
            "no node has a heartbeat within node_timeout, this one included (is the "
            "database reachable?)"
            if svc.nodes is None
            else f"[service.{svc.name}] nodes = {', '.join(svc.nodes)}, and none of them is up"
        )
        raise ApiError(
            503,
            f"Service temporarily unavailable: no live fleet node may run {svc.name}: {why}; "
            "retry once one is up (ten nodes lists the fleet)",
        )
    if placed.chosen:
        log.info(
            "placed %s on fleet node %s (of %s, by free capacity)",
            iid,
            placed.node,
            ", ".join(placed.live),
        )
    node: str = placed.node
    return node


def _held_elsewhere(iid: str, holder: str, asked: str) -> ApiError:
    """A spawn on node ``asked`` of an instance whose row names node ``holder``: an
    instance stays with the node that first ran it (its data is there)."""
    return ApiError(
        409,
        f"Instance {iid} belongs to fleet node {holder}, not {asked}: an instance stays on "
        f"the node that first ran it; spawn it with --node {holder} or without --node",
    )


async def raise_if_elsewhere(api: ApiContext, iid: str) -> None:
    """Raise :class:`OwnedElsewhere` (the app relays the call) for an instance that does
    not run here and whose row names another fleet node; 409 for one being moved."""
    if api.mover is not None and api.mover.moving(iid):
        raise ApiError(
            409,
            f"Instance {iid} is being moved to another fleet node; retry once it is there "
            "(ten ps shows where it runs)",
        )
    if api.relay is None or api.supervisor.get(iid) is not None:
        return
    owner = await api.relay.owner_of(iid)
    if owner is not None:
        raise OwnedElsewhere(iid, owner)


async def stop(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await raise_if_elsewhere(api, str(ref))
    await api.supervisor.stop(str(ref))
    return http.empty(204)


async def restart(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await raise_if_elsewhere(api, str(ref))
    if api.supervisor.get(str(ref)) is None:
        # As the reference: restarting an instance that is not running starts it.
        view = await api.supervisor.spawn(ref.service, ref.tenant)
    else:
        view = await api.supervisor.restart(str(ref))
    return http.json_response(spawn_json(request.params["id"], view))


async def set_weight(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await raise_if_elsewhere(api, str(ref))
    body = await request.json()
    weight = min(http.non_negative_int(body, "weight"), MAX_WEIGHT)
    applied = await api.supervisor.set_weight(str(ref), weight)
    return http.json_response({"instance": str(ref), "weight": applied})


async def health(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await raise_if_elsewhere(api, str(ref))
    try:
        state = await api.supervisor.check_health(str(ref))
    except LookupError:
        # The reference answers "unknown" for an instance that is not running.
        state = "unknown"
    return http.json_response({"instance": str(ref), "health": str(state)})


async def storage(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await raise_if_elsewhere(api, str(ref))  # its storage is on its node's disk
    info = api.supervisor.storage(str(ref))
    return http.json_response(
        {
            "used_bytes": info.used_bytes,
            "quota_bytes": info.quota_bytes,
            "usage_percent": info.usage_percent if info.quota_bytes is not None else None,
            "path": info.path,
        }
    )
