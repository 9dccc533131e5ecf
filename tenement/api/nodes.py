"""``GET /api/nodes``: the fleet's nodes as the shared database knows them (admin)."""

from __future__ import annotations

from typing import Any

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.types import Send


def node_json(row: Any) -> dict[str, Any]:
    """A node row as the API shows it; times are the database's epoch seconds."""
    return {
        "name": row.name,
        "advertise": row.advertise,
        "version": row.version,
        "state": row.state,
        "started_at": row.started_at,
        "heartbeat_at": row.heartbeat_at,
        "silent_secs": max(row.silent_s, 0.0),
        "cpus": row.cpus,
        "memory_total_bytes": row.memory_total,
        "memory_available_bytes": row.memory_available,
        "instances": row.instances,
        "down_at": row.down_at,
        "down_by": row.down_by,
    }


async def list_nodes(api: ApiContext, request: Request, send: Send) -> http.Response:
    request.require_admin("The node list requires admin token")
    store = api.store
    if store.node is None:  # a single host: no [fleet], nothing to list
        return http.json_response({"fleet": False, "node": None, "nodes": []})
    rows = await store.run(store.list_nodes)
    return http.json_response(
        {"fleet": True, "node": store.node, "nodes": [node_json(row) for row in rows]}
    )
