"""``/api/logs`` and the SSE stream over real HTTP, with real tenant output."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
import trio

from tests.integration.api.harness import Harness, open_api


@pytest.fixture
async def api(tmp_path: Path) -> Harness:
    async with open_api(tmp_path, keepalive_seconds=0.2) as harness:
        yield harness


async def start(http: httpx.AsyncClient, tenant: str) -> int:
    response = await http.post("/api/instances/spawn", json={"process": "notes", "id": tenant})
    assert response.status_code == 200, response.text
    return response.json()["port"]


async def say(port: int, text: str) -> None:
    """Make the tenant print ``text`` by calling it directly."""
    with trio.fail_after(20):
        while True:
            try:
                async with httpx.AsyncClient() as direct:
                    await direct.get(f"http://127.0.0.1:{port}/say", params={"text": text})
                return
            except httpx.TransportError:
                await trio.sleep(0.05)


async def wait_logged(http: httpx.AsyncClient, text: str, **params: str) -> list[dict]:
    with trio.fail_after(20):
        while True:
            entries = (await http.get("/api/logs", params={"search": text, **params})).json()
            if any(entry["message"] == text for entry in entries):
                return entries
            await trio.sleep(0.05)


async def test_logs_are_filtered_and_a_tenant_sees_only_its_own(api: Harness) -> None:
    async with api.admin() as admin, api.tenant() as tenant:
        alice, bob = await start(admin, "alice"), await start(admin, "bob")
        await say(alice, "hello-from-alice")
        await say(bob, "hello-from-bob")
        entries = await wait_logged(admin, "hello-from-alice")
        assert entries[-1]["process"] == "notes"
        assert entries[-1]["instance_id"] == "alice"
        assert entries[-1]["level"] == "stdout"
        assert isinstance(entries[-1]["timestamp"], int)
        await wait_logged(admin, "hello-from-bob")

        everything = (await admin.get("/api/logs")).json()
        assert {entry["instance_id"] for entry in everything} == {"alice", "bob"}
        own = (await tenant.get("/api/logs", params={"id": "bob"})).json()
        assert own
        assert {entry["instance_id"] for entry in own} == {"alice"}
        last = (await admin.get("/api/logs", params={"id": "alice", "limit": "1"})).json()
        assert len(last) == 1
        assert (await admin.get("/api/logs", params={"level": "stderr", "id": "bob"})).json() == []


async def read_events(response: httpx.Response, want: int, into: list[str]) -> None:
    """Collect SSE frames (data events and comments) until ``want`` data events arrived."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while "\n\n" in buffer:
            frame, buffer = buffer.split("\n\n", 1)
            into.append(frame)
            if sum(1 for f in into if f.startswith("data: ")) >= want:
                return


async def test_stream_sends_backlog_then_live_entries_and_keepalives(api: Harness) -> None:
    async with api.admin() as admin, api.tenant() as tenant:
        alice, bob = await start(admin, "alice"), await start(admin, "bob")
        await say(alice, "before-1")
        await say(alice, "before-2")
        await wait_logged(admin, "before-2")
        frames: list[str] = []
        async with tenant.stream("GET", "/api/logs/stream", params={"backlog": "2"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_events, response, 3, frames)
                    # Wait for a keep-alive, which proves the backlog went out first.
                    while ": keep-alive" not in frames:
                        await trio.sleep(0.01)
                    await say(bob, "live-bob")  # another tenant's: never shown
                    await say(alice, "live-alice")
        events = [json.loads(f.removeprefix("data: ")) for f in frames if f.startswith("data: ")]
        assert [event["message"] for event in events] == ["before-1", "before-2", "live-alice"]
        assert all(event["instance_id"] == "alice" for event in events)


async def test_stream_needs_a_token(api: Harness) -> None:
    async with api.client() as anonymous:
        assert (await anonymous.get("/api/logs/stream")).status_code == 401


async def test_stream_ends_when_the_server_stops_being_ready(tmp_path: Path) -> None:
    state = {"ready": True}
    async with (
        open_api(tmp_path, ready=lambda: state["ready"]) as api,
        api.admin() as admin,
        admin.stream("GET", "/api/logs/stream") as response,
    ):
        assert response.status_code == 200
        state["ready"] = False
        with trio.fail_after(20):
            async for _ in response.aiter_bytes():
                pass  # returns once the server ends the response


async def test_a_closed_stream_unsubscribes(api: Harness) -> None:
    async with api.admin() as admin:
        port = await start(admin, "alice")
        async with admin.stream("GET", "/api/logs/stream", params={"backlog": "1"}) as response:
            assert response.status_code == 200
            with trio.fail_after(20):
                while api.supervisor.statistics().logs.subscribers == 0:
                    await trio.sleep(0.01)
        # The feed notices a closed subscriber when it next publishes.
        with trio.fail_after(20):
            while api.supervisor.statistics().logs.subscribers:
                await say(port, "after-close")
                await trio.sleep(0.05)


async def test_a_stream_ticket_opens_one_stream_as_its_owner(api: Harness) -> None:
    """EventSource sends no header: a ticket from an authenticated POST stands in for the
    token, once, with the token's scope."""
    async with api.admin() as admin, api.tenant() as tenant, api.client() as anonymous:
        alice, bob = await start(admin, "alice"), await start(admin, "bob")
        # their start-up lines indexed first: the stream is to carry only what follows
        for tenant_id in ("alice", "bob"):
            await wait_logged(admin, "listening", id=tenant_id)
        issued = await tenant.post("/api/logs/stream/ticket")
        assert issued.status_code == 200
        ticket = issued.json()["ticket"]
        assert issued.json()["expires_in_secs"] == 30
        frames: list[str] = []
        query = {"ticket": ticket, "backlog": "0"}
        async with anonymous.stream("GET", "/api/logs/stream", params=query) as response:
            assert response.status_code == 200
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_events, response, 1, frames)
                    while api.supervisor.statistics().logs.subscribers == 0:
                        await trio.sleep(0.01)
                    await say(bob, "bob-secret")  # another tenant's: never shown
                    await say(alice, "alice-line")
        events = [json.loads(f.removeprefix("data: ")) for f in frames if f.startswith("data: ")]
        assert [event["message"] for event in events] == ["alice-line"]
        # used up; and a ticket opens nothing but the stream
        assert (await anonymous.get("/api/logs/stream", params=query)).status_code == 401
        other = (await tenant.post("/api/logs/stream/ticket")).json()["ticket"]
        assert (await anonymous.get("/api/instances", params={"ticket": other})).status_code == 401
        assert (await anonymous.get("/api/logs/stream", params={"ticket": "x"})).status_code == 401


