"""``/api/telemetry`` and ``/metrics`` after real proxied requests."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api.harness import Harness, open_api


@pytest.fixture
async def api(tmp_path: Path) -> Harness:
    async with open_api(tmp_path) as harness:
        yield harness


async def test_telemetry_and_metrics_count_proxied_requests(api: Harness) -> None:
    async with api.admin() as admin:
        response = await admin.post(
            "/api/instances/spawn", json={"process": "notes", "id": "alice"}
        )
        assert response.status_code == 200
    async with api.client(headers={"Host": "alice.notes.localhost"}) as tenant_host:
        with trio.fail_after(20):
            ok = 0
            while ok < 20:
                try:
                    response = await tenant_host.get("/slow")
                except httpx.TransportError:
                    await trio.sleep(0.05)
                    continue
                ok += response.status_code == 200
    async with api.client() as anonymous:
        telemetry = (await anonymous.get("/api/telemetry")).json()
        (alice,) = telemetry["instances"]
        assert alice["id"] == "notes:alice"
        assert alice["process"] == "notes"
        assert alice["instance"] == "alice"
        assert alice["requests_total"] >= 20
        assert alice["request_duration_p99_ms"] >= 20  # the app sleeps 20 ms: a real p99
        assert alice["request_duration_avg_ms"] > 0
        assert telemetry["summary"]["total_instances"] == 1
        assert telemetry["summary"]["total_requests"] >= 20

        response = await anonymous.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        families = {family.name: family for family in text_string_to_metric_families(response.text)}
        (requests,) = families["tenement_requests"].samples
        assert requests.labels == {"instance": "alice", "process": "notes"}
        assert requests.value >= 20
        assert [s.value for s in families["tenement_instances_up"].samples] == [1]
        storage = families["tenement_instance_storage_quota_bytes"].samples
        assert [(s.labels, s.value) for s in storage] == [
            ({"id": "alice", "process": "notes"}, 1024 * 1024)
        ]


async def test_health_is_public(api: Harness) -> None:
    async with api.client() as anonymous:
        response = await anonymous.get("/health")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
