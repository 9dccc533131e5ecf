"""Small ASGI helpers shared by the proxy and the API (both sit above this base module)."""

from __future__ import annotations

import trio

from tenement.types import Receive, Scope

#: a WebSocket scope's extension (``tenement/server/handoff.py`` sets it): a
#: ``trio.Event`` set once writing to or reading from the client's connection failed.
#: hypercorn tells its app of a lost client by a ``websocket.disconnect`` put in the
#: app's queue, which waits while the queue is full: an app that is itself waiting (to
#: write to a tenant that is waiting for the app to read) would never learn of it.
CLIENT_GONE = "tenement.client_gone"


def client_gone(scope: Scope) -> trio.Event | None:
    """The scope's :data:`CLIENT_GONE` event; None where the server sets none."""
    extensions = scope.get("extensions") or {}
    gone = extensions.get(CLIENT_GONE)
    return gone if isinstance(gone, trio.Event) else None


async def cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` when the client disconnects (``http.disconnect`` on ``receive``).

    Run it beside a long response (a relayed body, an event stream); other messages the
    client sends meanwhile are read and dropped.
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
