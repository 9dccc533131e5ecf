"""``GET /api/instances/stream``: what changes in the instance list, as server-sent events.

The dashboard shows ``/api/instances`` and ``/api/telemetry`` live. Polling them costs
the server a request (and a token check) per page every few seconds even when nothing
changes, and with many live tenants some memory or CPU figure changes at every usage
sample, so a poll often gets the whole list for one changed cell. This stream says
what changed instead:

- ``event: changed`` (data ``{}``): something the list or the telemetry shows, other than
  the sampled memory and CPU, may have changed (a state, a health, a weight, a request);
  the client asks its conditional GETs again. At most one per :data:`CHANGED_SECONDS`.
- ``event: usage``: the instances whose memory or CPU changed at the last sample, as
  ``{"<id>": {"memory_bytes": n, "cpu_percent": x}}`` (both null when an instance has no
  sample any more); the client patches its copy of the list.

While nothing changes the stream costs a comparison of two counters every
:data:`CHECK_SECONDS` (``Supervisor.changes``, O(1)), and a keep-alive comment. A tenant
token sees only its own instances: ``changed`` only when its own list changed, ``usage``
only of its own. A fleet node tells of the instances it runs (the dashboard of a fleet
polls instead: its lists come from other nodes too). The stream ends when the server
stops being ready (a stop or restart has begun): the client opens a new one (a
browser's EventSource, with a new ticket from ``POST /api/logs/stream/ticket``, which
opens this stream too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import trio

from tenement.api.app import ApiContext, Request
from tenement.api.sse import KEEPALIVE_FRAME, start_event_stream
from tenement.asgi import cancel_on_disconnect
from tenement.types import Send

#: how often the stream compares the counters (the latency of a change)
CHECK_SECONDS = 0.5
#: the fewest seconds between two ``changed`` events: with steady traffic something
#: changes all the time, and each event costs the client's refetch
CHANGED_SECONDS = 2.0


async def stream_changes(api: ApiContext, request: Request, send: Send) -> None:
    was_ready = api.ready()
    await start_event_stream(send)
    ended = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_on_disconnect, request.receive, nursery.cancel_scope)
        await _watch(api, request.tenant, send, was_ready=was_ready)
        ended = True
        nursery.cancel_scope.cancel()
    if ended:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Seen:
    """What the client was last told of (or fetched since): the counters, and the usage
    the ``usage`` events are differences from."""

    def __init__(self, api: ApiContext, tenant: str | None) -> None:
        self.api = api
        self.tenant = tenant
        self.changes = self.changes_now()
        self.shown = self.shown_now()
        history = api.history
        self.usage_changes: int = history.usage_changes if history is not None else 0
        self.usage: Mapping[str, Any] = history.usage if history is not None else {}

    def changes_now(self) -> tuple[object, ...]:
        proxy_metrics = self.api.proxy_metrics
        return (
            self.api.supervisor.changes(),
            proxy_metrics.changes if proxy_metrics is not None else 0,
        )

    def shown_now(self) -> object:
        """A tenant's own instances (O(its share of the registry)): looked at only when
        the O(1) count moved, so that another tenant's change is no news to it."""
        return None if self.tenant is None else self.api.supervisor.signature(self.tenant)

    def changed(self) -> bool:
        now = self.changes_now()
        if now == self.changes:
            return False
        self.changes = now
        shown = self.shown_now()
        if self.tenant is not None and shown == self.shown:
            return False
        self.shown = shown
        return True

    def usage_delta(self) -> dict[str, dict[str, object]]:
        history = self.api.history
        if history is None or history.usage_changes == self.usage_changes:
            return {}
        before, after = self.usage, history.usage
        self.usage_changes = history.usage_changes
        self.usage = after
        delta: dict[str, dict[str, object]] = {}
        suffix = None if self.tenant is None else f":{self.tenant}"
        for iid, usage in after.items():
            if before.get(iid) != usage and (suffix is None or iid.endswith(suffix)):
                delta[iid] = {"memory_bytes": usage.memory_bytes, "cpu_percent": usage.cpu_percent}
        for iid in before.keys() - after.keys():
            if suffix is None or iid.endswith(suffix):
                delta[iid] = {"memory_bytes": None, "cpu_percent": None}
        return delta


def _event(name: str, data: object) -> bytes:
    body = json.dumps(data, separators=(",", ":")).encode()
    return b"event: " + name.encode() + b"\ndata: " + body + b"\n\n"


async def _watch(api: ApiContext, tenant: str | None, send: Send, *, was_ready: bool) -> None:
    """Send what changes until the server stops being ready."""
    seen = _Seen(api, tenant)
    quiet_since = trio.current_time()
    told_at = -CHANGED_SECONDS
    pending = False
    while True:
        await trio.sleep(min(api.keepalive_seconds, CHECK_SECONDS))
        ready = api.ready()
        if was_ready and not ready:
            return
        was_ready = was_ready or ready
        frames = []
        pending = seen.changed() or pending
        now = trio.current_time()
        if pending and now - told_at >= CHANGED_SECONDS:
            frames.append(_event("changed", {}))
            told_at = now
            pending = False
        delta = seen.usage_delta()
        if delta:
            frames.append(_event("usage", delta))
        if not frames and now - quiet_since >= api.keepalive_seconds:
            frames.append(KEEPALIVE_FRAME)
        if frames:
            await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})
            quiet_since = now
