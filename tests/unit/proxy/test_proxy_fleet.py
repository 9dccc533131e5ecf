"""The proxy on a fleet node, called directly: the hop header's checks, the loop, an
owner that is down or unreachable, and a single host that knows nothing of any of it.
Peers are ports where nothing listens; the owners are a fixed map (the server's
directory is tested on a real PostgreSQL in tests/fleet/)."""

from __future__ import annotations

import pytest

from tenement.proxy import Proxy
from tenement.proxy.fleet import HERE, Here, Peer, RemoteInstance, peer_address
from tests.integration.proxy.proxy_support import dead_port
from tests.unit.proxy.test_proxy_app import Backends, call, fallback

SECRET = b"the-fleet-secret"


class Owners:
    def __init__(self, owners: dict[str, Peer | Here]) -> None:
        self.node = "b"
        self.secret = SECRET
        self.retry_after_seconds = 10
        self._owners = owners
        self.sought: list[str] = []
        self.rechecked: list[str] = []

    def known_owner(self, instance_id: str) -> Peer | Here | None:
        return self._owners.get(instance_id)

    async def owner(self, instance_id: str) -> Peer | Here | None:
        return self._owners.get(instance_id)

    async def recheck(self, instance_id: str) -> Peer | Here | None:
        self.rechecked.append(instance_id)  # the row says what the map says: a loop
        return self._owners.get(instance_id)

    def moved_recently(self, instance_id: str) -> bool:
        return False

    def peer(self, node: str) -> Peer | None:
        return next((p for p in self._owners.values() if isinstance(p, Peer)), None)

    async def find_peer(self, node: str) -> Peer | None:
        return self.peer(node)

    def remote_instances(self, service: str) -> list[RemoteInstance]:
        return []  # what the last look saw: none yet

    async def find_instances(self, service: str) -> list[RemoteInstance]:
        """The rows read again: each peer's tenant of ``service``, running."""
        self.sought.append(service)
        found = []
        for iid, owner in self._owners.items():
            named, _, tenant = iid.partition(":")
            if isinstance(owner, Peer) and named == service:
                found.append(RemoteInstance(iid, service, tenant, 100, owner))
        return found


def peer(up: bool = True) -> Peer:
    advertise = f"127.0.0.1:{dead_port()}"
    return Peer("a", advertise, peer_address(advertise), up)


def proxy(owners: dict[str, Peer | Here] | None) -> Proxy:
    fleet = None if owners is None else Owners(owners)
    return Proxy(Backends(), domain="example.com", fallback=fallback, fleet=fleet)


HOST = "alice.notes.example.com"


async def test_an_owner_down_or_unreachable_is_503_with_retry_after() -> None:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    for up, why in ((False, b"which is down"), (True, b"which cannot be reached")):
        sent.clear()
        scope = {
            "type": "http", "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
            "query_string": b"", "headers": [(b"host", HOST.encode())], "client": ("10.0.0.9", 1),
        }  # fmt: skip
        await proxy({"notes:alice": peer(up)})(scope, receive, send)
        assert sent[0]["status"] == 503
        assert (b"retry-after", b"10") in sent[0]["headers"]
        assert b"notes:alice runs on fleet node a" in sent[1]["body"] and why in sent[1]["body"]


@pytest.mark.parametrize(
    "hop",
    [b"", b"garbage", SECRET + b"x", SECRET[:-1], b"x" * 10_000, SECRET.upper()],
)
async def test_a_hop_without_the_secret_is_403(hop: bytes) -> None:
    app = proxy({"notes:alice": peer()})
    status, body = await call(
        app, HOST, headers=[(b"host", HOST.encode()), (b"x-tenement-hop", hop)]
    )
    assert status == 403 and b"without the fleet secret" in body


async def test_two_hop_headers_are_forged_even_with_the_secret() -> None:
    app = proxy({})
    headers = [(b"host", HOST.encode()), (b"x-tenement-hop", SECRET), (b"x-tenement-hop", SECRET)]
    assert (await call(app, HOST, headers=headers))[0] == 403


async def test_a_valid_hop_for_another_nodes_tenant_is_a_loop() -> None:
    """Once its row, read again, says the same: this process's map was not behind."""
    owners = Owners({"notes:alice": peer()})
    app = Proxy(Backends(), domain="example.com", fallback=fallback, fleet=owners)
    headers = [(b"host", HOST.encode()), (b"x-tenement-hop", SECRET)]
    status, body = await call(app, HOST, headers=headers)
    assert status == 508 and b"fleet node a runs it" in body
    assert owners.rechecked == ["notes:alice"]


async def test_a_valid_hop_for_nobody_is_404_and_a_row_here_is_woken() -> None:
    app = proxy({"notes:bob": HERE})
    headers = [(b"host", HOST.encode()), (b"x-tenement-hop", SECRET)]
    assert (await call(app, HOST, headers=headers))[0] == 404


async def test_a_single_host_ignores_the_hop_header() -> None:
    """No [fleet]: the header is a header like any other (the tenant is not there: 404,
    as without it)."""
    app = proxy(None)
    headers = [(b"host", HOST.encode()), (b"x-tenement-hop", b"garbage")]
    assert (await call(app, HOST, headers=headers))[0] == 404


def test_a_remote_tenant_may_get_a_certificate() -> None:
    app = proxy({"notes:alice": peer()})
    assert app.routes_to_instance(HOST)
    assert app.routes_to_instance(HOST, running_only=True)
    assert not app.routes_to_instance("bob.notes.example.com")
    assert not proxy(None).routes_to_instance(HOST)


async def test_a_weighted_route_this_node_knows_no_instance_of_reads_the_rows_again() -> None:
    """Placed on a peer since this node's directory last looked: the route goes there
    (here unreachable, which the answer says), not a bare 503 from what it knew."""
    owners = Owners({"notes:alice": peer()})
    app = Proxy(Backends(), domain="example.com", fallback=fallback, fleet=owners)
    status, body = await call(app, "notes.example.com")
    assert owners.sought == ["notes"]
    assert status == 503 and b"notes:alice runs on fleet node a" in body, body


async def test_forged_hops_by_the_thousand_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = proxy({})
    headers = [(b"host", HOST.encode()), (b"x-tenement-hop", b"forged")]
    with caplog.at_level("WARNING", logger="tenement.proxy.app"):
        for _ in range(1000):
            assert (await call(app, HOST, headers=headers, client=("10.0.0.66", 1)))[0] == 403
    lines = [r.getMessage() for r in caplog.records if "hop header" in r.getMessage()]
    assert lines == [
        "refused a request for alice.notes.example.com from 10.0.0.66: hop header without "
        "the fleet secret (and 0 more since the last such line)"
    ]
