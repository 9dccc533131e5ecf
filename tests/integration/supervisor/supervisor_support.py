"""Helpers for the supervisor integration tests: config, HTTP, polling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from tenement.config import Config, Service, Settings

APP = str(Path(__file__).with_name("tenant_app.py"))


def make_config(
    tmp_path: Path,
    *,
    instances: dict[str, tuple[str, ...]] | None = None,
    settings: dict[str, Any] | None = None,
    **service: Any,
) -> Config:
    """One service ``app`` running tenant_app.py, with fast checks and short backoff."""
    env = {"TENANT": "{id}", "UNHEALTHY_FILE": str(tmp_path / "unhealthy-{id}")}
    env.update(service.pop("env", {}))
    fields: dict[str, Any] = {
        "command": sys.executable,
        "args": ("-u", APP),
        "isolation": "process",
        "socket": str(tmp_path / "sock" / "{name}-{id}.sock"),
        "health": "/health",
        "startup_timeout": 10,
        "stop_timeout": 2,
    }
    fields.update(service)
    app = Service(name="app", env=env, **fields)
    base = Settings(
        data_dir=tmp_path / "data",
        health_check_interval=0.05,
        backoff_base_ms=10,
        backoff_max_ms=40,
        # these tenants use the test's own files (tmp_path is 0700) and the runner's
        # python: they run as the test's user; users of their own are tested with the
        # server (tests/integration/server/test_tenant_isolation.py)
        tenant_users=False,
    )
    return Config(
        settings=attrs.evolve(base, **(settings or {})),
        services={"app": app},
        instances=instances or {},
    )


async def http_get(port: int, path: str = "/") -> tuple[int, bytes]:
    """A minimal HTTP/1.0 GET to 127.0.0.1:port -> (status, body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def wait_for(predicate: Callable[[], Any], *, timeout: float = 10) -> Any:
    """Poll ``predicate`` until it is truthy (never a bare sleep in a test)."""
    with trio.fail_after(timeout):
        while not (value := predicate()):
            await trio.sleep(0.01)
        return value


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
