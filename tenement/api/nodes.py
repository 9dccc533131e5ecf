"""``GET /api/nodes``: the fleet's nodes as the shared database knows them (admin)."""

from __future__ import annotations

import math
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
        "started_at": _finite(row.started_at),
        "heartbeat_at": _finite(row.heartbeat_at),
        "silent_secs": None if _finite(row.silent_s) is None else max(row.silent_s, 0.0),
        "cpus": row.cpus,
        "memory_total_bytes": row.memory_total,
        "memory_available_bytes": row.memory_available,
        "instances": row.instances,
        "down_at": _finite(row.down_at),
        "down_by": row.down_by,
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
    return http.json_response(
        {"fleet": True, "node": store.node, "nodes": [node_json(row) for row in rows]}
    )
