"""A standby's wake, relayed to the leader's control socket, keeps the leader's answer:
an instance in backoff is refused with the seconds until its restart (``RestartPending``:
the standby's proxy then answers 503 with ``Retry-After``), a failed one as failed."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tenement.config import Config
from tenement.proxy import ProxyMetrics
from tenement.server.control import ControlApp, LeaderClient
from tenement.server.http import serve_http
from tenement.store import migrate_to_head, open_store
from tenement.supervisor import InstanceFailed, RestartPending, new_holder
from tests.integration.supervisor.supervisor_support import make_config, wait_for


async def not_found(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def leader_and_standby(
    nursery: trio.Nursery, tmp_path: Path, config: Config
) -> AsyncIterator[tuple[Any, LeaderClient]]:
    """A supervisor serving its control socket, registered as the lease holder, and a
    standby's client for it."""
    from tenement.supervisor import open_supervisor

    holder = new_holder()
    path = tmp_path / "c.sock"
    with open_store(f"sqlite:///{tmp_path}/data/tenement.db") as store:
        migrate_to_head(store, backup_dir=None)
        async with open_supervisor(config, store, holder=holder) as sup:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(path))
            control = ControlApp(not_found, lambda: sup, ProxyMetrics())
            await nursery.start(
                functools.partial(
                    serve_http, control, [sock], shutdown=trio.Event(), grace_seconds=1
                )
            )
            store.register_server(holder, os.getpid(), f"unix:{path}", time.time())
            yield sup, LeaderClient(store, new_holder())


async def test_a_relayed_wake_in_backoff_is_refused_with_retry_after(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path,
        request_timeout=1,
        settings={"max_restarts": 5, "backoff_base_ms": 20_000, "backoff_max_ms": 60000},
    )
    async with leader_and_standby(nursery, tmp_path, config) as (sup, standby):
        first = await sup.spawn("app", "t")
        os.kill(first.pid, signal.SIGKILL)  # restarted at once
        again = await wait_for(
            lambda: (v := sup.get("app:t")) and v.pid not in (None, first.pid) and v
        )
        os.kill(again.pid, signal.SIGKILL)  # restarted in 20 s: beyond request_timeout
        await wait_for(lambda: (v := sup.get("app:t")) and v.restart_at)
        with pytest.raises(RestartPending) as refused:
            await standby.wake("app", "t")
        assert 1 <= refused.value.retry_after_seconds <= 20
        assert "request_timeout" in str(refused.value)  # the leader's own message
        assert sup.get("app:t").pid is None  # still in backoff: nothing started


async def test_a_relayed_wake_of_a_failed_instance_is_refused_as_failed(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path, settings={"max_restarts": 1, "wake_any_id": True}, env={"EXIT_AT_ONCE": "1"}
    )
    async with leader_and_standby(nursery, tmp_path, config) as (sup, standby):
        with pytest.raises(InstanceFailed):  # its one failed wake spent the budget
            await standby.wake("app", "f")
        assert sup.get("app:f").state == "failed"
        with pytest.raises(InstanceFailed):
            await standby.wake("app", "f")
