"""Schemathesis against a live `ten serve`: no client error is a 500, and every answer is
one the OpenAPI document promises (its status and its body's schema).

The server runs as a real process with an admin token, a service (``api``, a tiny HTTP
app) and a running instance ``api:prod``, so paths and links have data to reach.
Schemathesis's own runner (``st run``, as a user would run it) gives every operation
positive and negative cases (its coverage and fuzzing phases), then follows the links it
infers between operations (stateful phase), with three checks: not_a_server_error,
status_code_conformance and response_schema_conformance.

The budget is fixed: examples per operation and phase, steps per scenario, no
per-example deadline: about 1,200 requests, 20-30 s on two idle cores (measured; with
a fifth of this budget it took 108 s on a machine at load average 500).
``SCHEMATHESIS_SEED=N`` replays a run (a failing run prints its seed and a curl command
per failure).

Left out: ``GET /api/logs/stream`` and ``GET /api/instances/stream``: an SSE stream ends
only when the server stops, so a call never returns (tests/integration/api covers them).

The runner, in a subprocess: the pytest plugin's ``from_fixture`` does not run under
pytest 9 (it reads ``request.node._nodeid``). One worker: with two, CPython 3.11 failed
inside the runner ("AST constructor recursion depth mismatch", hypothesis parsing lambda
sources in two threads at once).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.apps import LOGGING_APP
from tests.integration.cli.live import free_port

pytest.importorskip("schemathesis")

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
#: examples per operation and phase (and stateful scenarios); requests that start
#: processes (spawn, restart, deploy) set the pace
MAX_EXAMPLES = 50
STATEFUL_STEPS = 10
START_TIMEOUT = 30
#: the whole run's ceiling (the budget above ends it well before)
RUN_TIMEOUT = 400


# Restarts back off from 1 ms, not 1 s: schemathesis restarts instances hundreds of times.
CONFIG = f"""
[settings]
data_dir = "./data"
# the tenant is this test's script in a directory of the runner's: the server's user
tenant_users = false
health_check_interval = 1
backoff_base_ms = 1
backoff_max_ms = 10

[service.api]
command = "{sys.executable} app.py"
health = "/health"
isolation = "process"
"""


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    with trio.fail_after(START_TIMEOUT):
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"ten serve exited {proc.returncode}:\n{log.read_text()}")
            await trio.sleep(0.05)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(url, admin token) of a `ten serve` with one running instance, ``api:prod``."""
    project = tmp_path_factory.mktemp("schemathesis")
    (project / "app.py").write_text(LOGGING_APP)
    (project / "tenement.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}
    program = [sys.executable, "-m", "tenement"]
    subprocess.run(
        [*program, "token-gen"], cwd=project, env=env, check=True, capture_output=True, timeout=60
    )
    token = (project / "data" / "api_token").read_text().strip()
    url = f"http://127.0.0.1:{free_port()}"
    log = project / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*program, "serve", "--port", url.rsplit(":", 1)[1]],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        trio.run(_wait_ready, url, proc, log)
        spawned = httpx.post(
            f"{url}/api/instances/spawn",
            json={"process": "api", "id": "prod"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert spawned.status_code == 200, spawned.text
        yield url, token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _settings(token: str) -> str:
    """schemathesis.toml for the run (its CLI has no flag for the stateful step count)."""
    seed = os.environ.get("SCHEMATHESIS_SEED")
    return textwrap.dedent(
        f"""
        {f"seed = {int(seed)}" if seed else ""}
        request-timeout = 60
        headers = {{ Authorization = "Bearer {token}" }}

        [checks]
        enabled = false
        not_a_server_error.enabled = true
        status_code_conformance.enabled = true
        response_schema_conformance.enabled = true

        [generation]
        mode = "all"
        max-examples = {MAX_EXAMPLES}

        [phases]
        examples.enabled = false
        stateful.max-steps = {STATEFUL_STEPS}

        [[operations]]
        include-path = "/api/logs/stream"
        enabled = false

        [[operations]]
        include-path = "/api/instances/stream"
        enabled = false
        """
    )


def test_the_api_answers_every_request_as_its_document_says(
    live_server: tuple[str, str], tmp_path: Path
) -> None:
    url, token = live_server
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(_settings(token))
    run = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--no-color",
            "--config-file", str(settings),
            "run", f"{url}/api/openapi.json", "--checks", CHECKS,
            "--workers", "1", "--output-truncate", "false",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[report.find("FAILURES") :][-12000:] or report[-12000:]
    # the run reached every phase and operation it was asked to
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"{phase} (in" in report, report[-5000:]
    # every operation schemathesis finds (32) but the two event streams
    assert "Tested: 30" in report, report[-5000:]
    # the stateful phase followed links (the document's, from spawn, restart and deploy)
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", report)
    assert links is not None and int(links[1]) > 0, report[-5000:]
    print(report[report.find("Stateful (in") :][:400])
