"""``POST /api/deploy`` and ``POST /api/route``: admin-only traffic moves (§5.19)."""

from __future__ import annotations

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.api.errors import ApiError
from tenement.api.instances import MAX_WEIGHT, check_name
from tenement.types import Send

#: seconds deploy waits for the new instance to become healthy, unless the body says
DEFAULT_TIMEOUT_SECONDS = 30


async def deploy(api: ApiContext, request: Request, send: Send) -> http.Response:
    request.require_admin("Deploy requires admin token")
    body = await request.json()
    service = check_name("process name", http.field(body, "process", str))
    version = check_name("version", http.field(body, "version", str))
    weight = min(http.non_negative_int(body, "weight", MAX_WEIGHT), MAX_WEIGHT)
    timeout = http.non_negative_int(body, "timeout", DEFAULT_TIMEOUT_SECONDS)
    if timeout == 0:
        # it could only fail, and a failed deploy stops the instance it started
        raise ApiError(
            422, "field `timeout` must be at least 1 (seconds to wait until healthy), got 0"
        )
    view = await api.supervisor.deploy(service, version, weight=weight, timeout=timeout)
    return http.json_response(
        {
            "instance": f"{service}:{version}",
            "socket": view.socket,
            "weight": view.weight,
            "status": "healthy",
        }
    )


async def route(api: ApiContext, request: Request, send: Send) -> http.Response:
    request.require_admin("Route swap requires admin token")
    body = await request.json()
    service = check_name("process name", http.field(body, "process", str))
    old = check_name("version", http.field(body, "from", str))
    new = check_name("version", http.field(body, "to", str))
    try:
        before, after = await api.supervisor.route(service, old, new)
    except LookupError as exc:
        # A missing side of a swap is the client's mistake (the reference answers 500).
        raise ApiError(404, str(exc)) from None
    return http.json_response(
        {
            "from_instance": before.id,
            "to_instance": after.id,
            "from_weight": before.weight,
            "to_weight": after.weight,
        }
    )
