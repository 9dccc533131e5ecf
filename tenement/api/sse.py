"""``GET /api/logs/stream``: new log entries as server-sent events.

Each entry is one ``data: <LogEntry JSON>`` event; a comment frame (``: keep-alive``)
goes out after every :data:`KEEPALIVE_SECONDS` without one, so proxies keep the
connection open. A tenant token sees only its own entries (the reference streams
everything to any token). ``backlog=N`` first sends the last N matching entries
from the store (ours; the reference sends only new entries).

In a fleet, a stream of one instance (``process`` and ``id``) that another node runs
is that node's to send: the app relays it there (the node called never sees those
lines as they come; the backlog, in the shared database, any node could read).

A subscriber that falls far behind misses entries rather than slowing the supervisor.
The stream ends when the server stops being ready (a stop or restart has begun), so an
open stream never holds up the drain.
"""

from __future__ import annotations

import json

import trio

from tenement.api.app import ApiContext, Request
from tenement.api.instances import raise_if_elsewhere
from tenement.api.logs import LogFilter, count_param, entry_json, query_store
from tenement.asgi import cancel_on_disconnect
from tenement.store import LogEntry
from tenement.types import Send

KEEPALIVE_SECONDS = 15.0
KEEPALIVE_FRAME = b": keep-alive\n\n"
#: the first bytes of every stream's body (a comment: clients skip it)
OPENED_FRAME = b": open\n\n"
#: how often an idle stream checks whether the server is stopping
STOP_POLL_SECONDS = 0.5


def event(entry: object) -> bytes:
    return b"data: " + json.dumps(entry_json(entry), separators=(",", ":")).encode() + b"\n\n"


async def start_event_stream(send: Send) -> None:
    """The head of a ``text/event-stream`` answer, sent at once (not buffered by a
    proxy in front), and a comment: Firefox's EventSource is open only once some of
    the body has come (an empty piece sends nothing), which was the first keep-alive,
    15 s later."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": OPENED_FRAME, "more_body": True})


async def stream_logs(api: ApiContext, request: Request, send: Send) -> None:
    query = request.query()
    filters = LogFilter.from_query(query, request.tenant)
    backlog_size = count_param(query, "backlog")
    if filters.process is not None and filters.instance_id is not None:
        await raise_if_elsewhere(api, f"{filters.process}:{filters.instance_id}")
    # Read before the headers go out: a stop that begins after them must end the stream.
    was_ready = api.ready()
    # Subscribe before reading the backlog, so no entry falls between the two; the
    # overlap is dropped below.
    feed = api.supervisor.subscribe_logs()
    with feed:
        backlog = []
        if backlog_size:
            backlog = await query_store(api.store, filters, search=None, limit=backlog_size)
        await start_event_stream(send)
        for entry in backlog:
            await send({"type": "http.response.body", "body": event(entry), "more_body": True})
        ended = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_on_disconnect, request.receive, nursery.cancel_scope)
            await _forward(feed, filters, set(backlog), api, send, was_ready=was_ready)
            ended = True
            nursery.cancel_scope.cancel()
    if not ended:
        return  # the client left: there is no one to end the stream for
    # (a client that leaves meanwhile is the server's to notice: ``send`` raises nothing)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _forward(
    feed: trio.MemoryReceiveChannel[LogEntry],
    filters: LogFilter,
    seen: set[LogEntry],
    api: ApiContext,
    send: Send,
    *,
    was_ready: bool,
) -> None:
    """Send matching entries (skipping ones the backlog sent) until the feed or server ends."""
    quiet_since = trio.current_time()
    while True:
        entry = None
        # Only the wait is under the timeout: a send cut short would corrupt the stream.
        with trio.move_on_after(min(api.keepalive_seconds, STOP_POLL_SECONDS)):
            try:
                entry = await feed.receive()
            except trio.EndOfChannel:
                return
        ready = api.ready()
        if was_ready and not ready:
            return
        was_ready = was_ready or ready
        if entry is not None and seen:
            if entry in seen:
                continue
            seen.clear()
        if entry is not None and filters.matches(entry):
            await send({"type": "http.response.body", "body": event(entry), "more_body": True})
            quiet_since = trio.current_time()
        elif trio.current_time() - quiet_since >= api.keepalive_seconds:
            await send({"type": "http.response.body", "body": KEEPALIVE_FRAME, "more_body": True})
            quiet_since = trio.current_time()
