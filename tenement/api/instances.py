"""``/api/instances``: list, spawn, stop, restart, weight, health and storage.

A tenant token reaches only its own instances (the reference lets it read any
instance's storage; we scope that too). Audit rows are the supervisor's job.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from tenement.api import conditional, http
from tenement.api.app import ApiContext, Request
from tenement.api.errors import ApiError
from tenement.api.relay import check_target
from tenement.ids import NAME_RULE, is_valid_name
from tenement.supervisor import OwnedElsewhere
from tenement.types import Send

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
    without building the list (see :mod:`tenement.api.conditional`)."""
    history = api.history
    store = api.store
    # a fleet node lists a down node's instances that may not fail over too, until it
    # returns: every node does (they are in the tag, so a change is never a 304)
    orphaned = []
    if store.node is not None:
        orphaned = [
            record
            for record in await store.run(store.orphaned_elsewhere)
            if request.tenant is None or record.tenant == request.tenant
        ]
    # the admin's list: the O(1) count of changes; a tenant's: the hash of its own
    # instances, so that its tag does not move with another tenant's (a 304 would say so)
    shown = (
        api.supervisor.changes()
        if request.tenant is None
        else api.supervisor.signature(request.tenant)
    )
    tag = conditional.etag(
        shown,
        _usage_signature(history, request.tenant),
        tuple((record.instance_id, record.node) for record in orphaned),
    )
    unchanged = conditional.not_modified(request.scope, tag)
    if unchanged is not None:
        return unchanged
    views = live_views(api.supervisor, request.tenant)
    usage = history.usage if history is not None else {}
    listed = [instance_json(view, usage.get(view.id)) for view in views]
    node = store.node
    if node is not None:  # a fleet node's instances are its own (docs/fleet.md)
        for item in listed:
            item["node"] = node
        listed += [orphan_json(record) for record in orphaned]
        listed.sort(key=lambda item: (item["id"], item["node"]))
    return conditional.tagged(http.json_response(listed), tag)


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
    """An orphaned instance (its node is down and it may not fail over) as the API shows
    it: nothing runs it, so it has no process, socket, usage or uptime."""
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
    if node is not None:
        if api.relay is None:
            raise ApiError(
                400,
                f"Invalid node '{node}': this server is not a fleet node (no [fleet]); "
                "spawn without a node",
            )
        if node != api.relay.node:
            check_target(api.relay, node)
            here = api.relay.node if api.supervisor.get(iid) is not None else None
            holder = here or await api.relay.owner_of(iid)
            if holder is not None and holder != node:
                raise _held_elsewhere(iid, holder, node)
            raise OwnedElsewhere(iid, node)  # the app relays it there
        try:
            view = await api.supervisor.spawn(service, tenant)
        except OwnedElsewhere as exc:
            raise _held_elsewhere(iid, exc.node, node) from None
    else:
        view = await api.supervisor.spawn(service, tenant)
    return http.json_response(spawn_json(iid, view))


def _held_elsewhere(iid: str, holder: str, asked: str) -> ApiError:
    """A spawn on node ``asked`` of an instance whose row names node ``holder``: an
    instance stays with the node that first ran it (its data is there)."""
    return ApiError(
        409,
        f"Instance {iid} belongs to fleet node {holder}, not {asked}: an instance stays on "
        f"the node that first ran it; spawn it with --node {holder} or without --node",
    )


async def _raise_if_elsewhere(api: ApiContext, iid: str) -> None:
    """Raise :class:`OwnedElsewhere` (the app relays the call) for an instance that does
    not run here and whose row names another fleet node."""
    if api.relay is None or api.supervisor.get(iid) is not None:
        return
    owner = await api.relay.owner_of(iid)
    if owner is not None:
        raise OwnedElsewhere(iid, owner)


async def stop(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await _raise_if_elsewhere(api, str(ref))
    await api.supervisor.stop(str(ref))
    return http.empty(204)


async def restart(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await _raise_if_elsewhere(api, str(ref))
    if api.supervisor.get(str(ref)) is None:
        # As the reference: restarting an instance that is not running starts it.
        view = await api.supervisor.spawn(ref.service, ref.tenant)
    else:
        view = await api.supervisor.restart(str(ref))
    return http.json_response(spawn_json(request.params["id"], view))


async def set_weight(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await _raise_if_elsewhere(api, str(ref))
    body = await request.json()
    weight = min(http.non_negative_int(body, "weight"), MAX_WEIGHT)
    applied = await api.supervisor.set_weight(str(ref), weight)
    return http.json_response({"instance": str(ref), "weight": applied})


async def health(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    try:
        state = await api.supervisor.check_health(str(ref))
    except LookupError:
        # The reference answers "unknown" for an instance that is not running.
        state = "unknown"
    return http.json_response({"instance": str(ref), "health": str(state)})


async def storage(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    info = api.supervisor.storage(str(ref))
    return http.json_response(
        {
            "used_bytes": info.used_bytes,
            "quota_bytes": info.quota_bytes,
            "usage_percent": info.usage_percent if info.quota_bytes is not None else None,
            "path": info.path,
        }
    )
