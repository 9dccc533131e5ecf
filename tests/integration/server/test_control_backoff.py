"""A standby's wake, relayed to the leader's control socket, keeps the backoff answer:
the leader's refusal carries the seconds until the restart, and the standby raises it as
``RestartPending`` (its proxy then answers 503 with ``Retry-After``)."""

from __future__ import annotations

import functools
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import trio

from tenement.proxy import ProxyMetrics
from tenement.server.control import ControlApp, LeaderClient
from tenement.server.http import serve_http
from tenement.store import migrate_to_head, open_store
from tenement.supervisor import RestartPending, new_holder
from tests.integration.supervisor.supervisor_support import make_config, wait_for


async def not_found(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_a_relayed_wake_in_backoff_is_refused_with_retry_after(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    from tenement.supervisor import open_supervisor

    config = make_config(
        tmp_path,
        request_timeout=1,
        settings={"max_restarts": 5, "backoff_base_ms": 5000, "backoff_max_ms": 60000},
    )
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
            standby = LeaderClient(store, new_holder())

            first = await sup.spawn("app", "t")
            os.kill(first.pid, signal.SIGKILL)  # restarted at once
            again = await wait_for(
                lambda: (v := sup.get("app:t")) and v.pid not in (None, first.pid) and v
            )
            os.kill(again.pid, signal.SIGKILL)  # restarted in 5 s: beyond request_timeout
            await wait_for(lambda: len(store.get_instance("app:t").restart_times) == 2)
            with pytest.raises(RestartPending) as refused:
                await standby.wake("app", "t")
            assert 1 <= refused.value.retry_after_seconds <= 5
            assert "request_timeout" in str(refused.value)  # the leader's own message
            assert sup.get("app:t").pid is None  # still in backoff: nothing started
