"""Helpers for the proxy tests: real tenants (backend_app.py processes), small in-test
backends, the proxy under hypercorn on 127.0.0.1:0, and a WebSocket client."""

from __future__ import annotations

import contextlib
import functools
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from tenement.config import Service
from tenement.errors import TenementError
from tenement.proxy import Proxy
from tenement.server.http import serve_http
from tenement.tls.handshake import ChooseContext

BACKEND_APP = Path(__file__).with_name("backend_app.py")
DOMAIN = "example.test"


@attrs.frozen
class Backend:
    """A backend_app.py process: its port (or Unix socket path) and the process."""

    proc: subprocess.Popen[str]
    port: int | None
    path: str = ""


def start_backend(bind: str, name: str, *extra: str) -> Backend:
    proc = subprocess.Popen(
        [sys.executable, str(BACKEND_APP), "--bind", bind, "--name", name, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        proc.wait()
        raise AssertionError(f"backend_app.py did not start ({bind}): {line!r}")
    address = line.split()[1]
    if bind.startswith("unix:"):
        return Backend(proc, None, bind.removeprefix("unix:"))
    return Backend(proc, int(address.rsplit(":", 1)[1]))


def stop_backend(backend: Backend) -> None:
    backend.proc.terminate()
    backend.proc.wait(10)


def dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@attrs.frozen
class Target:
    instance_id: str
    service: str
    tenant: str
    port: int | None
    socket: str = ""
    weight: int = 100


def target_for(service: str, tenant: str, backend: Backend | None, *, weight: int = 100) -> Target:
    port = dead_port() if backend is None else backend.port
    path = backend.path if backend is not None else ""
    return Target(f"{service}:{tenant}", service, tenant, port, path, weight)


class Backends:
    """The supervisor's proxy-facing methods over a dict of targets.

    ``wake_with`` (async callable -> Target) plays the supervisor's wake; ``wakes`` counts
    its calls; ``active`` and ``max_active`` count proxied connections per instance.
    """

    def __init__(self, services: dict[str, Service] | None = None) -> None:
        self.services = services or {}
        self.targets: dict[tuple[str, str], Target] = {}
        self.wakeable: set[tuple[str, str]] = set()
        self.wake_with: Callable | None = None
        self.wakes = 0
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}

    def add(self, target: Target) -> None:
        self.services.setdefault(target.service, Service(name=target.service, command="unused"))
        self.targets[(target.service, target.tenant)] = target

    def service(self, name: str) -> Service | None:
        return self.services.get(name)

    def target(self, service: str, tenant: str) -> Target | None:
        return self.targets.get((service, tenant))

    def weighted_targets(self, service: str) -> list[Target]:
        return [t for (s, _), t in self.targets.items() if s == service]

    def may_wake(self, service: str, tenant: str) -> bool:
        return (service, tenant) in self.wakeable

    async def wake(self, service: str, tenant: str) -> Target:
        self.wakes += 1
        if self.wake_with is None:
            raise TenementError(f"Instance {service}:{tenant} failed to start within 0 seconds")
        target = await self.wake_with(service, tenant)
        self.targets[(service, tenant)] = target
        return target

    @contextlib.contextmanager
    def connection(self, instance_id: str) -> Iterator[None]:
        self.active[instance_id] = self.active.get(instance_id, 0) + 1
        self.max_active[instance_id] = max(
            self.max_active.get(instance_id, 0), self.active[instance_id]
        )
        try:
            yield
        finally:
            self.active[instance_id] -= 1


async def fallback_app(scope, receive, send) -> None:
    """The API stand-in: says it is the fallback."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"fallback"})


@attrs.frozen
class ProxyServer:
    proxy: Proxy
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def serve_proxy(
    nursery: trio.Nursery,
    proxy: Proxy,
    tls: ChooseContext | None = None,
    shutdown: trio.Event | None = None,
) -> ProxyServer:
    """Run ``proxy`` as ``ten serve`` does (``serve_http``: its own HTTP/1.1 and the
    express lane for tenant hosts, hypercorn for the rest) on 127.0.0.1:0 until the test
    ends, or ``shutdown`` is set; over TLS with ``tls`` (``serve_http``'s)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await nursery.start(
        functools.partial(
            serve_http,
            proxy,
            [sock],
            shutdown=trio.Event() if shutdown is None else shutdown,
            grace_seconds=1,
            config_overrides={"include_server_header": False},
            fast_path=lambda host: True,  # as ten serve: every HTTP/1.1 request h1.py serves
            express=proxy.express,
            tls=tls,
        )
    )
    return ProxyServer(proxy, port)


class WebSocketClient:
    """A minimal WebSocket client (wsproto over a trio TCP stream) for the tests."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: list = []

    @classmethod
    async def connect(
        cls, port: int, host: str, path: str, subprotocols: list[str] | None = None
    ) -> tuple[WebSocketClient, AcceptConnection | RejectConnection, bytes]:
        client = cls(await trio.open_tcp_stream("127.0.0.1", port))
        request = Request(host=host, target=path, subprotocols=subprotocols or [])
        await client.stream.send_all(client.ws.send(request))
        answer = None
        body = b""
        while True:
            event = await client.next_event()
            if isinstance(event, AcceptConnection):
                return client, event, b""
            if isinstance(event, RejectConnection):
                answer = event
                if not event.has_body:
                    return client, answer, body
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished:
                    return client, answer, body

    async def next_event(self):
        while not self.events:
            data = await self.stream.receive_some(65536)
            self.ws.receive_data(data or None)
            self.events.extend(self.ws.events())
        return self.events.pop(0)

    async def send(self, message: str | bytes) -> None:
        event = TextMessage(message) if isinstance(message, str) else BytesMessage(message)
        await self.stream.send_all(self.ws.send(event))

    async def receive(self) -> Message | CloseConnection:
        """The next whole message, or the close."""
        parts = []
        while True:
            event = await self.next_event()
            if isinstance(event, CloseConnection):
                return event
            if isinstance(event, Message):
                parts.append(event.data)
                if event.message_finished:
                    joined = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                    return type(event)(data=joined)

    async def close(self, code: int = 1000) -> None:
        await self.stream.send_all(self.ws.send(CloseConnection(code=code)))
        await self.stream.aclose()
