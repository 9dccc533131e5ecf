"""The HTTP port of a TLS server: ``308`` to ``https://`` for every request (as 0.2.2),
and the answers to pending ``http-01`` challenges.

The location is ``https://<Host without its port>[:https_port]<path>[?query]``; the port
is left out when it is 443.
"""

from __future__ import annotations

import re

import trio

from tenement.tls.challenges import Challenges
from tenement.types import Receive, Scope, Send

_CHALLENGE_PREFIX = b"/.well-known/acme-challenge/"
#: a host name or an IP address, with an optional port: anything else is refused
_HOST = re.compile(rb"^(?P<name>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")


class RedirectApp:
    """ASGI app of the HTTP port (served by the same hardened front as the rest)."""

    def __init__(self, https_port: int, challenges: Challenges) -> None:
        self._suffix = b"" if https_port == 443 else b":%d" % https_port
        self._challenges = challenges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        path: bytes = scope.get("raw_path") or scope["path"].encode()
        if path.startswith(_CHALLENGE_PREFIX):
            token = path[len(_CHALLENGE_PREFIX) :].decode("latin-1")
            # placed by whichever process of this server ordered
            key_authorization = await trio.to_thread.run_sync(self._challenges.http_answer, token)
            if key_authorization is not None:
                await _answer(send, 200, key_authorization.encode(), b"application/octet-stream")
                return
        host = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        matched = _HOST.match(host) if host is not None else None
        if matched is None:
            await _answer(send, 400, b"Missing or invalid Host header\n", b"text/plain")
            return
        location = b"https://" + matched["name"] + self._suffix + path
        if scope["query_string"]:
            location += b"?" + scope["query_string"]
        await _answer(send, 308, b"", None, location)


async def _answer(
    send: Send, status: int, body: bytes, content_type: bytes | None, location: bytes | None = None
) -> None:
    headers = [(b"content-length", b"%d" % len(body))]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    if location is not None:
        headers.append((b"location", location))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
