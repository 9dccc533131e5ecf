"""Type aliases shared across layers. No logic here."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: a whole answer at once (status, headers, body), where the server offers it instead of
#: two ASGI messages (``h1.py``'s express lane)
SendWhole = Callable[[int, list[tuple[bytes, bytes]], bytes], Awaitable[None]]
