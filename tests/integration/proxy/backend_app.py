"""A tenant for the proxy tests: a real ASGI app under hypercorn in its own process.

Run: ``python backend_app.py --bind 127.0.0.1:0 --name a`` (or ``--bind unix:/path``;
``--ws-ping S`` makes hypercorn ping WebSocket clients every S seconds).
It prints ``LISTENING <bind>`` once it accepts connections.

Routes (any method unless said):
  /headers          JSON: method, target, headers (as received)
  /count            reads the body chunk by chunk, answers {"received": n}
  /bytes?n=N        N bytes, streamed in 64 KiB pieces, with Content-Length
  /early            answers at once without reading the request body
  /echo             answers at once and streams the request body back as it arrives
  /slow?seconds=S   answers after S seconds
  /connections      how many distinct client connections it has seen
  /pid              its process id
  /hop              a response carrying hop-by-hop headers
  /close            a response with Connection: close
  anything else     "ok from <name>"
WebSocket:
  /ws               echo; "close-me" makes it close with code 4001
  /reject           refuses the upgrade with 403 "nope"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from urllib.parse import parse_qs

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

CHUNK = b"x" * 65536


class App:
    def __init__(self, name: str) -> None:
        self.name = name
        self.clients: set[tuple[str, int]] = set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope.get("client"):
            self.clients.add(tuple(scope["client"]))
        if scope["type"] == "websocket":
            return await self.websocket(scope, receive, send)
        path = scope["path"]
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if path == "/count":
            received = 0
            while True:
                message = await receive()
                received += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            return await self.json(send, {"received": received})
        if path == "/early":
            return await self.text(send, "too large")  # answers without reading the body
        if path == "/echo":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            while True:
                message = await receive()
                body = message.get("body", b"")
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.body", "body": b""})
            return None
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path.startswith("/headers"):
            return await self.json(
                send,
                {
                    "method": scope["method"],
                    "target": scope["raw_path"].decode()
                    + ("?" + scope["query_string"].decode() if scope["query_string"] else ""),
                    "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
                    "body": body.decode("latin-1"),
                },
            )
        if path == "/bytes":
            n = int(query["n"])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(n).encode())],
                }
            )
            while n > 0:
                piece = CHUNK[: min(n, len(CHUNK))]
                n -= len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": n > 0})
            return None
        if path == "/slow":
            await trio.sleep(float(query["seconds"]))
            return await self.text(send, "slow")
        if path == "/head-first":
            # an event stream's way: the head at once, the body when there is news
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            await trio.sleep(float(query["seconds"]))
            return await send({"type": "http.response.body", "body": b"news"})
        if path == "/pid":
            return await self.text(send, str(os.getpid()))
        if path == "/connections":
            return await self.json(send, {"connections": len(self.clients)})
        if path == "/hop":
            return await self.text(
                send,
                "hop",
                [
                    (b"connection", b"x-drop-me"),
                    (b"x-drop-me", b"1"),
                    (b"keep-alive", b"timeout=5"),
                    (b"x-keep", b"1"),
                ],
            )
        if path == "/close":
            return await self.text(send, "closing", [(b"connection", b"close")])
        return await self.text(send, f"ok from {self.name}")

    async def text(self, send, text: str, headers=()) -> None:
        body = text.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-backend", self.name.encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def json(self, send, data) -> None:
        body = json.dumps(data).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def websocket(self, scope, receive, send) -> None:
        message = await receive()
        assert message["type"] == "websocket.connect"
        if scope["path"] == "/reject":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 403,
                    "headers": [(b"content-length", b"4")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"nope"})
            return
        protocols = scope.get("subprotocols") or []
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": protocols[0] if protocols else None,
                "headers": [(b"x-backend", self.name.encode())],
            }
        )
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "close-me":
                await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--name", default="backend")
    parser.add_argument("--ws-ping", type=float, default=None, help="WebSocket ping interval")
    args = parser.parse_args()
    config = Config()
    config.bind = [args.bind]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 60
    config.websocket_ping_interval = args.ws_ping
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, App(args.name), config)
        print("LISTENING", binds[0], flush=True)


if __name__ == "__main__":
    sys.exit(trio.run(main))
