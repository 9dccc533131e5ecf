"""A request that wakes a new tenant (`wake_any_id`) on a fleet: placed as a spawn is."""

from __future__ import annotations

import httpx

from tests.fleet.conftest import Fleet
from tests.fleet.test_fleet_move import post


async def test_a_new_tenant_woken_by_a_request_is_placed_by_the_policy(fleet: Fleet) -> None:
    """`wake_any_id`: a request for a tenant nobody runs yet, through a node that runs
    one already, starts it on the emptier node (as `ten spawn` would place it)."""
    a, b = fleet.node("a"), fleet.node("b")
    for node in (a, b):
        config = node.directory / "tenement.toml"
        config.write_text(
            config.read_text().replace("[settings]\n", "[settings]\nwake_any_id = true\n", 1)
        )
    fleet.make_token(a)
    await a.start()
    await b.start()
    busy = await post(
        fleet, a, "/api/instances/spawn", {"process": "echo", "id": "busy", "node": "a"}
    )
    assert busy.status_code == 200, busy.text
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as client:
        answer = await client.get("/", headers={"host": "fresh.echo.localhost"})
    assert answer.status_code == 200, answer.text
    row = fleet.instance_row("echo:fresh")
    assert row["node"] == "b" and answer.text == f"ok {row['pid']}"
    assert "placed echo:fresh on fleet node b (a request woke it)" in a.log
