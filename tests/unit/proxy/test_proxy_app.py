"""The Proxy ASGI app called directly: timing paths under trio's autojump clock.

Targets point at ports where nothing listens, so every connect is refused at once and
only the proxy's own waits (the 100 ms re-lookups, the 15 s deadline) take time — which
the autojump clock skips.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

import pytest
import trio

from tenement.config import Service
from tenement.proxy import Proxy
from tenement.proxy.app import RETRY_DEADLINE_SECONDS
from tenement.supervisor import InstanceFailed, RestartPending, WakeError
from tests.integration.proxy.proxy_support import Target, dead_port


class Backends:
    def __init__(self, *targets: Target) -> None:
        self.targets = list(targets)
        self.lookups = 0

    def service(self, name: str) -> Service | None:
        return Service(name=name, command="x") if name == "notes" else None

    def target(self, service: str, tenant: str) -> Target | None:
        self.lookups += 1
        return next((t for t in self.targets if (t.service, t.tenant) == (service, tenant)), None)

    def weighted_targets(self, service: str) -> list[Target]:
        return [t for t in self.targets if t.service == service]

    def may_wake(self, service: str, tenant: str) -> bool:
        return False

    async def wake(self, service: str, tenant: str) -> Target:
        raise AssertionError("not reached")

    @contextlib.contextmanager
    def connection(self, instance_id: str) -> Iterator[None]:
        yield


async def fallback(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"fallback"})


async def call(app, host: str, scope_type: str = "http", **overrides: object) -> tuple[int, bytes]:
    """Run one request through the ASGI app; returns status and body."""
    scope: dict = {
        "type": scope_type,
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 5000),
        "extensions": {"websocket.http.response": {}},
    }
    scope.update(overrides)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    return status, b"".join(m.get("body", b"") for m in sent[1:])


async def test_dead_direct_target_gives_503_after_the_deadline(autojump_clock) -> None:
    backends = Backends(Target("notes:alice", "notes", "alice", dead_port()))
    proxy = Proxy(backends, domain="example.com", fallback=fallback)
    start = trio.current_time()
    assert await call(proxy, "alice.notes.example.com") == (
        503,
        b"Service temporarily unavailable",
    )
    waited = trio.current_time() - start
    assert RETRY_DEADLINE_SECONDS <= waited < RETRY_DEADLINE_SECONDS + 1
    # looked up again every 100 ms: about 150 times in 15 s
    assert 140 <= backends.lookups <= 152


async def test_missing_direct_target_that_may_not_wake_is_404(autojump_clock) -> None:
    proxy = Proxy(Backends(), domain="example.com", fallback=fallback)
    assert await call(proxy, "alice.notes.example.com") == (404, b"Not found")


async def test_weighted_all_dead_is_503_at_once(autojump_clock) -> None:
    backends = Backends(
        Target("notes:a", "notes", "a", dead_port()),
        Target("notes:b", "notes", "b", dead_port(), weight=5),
    )
    proxy = Proxy(backends, domain="example.com", fallback=fallback)
    start = trio.current_time()
    assert (await call(proxy, "notes.example.com"))[0] == 503
    assert trio.current_time() - start < 1


async def test_other_hosts_and_lifespan_go_to_the_fallback() -> None:
    proxy = Proxy(Backends(), domain="Example.COM.", fallback=fallback)
    assert await call(proxy, "example.com") == (299, b"fallback")
    assert await call(proxy, "elsewhere.org:80") == (299, b"fallback")
    seen = []

    async def lifespan_app(scope, receive, send) -> None:
        seen.append(scope["type"])

    await Proxy(Backends(), domain="x", fallback=lifespan_app)({"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]


async def test_websocket_refusal_uses_the_http_response_extension() -> None:
    proxy = Proxy(Backends(), domain="example.com", fallback=fallback)
    assert await call(proxy, "unknown.example.com", "websocket") == (404, b"Not found")


@pytest.mark.parametrize(
    "overrides",
    [
        {"raw_path": b"/a b"},
        {"headers": [(b"host", b"alice.notes.example.com"), (b"x-bad", b"line\nbreak")]},
        {"method": "GE T"},
    ],
    ids=["space-in-path", "newline-in-header", "bad-method"],
)
async def test_request_h11_cannot_write_is_400(nursery, overrides) -> None:
    """What an HTTP/2 client could send but HTTP/1.1 cannot carry gets 400, not a crash."""

    async def silent(stream: trio.SocketStream) -> None:
        await stream.receive_some(1)

    listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    proxy = Proxy(
        Backends(Target("notes:alice", "notes", "alice", port)),
        domain="example.com",
        fallback=fallback,
    )
    assert await call(proxy, "alice.notes.example.com", **overrides) == (400, b"Bad request")
    assert proxy.statistics().idle_connections == 1  # the unused connection was kept


class Refusing(Backends):
    """Its one tenant is known but cannot be woken now: ``wake`` raises ``refusal``."""

    def __init__(self, refusal: Exception) -> None:
        super().__init__()
        self.refusal = refusal

    def may_wake(self, service: str, tenant: str) -> bool:
        return True

    async def wake(self, service: str, tenant: str) -> Target:
        raise self.refusal


@pytest.mark.parametrize("scope_type", ["http", "websocket"])
@pytest.mark.parametrize(
    ("refusal", "retry_after"),
    [
        (RestartPending("notes:alice", 7), [b"7"]),
        (InstanceFailed("notes:alice"), []),
        (WakeError("notes:alice", "failed to start within 10 seconds"), []),
    ],
    ids=["in-backoff", "failed", "wake-failed"],
)
async def test_a_refused_wake_is_503_with_retry_after_only_in_backoff(
    refusal: Exception, retry_after: list[bytes], scope_type: str
) -> None:
    proxy = Proxy(Refusing(refusal), domain="example.test", fallback=fallback)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": scope_type,
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"alice.notes.example.test")],
        "client": ("127.0.0.1", 5000),
        "extensions": {"websocket.http.response": {}},
    }
    await proxy(scope, receive, send)
    assert sent[0]["status"] == 503
    assert [value for name, value in sent[0]["headers"] if name == b"retry-after"] == retry_after
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"Service temporarily unavailable"
