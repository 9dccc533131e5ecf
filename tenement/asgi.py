"""Small ASGI helpers shared by the proxy and the API (both sit above this base module)."""

from __future__ import annotations

import trio

from tenement.types import Receive


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
