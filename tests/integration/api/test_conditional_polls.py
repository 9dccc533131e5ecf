"""Conditional polls: ``GET /api/instances`` and ``/api/telemetry`` answer an unchanged
list with a bodiless 304, and anything that changes shows in a new ETag."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
import trio

from tenement.api.history import History
from tenement.supervisor.procfs import GroupUsage
from tests.integration.api.harness import Harness, open_api


@pytest.fixture
async def api(tmp_path: Path) -> Harness:
    async with open_api(tmp_path) as harness:
        yield harness


async def spawn_healthy(http: httpx.AsyncClient, tenant: str) -> None:
    response = await http.post("/api/instances/spawn", json={"process": "notes", "id": tenant})
    assert response.status_code == 200, response.text
    with trio.fail_after(20):
        while (await http.get(f"/api/instances/notes:{tenant}/health")).json()["health"] != (
            "healthy"
        ):
            await trio.sleep(0.05)


async def settled_tag(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """The answer once two in a row carry the same tag (a spawn's last writes, e.g. its
    first storage pass, may still change it)."""
    with trio.fail_after(20):
        last = await http.get(path)
        while True:
            answer = await http.get(path)
            assert answer.status_code == 200
            if answer.headers["etag"] == last.headers["etag"]:
                return answer
            last = answer


async def test_an_unchanged_list_is_a_304_while_uptime_grows(api: Harness) -> None:
    async with api.admin() as http:
        await spawn_healthy(http, "alice")
        first = await settled_tag(http, "/api/instances")
        tag = first.headers["etag"]
        assert tag.startswith('W/"')
        (alice,) = first.json()
        # the tag leaves out the clock: it stays while uptime grows (the client counts it)
        with trio.fail_after(20):
            while True:
                unchanged = await http.get("/api/instances", headers={"If-None-Match": tag})
                assert unchanged.status_code == 304, unchanged.text
                assert unchanged.content == b""
                assert unchanged.headers["etag"] == tag
                assert "content-length" not in unchanged.headers
                now = (await http.get("/api/instances")).json()[0]
                if now["uptime_secs"] > alice["uptime_secs"]:
                    break
                await trio.sleep(0.1)
        # a change: a new tag, and the whole list
        assert (await http.put("/api/instances/notes:alice/weight", json={"weight": 7})).is_success
        changed = await http.get("/api/instances", headers={"If-None-Match": tag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != tag
        assert changed.json()[0]["weight"] == 7
        # HEAD is conditional too
        head = await http.head("/api/instances", headers={"If-None-Match": changed.headers["etag"]})
        assert head.status_code == 304


async def test_a_tenant_has_its_own_tag_and_no_token_is_still_401(api: Harness) -> None:
    async with api.admin() as admin, api.tenant() as tenant:
        await spawn_healthy(admin, "alice")
        await spawn_healthy(admin, "bob")
        mine = await settled_tag(tenant, "/api/instances")
        assert [item["id"] for item in mine.json()] == ["notes:alice"]
        everyone = await settled_tag(admin, "/api/instances")
        assert mine.headers["etag"] != everyone.headers["etag"]
        # the admin's copy is not the tenant's
        answer = await tenant.get(
            "/api/instances", headers={"If-None-Match": everyone.headers["etag"]}
        )
        assert answer.status_code == 200
        assert [item["id"] for item in answer.json()] == ["notes:alice"]
        # bob's weight is no news to alice
        assert (await admin.put("/api/instances/notes:bob/weight", json={"weight": 3})).is_success
        answer = await tenant.get("/api/instances", headers={"If-None-Match": mine.headers["etag"]})
        assert answer.status_code == 304
    async with api.client() as anonymous:
        answer = await anonymous.get("/api/instances", headers={"If-None-Match": "*"})
        assert answer.status_code == 401


async def test_a_health_flip_is_a_new_tag_for_the_admin_and_the_tenant(api: Harness) -> None:
    """The admin's tag is a count of changes, not a hash of the list: a field set
    behind the API's back (the health checker's verdict) must move it too."""
    async with api.admin() as admin, api.tenant() as tenant:
        await spawn_healthy(admin, "alice")
        tags = {
            "admin": (await settled_tag(admin, "/api/instances")).headers["etag"],
            "tenant": (await settled_tag(tenant, "/api/instances")).headers["etag"],
        }
        (pid,) = [view.pid for view in api.supervisor.instances()]
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # its health checks time out from now on
        try:
            for who, http in (("admin", admin), ("tenant", tenant)):
                with trio.fail_after(30):
                    while True:
                        answer = await http.get(
                            "/api/instances", headers={"If-None-Match": tags[who]}
                        )
                        if answer.status_code == 200 and answer.json()[0]["health"] != "healthy":
                            break
                        assert answer.status_code in (200, 304), (who, answer.text)
                        await trio.sleep(0.1)
        finally:
            os.kill(pid, signal.SIGCONT)


async def test_another_tenants_memory_or_cpu_is_no_news_to_a_tenant(tmp_path: Path) -> None:
    # the tenant's list shows only its own usage, so its tag must not move with bob's:
    # else a tenant polling with its tag learns when another tenant is busy
    history = History()
    async with (
        open_api(tmp_path, request_history=history) as api,
        api.admin() as admin,
        api.tenant() as tenant,
    ):
        await spawn_healthy(admin, "alice")
        await spawn_healthy(admin, "bob")
        views = {view.tenant: view for view in api.supervisor.instances()}

        def sample(bob_rss: int, now: float) -> None:
            groups = {
                views["alice"].pid: GroupUsage(cpu_ticks=7, rss_bytes=1 << 20),
                views["bob"].pid: GroupUsage(cpu_ticks=7, rss_bytes=bob_rss),
            }
            history.sample_usage(views.values(), groups, now)

        sample(1 << 20, 1.0)
        sample(1 << 20, 2.0)  # both have a CPU percent now
        mine = await settled_tag(tenant, "/api/instances")
        everyone = await settled_tag(admin, "/api/instances")
        sample(5 << 20, 3.0)  # bob grows
        answer = await admin.get(
            "/api/instances", headers={"If-None-Match": everyone.headers["etag"]}
        )
        assert answer.status_code == 200
        assert answer.json()[1]["memory_bytes"] == 5 << 20
        answer = await tenant.get("/api/instances", headers={"If-None-Match": mine.headers["etag"]})
        assert answer.status_code == 304
        # alice's own change does show
        views["alice"] = next(v for v in api.supervisor.instances() if v.tenant == "alice")
        history.sample_usage(
            views.values(),
            {
                views["alice"].pid: GroupUsage(cpu_ticks=7, rss_bytes=2 << 20),
                views["bob"].pid: GroupUsage(cpu_ticks=7, rss_bytes=5 << 20),
            },
            4.0,
        )
        answer = await tenant.get("/api/instances", headers={"If-None-Match": mine.headers["etag"]})
        assert answer.status_code == 200
        assert answer.json()[0]["memory_bytes"] == 2 << 20


async def test_telemetry_is_a_304_until_a_request_is_proxied(api: Harness) -> None:
    async with api.admin() as admin:
        await spawn_healthy(admin, "alice")
    async with api.client() as anonymous:
        first = await settled_tag(anonymous, "/api/telemetry")
        tag = first.headers["etag"]
        answer = await anonymous.get("/api/telemetry", headers={"If-None-Match": tag})
        assert answer.status_code == 304
    async with api.client(headers={"Host": "alice.notes.localhost"}) as tenant_host:
        assert (await tenant_host.get("/slow")).status_code == 200
    async with api.client() as anonymous:
        answer = await anonymous.get("/api/telemetry", headers={"If-None-Match": tag})
        assert answer.status_code == 200
        assert answer.headers["etag"] != tag
        assert answer.json()["instances"][0]["requests_total"] == 1


@pytest.mark.parametrize(
    "condition",
    [
        "garbage",
        '"unterminated',
        "W/",
        ", ,",
        '"' + "x" * 12_000 + '"',
        ", ".join(f'W/"{n:016x}"' for n in range(600)),
        "\x7f\x01",
    ],
    ids=["garbage", "unterminated", "W-only", "empty-list", "huge-tag", "many-tags", "controls"],
)
async def test_a_condition_that_names_nothing_gets_the_whole_list(
    api: Harness, condition: str
) -> None:
    async with api.admin() as http:
        await spawn_healthy(http, "alice")
        answer = await http.get("/api/instances", headers={"If-None-Match": condition})
        assert answer.status_code == 200
        assert [item["id"] for item in answer.json()] == ["notes:alice"]
        many = ", ".join(f'W/"{n:016x}"' for n in range(600))
        tag = (await settled_tag(http, "/api/instances")).headers["etag"]
        named = await http.get("/api/instances", headers={"If-None-Match": f"{many}, {tag}"})
        assert named.status_code == 304
