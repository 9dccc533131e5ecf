"""Real responses validate against the live OpenAPI document's schemas."""

from __future__ import annotations

from pathlib import Path

import trio

from tenement.api import openapi_document
from tests.contract.openapi_facts import response_schema, validate
from tests.integration.api.harness import open_api

DOC = openapi_document()


def check(method: str, template: str, response) -> None:  # type: ignore[no-untyped-def]
    schema = response_schema(DOC, method, template, response.status_code)
    problems = validate(DOC, schema, response.json())
    assert not problems, (method, template, response.status_code, problems)


async def test_every_json_endpoint_answers_as_documented(tmp_path: Path) -> None:
    async with open_api(tmp_path) as api, api.admin() as http, api.client() as anonymous:
        check("GET", "/health", await anonymous.get("/health"))
        check("GET", "/api/telemetry", await anonymous.get("/api/telemetry"))
        spawn = await http.post("/api/instances/spawn", json={"process": "notes", "id": "alice"})
        check("POST", "/api/instances/spawn", spawn)
        check("GET", "/api/instances", await http.get("/api/instances"))
        check("GET", "/api/telemetry", await anonymous.get("/api/telemetry"))
        item = "/api/instances/{id}"
        weight = await http.put("/api/instances/notes:alice/weight", json={"weight": 500})
        check("PUT", f"{item}/weight", weight)
        with trio.fail_after(20):
            while True:
                health = await http.get("/api/instances/notes:alice/health")
                check("GET", f"{item}/health", health)
                if health.json()["health"] == "healthy":
                    break
                await trio.sleep(0.05)
        check("GET", f"{item}/storage", await http.get("/api/instances/notes:alice/storage"))
        check("GET", "/api/logs", await http.get("/api/logs"))
        check("GET", "/api/tls/status", await http.get("/api/tls/status"))
        deploy = await http.post("/api/deploy", json={"process": "notes", "version": "v2"})
        check("POST", "/api/deploy", deploy)
        route = await http.post(
            "/api/route", json={"process": "notes", "from": "alice", "to": "v2"}
        )
        check("POST", "/api/route", route)
        check("POST", f"{item}/restart", await http.post("/api/instances/notes:alice/restart"))
        # error bodies
        check("POST", "/api/instances/spawn", await http.post("/api/instances/spawn", json={}))
        check("GET", f"{item}/storage", await http.get("/api/instances/notes:zed/storage"))
        check("DELETE", item, await http.delete("/api/instances/bad"))
        check("DELETE", item, await http.delete("/api/instances/notes:zed"))
        assert (await http.delete("/api/instances/notes:alice")).status_code == 204
