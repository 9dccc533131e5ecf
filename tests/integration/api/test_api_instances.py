"""The instance endpoints over real HTTP against a real supervisor and tenant processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.integration.api.harness import Harness, open_api


@pytest.fixture
async def api(tmp_path: Path) -> Harness:
    async with open_api(tmp_path) as harness:
        yield harness


async def spawn(http, tenant: str = "alice") -> dict:  # type: ignore[no-untyped-def]
    response = await http.post("/api/instances/spawn", json={"process": "notes", "id": tenant})
    assert response.status_code == 200, response.text
    return response.json()


async def wait_healthy(http, iid: str) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(20):
        while (await http.get(f"/api/instances/{iid}/health")).json()["health"] != "healthy":
            await trio.sleep(0.05)


async def test_spawn_list_weight_health_storage_restart_stop(api: Harness) -> None:
    async with api.admin() as http:
        body = await spawn(http)
        assert body["instance"] == "notes:alice"
        assert isinstance(body["port"], int)
        again = await spawn(http)  # idempotent
        assert again["port"] == body["port"]

        listed = (await http.get("/api/instances")).json()
        assert [item["id"] for item in listed] == ["notes:alice"]
        assert listed[0]["socket"] == f"127.0.0.1:{body['port']}"
        assert listed[0]["weight"] == 100
        # a single host has no nodes to filter by: said so, not an empty list
        one_node = await http.get("/api/instances", params={"node": "web-1"})
        assert one_node.status_code == 400, one_node.text
        assert "Invalid node 'web-1': this server is not a fleet node" in one_node.text

        await wait_healthy(http, "notes:alice")

        response = await http.put("/api/instances/notes:alice/weight", json={"weight": 300})
        assert response.json() == {"instance": "notes:alice", "weight": 100}
        response = await http.put("/api/instances/notes:alice/weight", json={"weight": 7})
        assert response.json() == {"instance": "notes:alice", "weight": 7}
        response = await http.put("/api/instances/notes:alice/weight", json={"weight": -1})
        assert response.status_code == 422

        storage = (await http.get("/api/instances/notes:alice/storage")).json()
        assert storage["quota_bytes"] == 1024 * 1024
        assert storage["path"].endswith("notes/alice")

        response = await http.post("/api/instances/notes:alice/restart")
        assert response.status_code == 200
        assert response.json()["instance"] == "notes:alice"

        response = await http.delete("/api/instances/notes:alice")
        assert (response.status_code, response.content) == (204, b"")
        response = await http.delete("/api/instances/notes:alice")
        assert response.status_code == 404
        assert response.json() == {"error": "Instance not found: notes:alice"}
        assert (await http.get("/api/instances")).json() == []
        health = await http.get("/api/instances/notes:alice/health")
        assert health.json() == {"instance": "notes:alice", "health": "unknown"}
        storage = await http.get("/api/instances/notes:alice/storage")
        assert storage.status_code == 404


async def test_restart_of_a_stopped_instance_starts_it(api: Harness) -> None:
    async with api.admin() as http:
        response = await http.post("/api/instances/notes:carol/restart")
        assert response.status_code == 200, response.text
        assert [item["id"] for item in (await http.get("/api/instances")).json()] == ["notes:carol"]


async def test_an_unknown_service_is_404_with_the_references_message(api: Harness) -> None:
    # the reference answers 500; naming a service that is not configured is the client's error
    error = {"error": "Unknown process: nope"}
    async with api.admin() as http:
        response = await http.post("/api/instances/spawn", json={"process": "nope", "id": "a"})
        assert (response.status_code, response.json()) == (404, error)
        response = await http.post("/api/instances/nope:a/restart")
        assert (response.status_code, response.json()) == (404, error)
        response = await http.post("/api/deploy", json={"process": "nope", "version": "v1"})
        assert (response.status_code, response.json()) == (404, error)


async def test_a_tenant_token_sees_and_touches_only_its_own(api: Harness) -> None:
    async with api.admin() as admin, api.tenant() as tenant:
        await spawn(admin, "alice")
        await spawn(admin, "bob")
        listed = (await tenant.get("/api/instances")).json()
        assert [item["id"] for item in listed] == ["notes:alice"]
        assert len((await admin.get("/api/instances")).json()) == 2
        for method, path in [
            ("DELETE", "/api/instances/notes:bob"),
            ("POST", "/api/instances/notes:bob/restart"),
            ("GET", "/api/instances/notes:bob/health"),
            ("GET", "/api/instances/notes:bob/storage"),
        ]:
            response = await tenant.request(method, path)
            assert response.status_code == 403, (method, path)
        assert (await tenant.get("/api/instances/notes:alice/storage")).status_code == 200
        response = await tenant.delete("/api/instances/notes:alice")
        assert response.status_code == 204


async def test_deploy_and_route_swap_weights(api: Harness) -> None:
    async with api.admin() as http:
        response = await http.post(
            "/api/deploy", json={"process": "notes", "version": "v1", "timeout": 20}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "healthy"
        response = await http.post(
            "/api/deploy", json={"process": "notes", "version": "v2", "weight": 10}
        )
        assert response.json()["weight"] == 10
        response = await http.post(
            "/api/route", json={"process": "notes", "from": "v1", "to": "v2"}
        )
        assert response.json() == {
            "from_instance": "notes:v1",
            "to_instance": "notes:v2",
            "from_weight": 0,
            "to_weight": 100,
        }
        response = await http.post("/api/route", json={"process": "notes", "from": "x", "to": "v2"})
        assert response.status_code == 404  # the reference answers 500
        assert response.json() == {"error": "Instance notes:x not found"}  # the reference's words


async def test_an_instances_events_are_its_audit_rows_newest_first(api: Harness) -> None:
    async with api.admin() as admin, api.tenant() as tenant:
        await spawn(admin, "alice")
        await spawn(admin, "bob")
        assert (await admin.post("/api/instances/notes:alice/restart")).status_code == 200
        with trio.fail_after(20):
            while True:
                events = (await tenant.get("/api/instances/notes:alice/events")).json()
                # a restart is a stop (its own row) and a new spawn
                if [event["action"] for event in events] == ["spawn", "restart", "spawn"]:
                    break
                await trio.sleep(0.05)
        assert all(event["success"] is True for event in events)
        assert events[0]["timestamp"] >= events[1]["timestamp"] > 0
        limited = await admin.get("/api/instances/notes:alice/events", params={"limit": "1"})
        assert [event["action"] for event in limited.json()] == ["spawn"]
        bob = (await admin.get("/api/instances/notes:bob/events")).json()
        assert [event["action"] for event in bob] == ["spawn"]
        # a tenant token reads its own instance's only
        assert (await tenant.get("/api/instances/notes:bob/events")).status_code == 403
        assert (await admin.get("/api/instances/bad/events")).status_code == 400
