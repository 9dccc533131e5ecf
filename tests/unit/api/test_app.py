"""The API's HTTP behaviour that needs no supervisor: auth gate, routing, body errors."""

from __future__ import annotations

import hashlib
import json

import attrs
import httpx
import pytest

from tenement.api import build_api, openapi_document, routes
from tenement.api.auth import Authenticator
from tenement.config import Settings, TlsSettings

ADMIN = "the-admin-token-0123456789abcdefghijklmnopq"
TENANT = "alices-token-0123456789abcdefghijklmnopqrstu"


def fake_hash(token: str) -> str:
    return "h$" + hashlib.sha256(token.encode()).hexdigest()


@attrs.frozen
class Row:
    tenant: str
    prefix: str
    token_hash: str


@attrs.frozen
class TokenTable:
    def admin_token_hash(self) -> str:
        return fake_hash(ADMIN)

    def tenant_tokens_with_prefix(self, prefix: str) -> list[Row]:
        row = Row("alice", TENANT[:8], fake_hash(TENANT))
        return [row] if prefix == row.prefix else []


class NoSupervisor:
    """These tests never reach the supervisor; any use of it fails the test."""

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        raise AssertionError(f"the supervisor was used: {name}")


def client(*, ready: bool = True, settings: Settings | None = None) -> httpx.AsyncClient:
    table = TokenTable()
    auth = Authenticator(table, verify=lambda token, h: fake_hash(token) == h)
    app = build_api(
        NoSupervisor(), table, ready=lambda: ready, settings=settings, authenticator=auth
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
TENANT_HEADERS = {"Authorization": f"Bearer {TENANT}"}


async def test_health_answers_ok_only_when_ready() -> None:
    async with client(ready=True) as http:
        response = await http.get("/health")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
    async with client(ready=False) as http:
        response = await http.get("/health")
        assert (response.status_code, response.json()) == (503, {"status": "starting"})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/instances"),
        ("GET", "/api/nope"),
        ("GET", "/nope"),
        ("POST", "/api/deploy"),
        ("GET", "/api/logs/stream"),
    ],
)
async def test_private_and_unknown_paths_need_a_token_and_get_an_empty_401(
    method: str, path: str
) -> None:
    async with client() as http:
        response = await http.request(method, path)
        assert (response.status_code, response.content) == (401, b"")
        response = await http.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert (response.status_code, response.content) == (401, b"")


async def test_unknown_path_with_a_token_is_404_text() -> None:
    async with client() as http:
        response = await http.get("/nope", headers=ADMIN_HEADERS)
        assert (response.status_code, response.text) == (404, "Not found")


async def test_wrong_method_is_405_with_allow() -> None:
    async with client() as http:
        response = await http.post("/health")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET,HEAD"


async def test_dashboard_and_assets_are_public_html() -> None:
    async with client() as http:
        # a deeper asset path matches no route: the default handler's SPA fallback answers
        for path in ("/", "/assets/index-123.js", "/assets/js/chunks/app.js"):
            response = await http.get(path)
            assert response.status_code == 200
            assert "<title>tenement dashboard</title>" in response.text
            assert "/assets/app.js?v=" in response.text


