"""`ten move` of much data asks first, saying how long the tenant's requests would wait
(a live single-host server: its /storage answers; the move itself is then refused, as
this server is no fleet node, which shows the CLI went on to ask for it)."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.integration.cli.live import LiveServer, invoke, ten, wait_healthy

GIB = 1024**3
#: a tenant's data is measured every health check (conftest.py reads this)
SERVER_SETTINGS = "health_check_interval = 1"


async def test_a_move_of_much_data_asks_first_and_says_how_long(live_server: LiveServer) -> None:
    if live_server.is_reference:
        pytest.skip("the reference has no ten move")
    assert ten(live_server, "spawn", "api:big").exit_code == 0
    await wait_healthy(live_server, "api:big")
    with (live_server.data_dir / "api" / "big" / "blob").open("wb") as blob:
        blob.truncate(3 * GIB)  # sparse: 3 GiB by its size, no disk
    headers = {"Authorization": f"Bearer {live_server.token}"}
    async with httpx.AsyncClient(base_url=live_server.url, headers=headers) as api:
        with trio.fail_after(30):  # measured at the next health check
            while (await api.get("/api/instances/api:big/storage")).json()["used_bytes"] < 3 * GIB:
                await trio.sleep(0.2)

    args = [
        "move",
        "api:big",
        "--to",
        "b",
        "--server",
        live_server.url,
        "--token",
        live_server.token,
    ]
    for answer in ("", "n\n", "maybe\nno\n"):
        refused = invoke(args, cwd=live_server.project, input=answer)
        assert refused.exit_code == 1, refused
        assert (
            "api:big has 3.0 GiB of data: its requests wait while it is sent to b, about 30s"
            in (refused.stderr)
        )
        assert "Not moved: api:big runs where it was. Pass --yes" in refused.stderr
    for asked, extra in ((True, []), (False, ["--yes"])):
        went_on = invoke([*args, *extra], cwd=live_server.project, input="y\n")
        assert went_on.exit_code == 1, went_on
        assert ("Move it now?" in went_on.stderr) == asked
        assert "not a fleet node" in went_on.stderr  # the server's answer to the move

    # little data: no question
    (live_server.data_dir / "api" / "big" / "blob").unlink()
    async with httpx.AsyncClient(base_url=live_server.url, headers=headers) as api:
        with trio.fail_after(30):
            while (await api.get("/api/instances/api:big/storage")).json()["used_bytes"] >= GIB:
                await trio.sleep(0.2)
    quiet = invoke(args, cwd=live_server.project)
    assert "Move it now?" not in quiet.stderr and "not a fleet node" in quiet.stderr
