"""``GET /api/instances/{id}/events``: an instance's audit rows (spawns, restarts,
crash restarts, failures, weight changes, ...), newest first, for its history."""

from __future__ import annotations

import functools

import trio

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.api.logs import count_param
from tenement.types import Send

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


async def instance_events(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    limit = count_param(request.query(), "limit")
    limit = DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT)
    read = functools.partial(api.store.instance_audit, ref.service, ref.tenant, limit)
    rows = await trio.to_thread.run_sync(read)
    return http.json_response(
        [
            {
                "timestamp": int(row.timestamp.timestamp() * 1000),
                "action": row.action,
                "details": row.details,
                "success": row.success,
            }
            for row in rows
        ]
    )
