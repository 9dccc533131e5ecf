"""spawn, stop, restart, ps/ls, health and weight against a live server."""

from __future__ import annotations

import json
import re

from tests.integration.cli.live import LiveServer, Outcome, invoke, ps_rows, ten, wait_healthy


async def test_ps_without_instances(live_server: LiveServer) -> None:
    for command in ("ps", "ls"):
        result = ten(live_server, command)
        assert result == Outcome(0, f"No running instances\nServer: {live_server.url}\n", "")


async def test_spawn_ps_health_weight_restart_stop(live_server: LiveServer) -> None:
    spawned = ten(live_server, "spawn", "api:prod")
    assert spawned.exit_code == 0, spawned.stderr
    assert re.fullmatch(r"Spawned api:prod\nListening on 127\.0\.0\.1:\d+\n", spawned.stdout)
    assert ten(live_server, "spawn", "api:prod") == spawned  # idempotent
    await wait_healthy(live_server, "api:prod")

    result = ten(live_server, "ps")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["", f"1 instance(s) running on {live_server.url}"]
    row = ps_rows(result.stdout)["api:prod"]
    assert row[0] == spawned.stdout.split("Listening on ")[1].strip()
    assert re.fullmatch(r"\d+[smhd]", row[1]) and re.fullmatch(r"\d+[smhd]", row[2])
    assert row[4] == "100"
    assert lines[1].startswith("api:prod" + " " * 13 + "127.0.0.1:")
    assert lines[1].endswith(" 100   ")

    assert ten(live_server, "weight", "api:prod", "50") == Outcome(
        0, "Set api:prod weight to 50\n", ""
    )
    assert ps_rows(ten(live_server, "ps").stdout)["api:prod"][4] == "50"
    capped = ten(live_server, "weight", "api:prod", "250")
    # the reference echoes the request value; we print what the server set
    expected = "250" if live_server.is_reference else "100"
    assert capped == Outcome(0, f"Set api:prod weight to {expected}\n", "")

    assert ten(live_server, "restart", "api:prod") == Outcome(0, "Restarted api:prod\n", "")
    await wait_healthy(live_server, "api:prod")
    assert ten(live_server, "spawn", "api:other").exit_code == 0
    listing = ten(live_server, "ls").stdout
    assert set(ps_rows(listing)) == {"api:prod", "api:other"}
    assert listing.endswith(f"\n2 instance(s) running on {live_server.url}\n")

    assert ten(live_server, "stop", "api:prod") == Outcome(0, "Stopped api:prod\n", "")
    assert ten(live_server, "stop", "api:other") == Outcome(0, "Stopped api:other\n", "")
    assert ten(live_server, "ps").stdout.startswith("No running instances\n")
    assert ten(live_server, "health", "api:prod") == Outcome(0, "api:prod: unknown\n", "")


async def test_json_output(live_server: LiveServer) -> None:
    assert json.loads(ten(live_server, "ps", "--json").stdout) == []
    assert ten(live_server, "spawn", "api:j").exit_code == 0
    await wait_healthy(live_server, "api:j")
    listing = json.loads(ten(live_server, "ps", "--json").stdout)
    assert [item["id"] for item in listing] == ["api:j"]
    assert {"socket", "uptime_secs", "idle_secs", "health", "weight"} <= set(listing[0])
    health = json.loads(ten(live_server, "health", "api:j", "--json").stdout)
    assert health == {"instance": "api:j", "health": "healthy"}


async def test_old_spawn_form(live_server: LiveServer) -> None:
    result = ten(live_server, "spawn", "api", "--id", "old")
    assert result.exit_code == 0
    assert result.stdout.startswith("Spawned api:old\n")
    assert "deprecated" in result.stderr and "ten spawn api:old" in result.stderr
    assert "api:old" in ps_rows(ten(live_server, "ps").stdout)
    both = ten(live_server, "spawn", "api:x", "-i", "y")
    assert both.exit_code == 2
    assert "not both" in both.stderr


async def test_global_options_before_and_after_the_command(live_server: LiveServer) -> None:
    before = invoke(
        ["--server", live_server.url, "--token", live_server.token, "ps"], cwd=live_server.project
    )
    assert before == Outcome(0, f"No running instances\nServer: {live_server.url}\n", "")
    slash = invoke(
        ["ps", "--token", live_server.token, "--server", live_server.url + "/"],
        cwd=live_server.project,
    )
    assert slash == before
    env = {"TENEMENT_SERVER": live_server.url, "TENEMENT_TOKEN": live_server.token}
    assert invoke(["ps"], cwd=live_server.project.parent, env=env) == before
