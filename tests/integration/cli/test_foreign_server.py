"""A server that is not tenement (python -m http.server): clear errors, no tracebacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.cli.live import invoke, static_http_server


@pytest.fixture
async def static_server(tmp_path: Path) -> AsyncIterator[str]:
    """`python -m http.server` over a directory where /api/instances is the file ``{}``."""
    root = tmp_path / "www"
    (root / "api").mkdir(parents=True)
    (root / "api" / "instances").write_text("{}")
    (root / "api" / "logs").write_text("not json")
    async with static_http_server(root) as url:
        yield url


async def test_unexpected_answers(static_server: str, tmp_path: Path) -> None:
    args = ["--server", static_server, "--token", "t"]
    listing = invoke(["ps", *args], cwd=tmp_path)
    assert listing.exit_code == 1
    assert "is not a list of instances" in listing.stderr
    assert invoke(["ps", "--json", *args], cwd=tmp_path).stdout == "{}\n"
    logs = invoke(["logs", *args], cwd=tmp_path)
    assert logs.exit_code == 1
    assert "not JSON" in logs.stderr
    stop = invoke(["stop", "api:x", *args], cwd=tmp_path)
    assert (stop.exit_code, stop.stdout) == (1, "")
    assert stop.stderr == "Error: Server returned 501 Unsupported method ('DELETE')\n"
    health = invoke(["health", "api:x", *args], cwd=tmp_path)
    assert health.stderr == "Error: Server returned 404 File not found\n"
