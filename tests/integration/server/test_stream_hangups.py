"""A client that hangs up on a log stream is no error of the server's.

Through a worker process (`workers = 2`): the worker relays the API to the leader's
control socket, and a client's hang-up closes that relay under the leader's stream.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.server.test_serve_lifecycle import CONFIG, admin_token
from tests.integration.server.test_switchover import Server


async def test_clients_leaving_their_log_streams_log_no_error(directory: Path) -> None:
    """A regression: each stream whose client hung up logged an ERROR with a 20-line
    traceback (the stream's last, empty part written to a closed socket). Tickets are
    cheap, so any token holder could fill the server's log with them."""
    (directory / "tenement.toml").write_text(
        CONFIG.replace("[settings]\n", "[settings]\nworkers = 2\n", 1)
    )
    token = admin_token(directory)
    server = Server(directory, "serve")
    try:
        await server.wait_ready()
        headers = {"authorization": f"Bearer {token}"}
        for _ in range(6):  # a worker or the leader takes each: some go through the relay
            async with (
                httpx.AsyncClient(base_url=server.url, headers=headers) as client,
                client.stream("GET", "/api/logs/stream") as response,
            ):
                assert response.status_code == 200
        # each stream's task ends on its hang-up; meanwhile the server serves on
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            for _ in range(20):
                assert (await client.get("/api/whoami")).status_code == 200
    finally:
        server.kill()
    log = (directory / "serve.log").read_text()
    assert "Traceback" not in log
    assert " ERROR " not in log
