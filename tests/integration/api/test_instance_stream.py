"""``GET /api/instances/stream`` over real HTTP: it says when the list changed, and sends
the memory and CPU that changed at a sample; a tenant hears of its own instances only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import trio

from tenement.api.history import History
from tenement.supervisor.procfs import GroupUsage
from tests.integration.api.harness import open_api
from tests.integration.api.test_conditional_polls import settled_tag, spawn_healthy


class Events:
    """The named events of one open stream, as they come (``(name, data)``)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    async def read(self, response: httpx.Response) -> None:
        buffer = ""
        async for chunk in response.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                fields = dict(
                    line.split(": ", 1) for line in frame.splitlines() if not line.startswith(":")
                )
                if "event" in fields:
                    self.seen.append((fields["event"], json.loads(fields["data"])))

    async def wait(self, test: Callable[[str, object], bool], what: str) -> tuple[str, object]:
        with trio.move_on_after(20):
            while True:
                for name, data in self.seen:
                    if test(name, data):
                        return name, data
                await trio.sleep(0.02)
        raise AssertionError(f"no event of {what} in 20 s: {self.seen}")


async def test_changes_and_usage_come_by_the_stream_a_tenant_hears_its_own(
    tmp_path: Path,
) -> None:
    history = History()
    async with (
        open_api(tmp_path, request_history=history) as api,
        api.admin() as admin,
        api.tenant() as tenant,
        api.client() as anonymous,
    ):
        await spawn_healthy(admin, "alice")
        await spawn_healthy(admin, "bob")
        views = {view.tenant: view for view in api.supervisor.instances()}

        def sample(alice_rss: int, bob_rss: int, now: float) -> None:
            groups = {
                views["alice"].pid: GroupUsage(cpu_ticks=7, rss_bytes=alice_rss),
                views["bob"].pid: GroupUsage(cpu_ticks=7, rss_bytes=bob_rss),
            }
            history.sample_usage(views.values(), groups, now)

        sample(1 << 20, 1 << 20, 1.0)
        sample(1 << 20, 1 << 20, 2.0)  # both have a CPU percent now
        # alice's own list settled (a spawn's last writes would be news to her)
        await settled_tag(tenant, "/api/instances")
        ticket = (await tenant.post("/api/logs/stream/ticket")).json()["ticket"]
        everyone, alices = Events(), Events()
        async with (
            admin.stream("GET", "/api/instances/stream") as all_of_it,
            anonymous.stream("GET", "/api/instances/stream", params={"ticket": ticket}) as own,
            trio.open_nursery() as nursery,
        ):
            assert all_of_it.status_code == own.status_code == 200
            assert own.headers["content-type"] == "text/event-stream"
            nursery.start_soon(everyone.read, all_of_it)
            nursery.start_soon(alices.read, own)
            # bob grows, then alice: each stream gets the rows that changed, its own only
            sample(1 << 20, 5 << 20, 3.0)
            _, data = await everyone.wait(lambda n, d: n == "usage", "bob's usage")
            assert data == {"notes:bob": {"memory_bytes": 5 << 20, "cpu_percent": 0.0}}
            sample(2 << 20, 5 << 20, 4.0)
            await everyone.wait(lambda n, d: n == "usage" and "notes:alice" in d, "alice's")
            _, data = await alices.wait(lambda n, d: n == "usage", "alice's own usage")
            assert data == {"notes:alice": {"memory_bytes": 2 << 20, "cpu_percent": 0.0}}
            assert all("notes:bob" not in data for name, data in alices.seen if name == "usage")
            # bob's change is no news to alice: by the time her next usage comes, a
            # "changed" for it would have come before it (one check sends both, in order)
            put = await admin.put("/api/instances/notes:bob/weight", json={"weight": 9})
            assert put.is_success
            await everyone.wait(lambda n, d: n == "changed", "bob's change, to the admin")
            sample(3 << 20, 5 << 20, 5.0)
            await alices.wait(
                lambda n, d: n == "usage" and d["notes:alice"]["memory_bytes"] == 3 << 20,
                "alice's next usage",
            )
            assert [name for name, _ in alices.seen] == ["usage", "usage"]
            # a change of what the list shows: both hear of it (it is alice's)
            put = await admin.put("/api/instances/notes:alice/weight", json={"weight": 7})
            assert put.is_success
            for events in (everyone, alices):
                await events.wait(lambda n, d: n == "changed", "a change")
            nursery.cancel_scope.cancel()
        # a ticket opens one stream, once
        again = await anonymous.get("/api/instances/stream", params={"ticket": ticket})
        assert again.status_code == 401


async def test_the_stream_ends_when_the_server_stops_being_ready(tmp_path: Path) -> None:
    state = {"ready": True}
    async with (
        open_api(tmp_path, ready=lambda: state["ready"]) as api,
        api.admin() as admin,
        admin.stream("GET", "/api/instances/stream") as response,
    ):
        assert response.status_code == 200
        state["ready"] = False
        with trio.fail_after(20):
            async for _ in response.aiter_bytes():
                pass  # returns once the server ends the response