def _fill(store: object, count: int, *, length: int = 10) -> None:
    from tenement.store import LogEntry

    base = 1_700_000_000_000
    entries = [
        LogEntry(base + n, "stdout", "notes", "alice", f"{n:0{length}d}") for n in range(count)
    ]
    store.insert_logs(entries)  # type: ignore[attr-defined]


async def test_an_answer_holds_at_most_the_last_10000_entries(api: Harness) -> None:
    """As 0.2.2, whose ring holds 10,000 lines: a tenant's flood of its log makes no
    answer larger than that."""
    _fill(api.store, 10_050)
    async with api.admin() as admin:
        for params in ({}, {"limit": "20000"}):
            entries = (await admin.get("/api/logs", params=params)).json()
            assert len(entries) == 10_000
            assert entries[0]["message"] == f"{50:010d}"
            assert entries[-1]["message"] == f"{10_049:010d}"
        assert len((await admin.get("/api/logs", params={"limit": "3"})).json()) == 3


async def test_an_answer_holds_at_most_16_million_characters_of_message(api: Harness) -> None:
    """A regression: 3,000 lines of 60 KB made a 167 MB answer (and 1.2 GB of server
    memory for four at once); the newest lines that fit are answered."""
    _fill(api.store, 300, length=64 * 1024)
    async with api.admin() as admin:
        entries = (await admin.get("/api/logs")).json()
    assert len(entries) == 16 * 1024 * 1024 // (64 * 1024)
    assert entries[-1]["message"] == f"{299:0{64 * 1024}d}"


async def test_a_stream_backlog_is_bounded_too(api: Harness) -> None:
    _fill(api.store, 10_050)
    async with api.admin() as admin:
        params = {"backlog": "999999999999"}
        async with admin.stream("GET", "/api/logs/stream", params=params) as response:
            count = 0
            with trio.fail_after(30):
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        count += 1
                        last = json.loads(line[6:])
                        if last["message"] == f"{10_049:010d}":
                            break
    assert count == 10_000


async def test_a_client_that_leaves_a_stream_logs_no_error(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A regression: each stream whose client hung up logged an ERROR with a 20-line
    traceback (the stream's last, empty part sent to a closed socket): tickets are cheap,
    so any token holder could fill the server's log."""
    async with api.admin() as admin:
        for _ in range(3):
            async with admin.stream("GET", "/api/logs/stream") as response:
                assert response.status_code == 200
                with trio.fail_after(20):
                    while api.supervisor.statistics().logs.subscribers == 0:
                        await trio.sleep(0.01)
        port = await start(admin, "alice")
        with trio.fail_after(20):  # the feed notices the closed subscribers when it publishes
            while api.supervisor.statistics().logs.subscribers:
                await say(port, "after-leaving")
                await trio.sleep(0.05)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
