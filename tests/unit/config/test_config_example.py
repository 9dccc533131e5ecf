"""examples/tenement.toml loads cleanly, and its notes app really serves notes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from tenement.config import read_config_file, render

EXAMPLES = Path(__file__).parents[3] / "examples"


def test_example_config_loads_without_warnings() -> None:
    config = read_config_file(EXAMPLES / "tenement.toml", cwd=Path("/srv"))

    assert config.warnings == ()
    assert config.instances == {"notes": ("alice", "bob")}
    notes = config.services["notes"]
    assert notes.isolation == "process"
    assert notes.health == "/health"
    notes.require_supported()
    # The app keeps its notes in the instance's own directory (quota, storage_persist).
    values = {
        "name": "notes",
        "id": "alice",
        "data_dir": config.settings.data_dir,
        "socket": notes.socket_path("alice"),
        "port": 30000,
    }
    data_dir = render(notes.env["DATA_DIR"], **values)
    assert Path(data_dir) == notes.instance_dir(config.settings.data_dir, "alice")
    assert render(notes.env["TENANT"], **values) == "alice"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_notes_app_serves_health_and_keeps_notes(tmp_path: Path) -> None:
    port = _free_port()
    data_dir = tmp_path / "notes" / "alice"
    env = {**os.environ, "PORT": str(port), "DATA_DIR": str(data_dir), "TENANT": "alice"}
    process = await trio.lowlevel.open_process(
        [sys.executable, str(EXAMPLES / "notes_app.py")], env=env, stdout=subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            with trio.fail_after(10):
                while True:
                    try:
                        health = await client.get("/health")
                        break
                    except httpx.ConnectError:
                        assert process.poll() is None, "notes_app exited before listening"
                        await trio.sleep(0.02)
            assert (health.status_code, health.text) == (200, "ok\n")

            assert (await client.get("/")).text == ""
            first = await client.post("/", content="buy milk")
            second = await client.post("/", content="call bob")
            assert (first.status_code, first.text) == (201, "note 1 saved for alice\n")
            assert second.text == "note 2 saved for alice\n"
            assert (await client.get("/")).text == "buy milk\ncall bob\n"
            assert (await client.post("/", content="")).status_code == 400
            assert (await client.get("/nope")).status_code == 404
        assert (data_dir / "notes.txt").read_text() == "buy milk\ncall bob\n"
    finally:
        process.terminate()
        await process.wait()


async def test_notes_app_without_port_exits_with_a_message(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("PORT", "DATA_DIR")}
    result = await trio.run_process(
        [sys.executable, str(EXAMPLES / "notes_app.py")],
        env=env,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 2
    assert b"set PORT (a number) and DATA_DIR" in result.stderr
