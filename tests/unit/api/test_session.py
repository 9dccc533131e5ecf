"""What the dashboard needs beyond the CLI's calls: whoami, stream tickets, Retry-After,
and the page's own headers."""

from __future__ import annotations

import re

import trio

from tenement.api.auth import MAX_TICKETS_EACH, Identity, StreamTickets
from tenement.api.dashboard import CSP
from tests.unit.api.test_app import ADMIN_HEADERS, TENANT_HEADERS, client


async def test_whoami_tells_the_admin_from_a_tenant() -> None:
    async with client() as http:
        assert (await http.get("/api/whoami", headers=ADMIN_HEADERS)).json() == {
            "admin": True,
            "tenant": None,
        }
        assert (await http.get("/api/whoami", headers=TENANT_HEADERS)).json() == {
            "admin": False,
            "tenant": "alice",
        }
        assert (await http.get("/api/whoami")).status_code == 401


async def test_a_ticket_needs_a_token_and_is_refused_elsewhere_and_twice() -> None:
    async with client() as http:
        assert (await http.post("/api/logs/stream/ticket")).status_code == 401
        ticket = (await http.post("/api/logs/stream/ticket", headers=ADMIN_HEADERS)).json()
        assert set(ticket) == {"ticket", "expires_in_secs"}
        # a ticket stands in for a token on the stream only
        response = await http.get("/api/instances", params={"ticket": ticket["ticket"]})
        assert response.status_code == 401


def test_tickets_are_single_use_expire_and_are_bounded() -> None:
    tickets = StreamTickets(lifetime=30.0, capacity=3)
    alice = Identity("alice")
    first = tickets.issue(alice, now=0.0)
    assert tickets.redeem(first, now=1.0) == alice
    assert tickets.redeem(first, now=1.0) is None
    late = tickets.issue(alice, now=0.0)
    assert tickets.redeem(late, now=30.0) is None
    oldest, *rest = [tickets.issue(alice, now=float(n)) for n in range(4)]
    assert tickets.redeem(oldest, now=5.0) is None  # pushed out by the fourth
    assert [tickets.redeem(t, now=5.0) for t in rest] == [alice] * 3
    # expired ones leave at the next issue
    tickets.issue(alice, now=0.0)
    tickets.issue(alice, now=100.0)
    assert len(tickets._tickets) == 1


def test_a_ticket_keeps_the_token_it_was_issued_with_only_when_given_one() -> None:
    """A fleet node relays a ticket's stream with the token behind it (the owner
    authenticates it); a single host keeps no token."""
    tickets = StreamTickets()
    alice = Identity("alice")
    relayed = tickets.issue(alice, now=0.0, token="Bearer secret-of-alice")
    assert tickets.redeem_with_token(relayed, now=1.0) == (alice, "Bearer secret-of-alice")
    assert tickets.redeem_with_token(relayed, now=1.0) is None
    local = tickets.issue(alice, now=0.0)
    assert tickets.redeem_with_token(local, now=1.0) == (alice, None)


def test_one_token_cannot_push_out_the_others_tickets() -> None:
    """A regression: 10,001 tickets of one tenant evicted everyone's unused ones."""
    tickets = StreamTickets(lifetime=30.0, capacity=MAX_TICKETS_EACH * 2)
    admin, alice = Identity(None), Identity("alice")
    kept = tickets.issue(admin, now=0.0)
    alices = [tickets.issue(alice, now=0.0) for _ in range(MAX_TICKETS_EACH * 3)]
    assert tickets.redeem(kept, now=1.0) == admin
    # her own oldest went; her newest still work
    assert tickets.redeem(alices[0], now=1.0) is None
    assert tickets.redeem(alices[-1], now=1.0) == alice


async def test_a_429_says_when_to_retry(autojump_clock: trio.abc.Clock) -> None:
    async with client() as http:
        for _ in range(10):
            bad = await http.get("/api/instances", headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401
        await trio.sleep(2)
        refused = await http.get("/api/instances", headers=ADMIN_HEADERS)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"


async def test_the_page_and_its_assets_allow_only_their_own_origin() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert all(set(v.split()) <= {"'self'", "'none'"} for v in directives.values())
    async with client() as http:
        page = await http.get("/")
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
        assert {a.split("?")[0] for a in assets} == {
            "/assets/app.js",
            "/assets/style.css",
            "/assets/favicon.svg",
        }
        for path in ["/", *assets]:
            response = await http.get(path)
            assert response.status_code == 200
            assert response.headers["content-security-policy"] == CSP
            assert response.headers["x-content-type-options"] == "nosniff"
        script = await http.get("/assets/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.headers["cache-control"] == "public, max-age=86400"
        # nothing inline (the policy would block it) and nothing from elsewhere
        assert "<script>" not in page.text and "style=" not in page.text
        # (the SVG namespace is a name, never fetched)
        code = script.text.replace('"http://www.w3.org/2000/svg"', "")
        assert "http://" not in code and "https://" not in code


async def test_large_answers_are_gzipped_for_clients_that_take_it() -> None:
    async with client() as http:
        plain = await http.get("/api/openapi.json", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert len(plain.content) > 8192
        for refused in ("gzip;q=0", "br", ""):
            answer = await http.get("/api/openapi.json", headers={"accept-encoding": refused})
            assert "content-encoding" not in answer.headers, refused
        packed = await http.get("/api/openapi.json", headers={"accept-encoding": "br, gzip"})
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["vary"] == "accept-encoding"
        assert int(packed.headers["content-length"]) < len(plain.content) / 3
        assert packed.json() == plain.json()
        # small answers are not worth it
        small = await http.get("/health", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in small.headers
