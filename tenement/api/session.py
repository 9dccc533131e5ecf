"""What a signed-in page needs beyond the CLI's calls: who the token is, and stream tickets.

``GET /api/whoami`` lets the dashboard show only the controls a token can use (a tenant
token gets no deploy, no other tenant's instances). ``POST /api/logs/stream/ticket``
trades the caller's bearer token for a single-use ticket that ``GET /api/logs/stream``
or ``GET /api/instances/stream`` accepts in its query, since a browser's EventSource
cannot send a header.
"""

from __future__ import annotations

import math

import trio

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.types import Send


async def whoami(api: ApiContext, request: Request, send: Send) -> http.Response:
    tenant = request.tenant
    return http.json_response({"admin": tenant is None, "tenant": tenant})


async def stream_ticket(api: ApiContext, request: Request, send: Send) -> http.Response:
    identity = request.identity
    if identity is None:
        # Not reachable (the path is not public), but never issue an admin ticket for it.
        return http.empty(401)
    # a fleet node keeps the token to relay a stream of another node's instance with it
    token = http.header(request.scope, b"authorization") if api.relay is not None else None
    ticket = api.tickets.issue(identity, trio.current_time(), token=token)
    return http.json_response(
        {"ticket": ticket, "expires_in_secs": math.floor(api.tickets.lifetime)}
    )