async def test_openapi_document_is_public_and_matches_the_routes() -> None:
    async with client() as http:
        response = await http.get("/api/openapi.json")
        assert response.status_code == 200
        assert response.json() == json.loads(json.dumps(openapi_document()))
    documented = {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = {(route.method, route.path) for route in routes()}
    assert documented == served


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({}, b'{"process":"a","id":"b"}', 415, "Content-Type: application/json"),
        ({"content-type": "application/json"}, b'{"process":', 400, "parse"),
        ({"content-type": "application/json"}, b"[1]", 400, "JSON object"),
        ({"content-type": "application/json"}, b'{"id":"b"}', 422, "missing field `process`"),
        ({"content-type": "application/json"}, b'{"process":1,"id":"b"}', 422, "`process`"),
        ({"content-type": "application/json"}, b'{"process":"a b","id":"b"}', 400, "Invalid"),
    ],
    ids=["no-content-type", "syntax", "not-object", "missing", "wrong-type", "bad-name"],
)
async def test_bad_bodies_get_a_json_error(
    headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    async with client() as http:
        response = await http.post(
            "/api/instances/spawn", content=body, headers={**ADMIN_HEADERS, **headers}
        )
        assert response.status_code == status
        assert message in response.json()["error"]


async def test_a_tenant_token_is_refused_other_tenants_and_admin_endpoints() -> None:
    async with client() as http:
        response = await http.delete("/api/instances/notes:bob", headers=TENANT_HEADERS)
        assert response.status_code == 403
        assert response.json() == {"error": "Tenant token can only access instance 'alice'"}
        response = await http.get("/api/instances/notes:bob/storage", headers=TENANT_HEADERS)
        assert response.status_code == 403
        response = await http.post(
            "/api/instances/spawn", json={"process": "notes", "id": "bob"}, headers=TENANT_HEADERS
        )
        assert response.status_code == 403
        response = await http.post(
            "/api/deploy", json={"process": "notes", "version": "v2"}, headers=TENANT_HEADERS
        )
        assert response.json() == {"error": "Deploy requires admin token"}
        response = await http.post(
            "/api/route", json={"process": "n", "from": "a", "to": "b"}, headers=TENANT_HEADERS
        )
        assert response.json() == {"error": "Route swap requires admin token"}


@pytest.mark.parametrize("bad", ["nocolon", ":x", "x:", "a b:c"])
async def test_a_malformed_instance_id_is_400(bad: str) -> None:
    async with client() as http:
        response = await http.delete(f"/api/instances/{bad}", headers=ADMIN_HEADERS)
        assert response.status_code == 400
        assert "Invalid instance ID" in response.json()["error"]


async def test_logs_limit_must_be_a_number() -> None:
    async with client() as http:
        response = await http.get("/api/logs?limit=x", headers=ADMIN_HEADERS)
        assert response.status_code == 400
        assert "limit" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/logs?limit=", "/api/logs/stream?backlog="])
@pytest.mark.parametrize(
    "value",
    ["%C2%B2", "1" * 23, "18446744073709551616", "-1", "1" * 5000],
    ids=["superscript-two", "23-digits", "2**64", "negative", "5000-digits"],
)
async def test_a_count_outside_the_range_is_400_naming_it(path: str, value: str) -> None:
    # "²".isdigit() is True but int("²") fails; a 23-digit count overflowed SQLite
    name = path.rsplit("?", 1)[1].rstrip("=")
    async with client() as http:
        response = await http.get(path + value, headers=ADMIN_HEADERS)
        assert response.status_code == 400
        error = response.json()["error"]
        assert f"`{name}` must be an integer from 0 to 18446744073709551615" in error


@pytest.mark.parametrize("bracket", ["[", '{"a":'], ids=["arrays", "objects"])
async def test_deeply_nested_json_is_400(bracket: str) -> None:
    closing = "]" if bracket == "[" else "}"
    body = (bracket * 100_000 + "1" + closing * 100_000).encode()
    async with client() as http:
        response = await http.post(
            "/api/instances/spawn",
            content=body,
            headers={**ADMIN_HEADERS, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert "nested too deeply" in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [{"process": "-h", "id": "a"}, {"process": "notes", "id": "-h"}],
    ids=["service", "tenant"],
)
async def test_a_name_starting_with_a_dash_is_refused_at_spawn(body: dict[str, str]) -> None:
    # "-h" reached the app's command line as `--tenant -h`
    async with client() as http:
        response = await http.post("/api/instances/spawn", json=body, headers=ADMIN_HEADERS)
        assert response.status_code == 400
        assert "not starting with '-'" in response.json()["error"]


@pytest.mark.parametrize("bad", ["notes:-h", "-notes:a"])
async def test_an_instance_id_with_a_name_starting_with_a_dash_is_400(bad: str) -> None:
    async with client() as http:
        response = await http.delete(f"/api/instances/{bad}", headers=ADMIN_HEADERS)
        assert response.status_code == 400
        assert "not starting with '-'" in response.json()["error"]


async def test_tls_status_off_and_on() -> None:
    async with client() as http:
        response = await http.get("/api/tls/status", headers=ADMIN_HEADERS)
        assert response.json() == {
            "enabled": False,
            "domain": None,
            "staging": False,
            "https_port": 0,
            "http_port": 0,
            "recommendation": "Use --caddy flag with `ten install` for production HTTPS",
        }
    settings = Settings(tls=TlsSettings(enabled=True, domain="example.com", staging=True))
    async with client(settings=settings) as http:
        response = await http.get("/api/tls/status", headers=ADMIN_HEADERS)
        assert response.json() == {
            "enabled": True,
            "domain": "example.com",
            "staging": True,
            "https_port": 443,
            "http_port": 80,
            "recommendation": None,
        }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/deploy", {"process": "notes", "version": "v2", "timeout": 10**400}),
        ("/api/deploy", {"process": "notes", "version": "v2", "weight": 2**64}),
        ("/api/instances/notes:alice/weight", {"weight": 2**64}),
    ],
    ids=["deploy-timeout", "deploy-weight", "weight"],
)
async def test_an_integer_beyond_64_bits_is_422(path: str, body: dict[str, object]) -> None:
    # a timeout of 10**400 seconds reached trio as a float: OverflowError, 500
    async with client() as http:
        method = http.put if path.endswith("/weight") else http.post
        response = await method(path, json=body, headers=ADMIN_HEADERS)
        assert response.status_code == 422
        assert "must be an integer from 0 to 18446744073709551615" in response.json()["error"]


async def test_a_deploy_timeout_of_0_is_422() -> None:
    # it could only fail (500), and a failed deploy stops the instance it started
    body = {"process": "notes", "version": "v2", "timeout": 0}
    async with client() as http:
        response = await http.post("/api/deploy", json=body, headers=ADMIN_HEADERS)
        assert response.status_code == 422
        assert "`timeout` must be at least 1" in response.json()["error"]


async def test_spawn_on_a_node_of_a_single_host_is_400_saying_so() -> None:
    async with client() as http:
        response = await http.post(
            "/api/instances/spawn",
            json={"process": "notes", "id": "a", "node": "web-1"},
            headers=ADMIN_HEADERS,
        )
        assert response.status_code == 400
        assert "Invalid node 'web-1'" in response.json()["error"]
        assert "not a fleet node" in response.json()["error"]
        wrong = await http.post(
            "/api/instances/spawn",
            json={"process": "notes", "id": "a", "node": 3},
            headers=ADMIN_HEADERS,
        )
        assert wrong.status_code == 422
        assert "`node` must be a string" in wrong.json()["error"]
