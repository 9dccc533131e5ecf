"""Backoff holds under traffic: requests wait for a scheduled restart or get 503 with
``Retry-After``; they never start an instance early, and a failed instance stays failed.

Real supervisor, real tenant processes (tenant_app.py, which appends its start time to
``STARTS_FILE``), the proxy served as ``ten serve`` serves it. Spawns are counted and
compared with the restart schedule from those start records, not from request timings.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import trio

from tenement.config import Config
from tenement.proxy import Proxy
from tenement.store import Store, migrate_to_head, open_store
from tenement.supervisor.backoff import RestartPolicy, delay_seconds
from tests.integration.proxy.proxy_support import DOMAIN, ProxyServer, fallback_app, serve_proxy
from tests.integration.supervisor.supervisor_support import make_config, wait_for

CLIENTS = 20
#: no health checks after the first: on a loaded machine one could restart a tenant and
#: add starts the tests do not expect
QUIET = {"max_restarts": 5, "backoff_max_ms": 60000, "health_check_interval": 3600}


@contextlib.asynccontextmanager
async def proxied(
    nursery: trio.Nursery, tmp_path: Path, config: Config
) -> AsyncIterator[tuple[Any, Store, ProxyServer]]:
    from tenement.supervisor import open_supervisor

    with open_store(f"sqlite:///{tmp_path}/data/tenement.db") as store:
        migrate_to_head(store, backup_dir=None)
        async with open_supervisor(config, store, environ=dict(os.environ)) as sup:
            server = await serve_proxy(nursery, Proxy(sup, domain=DOMAIN, fallback=fallback_app))
            yield sup, store, server


def starts(path: Path) -> list[float]:
    """The start times tenant_app.py recorded, one per process started."""
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def port_races(sup: Any) -> int:
    """Starts repeated on another port because another program took the tenant's port
    (other test runs on this machine use the same port range): not restarts."""
    return dict(sup.statistics().events).get("port_taken", 0)


async def test_a_request_storm_does_not_respawn_an_app_that_exits_at_once(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    started = tmp_path / "starts"
    broken = tmp_path / "broken"
    broken.write_text("")
    settings = {
        "max_restarts": 3,
        "backoff_base_ms": 200,
        "backoff_max_ms": 60000,
        "wake_any_id": True,
    }
    config = make_config(
        tmp_path,
        settings=settings,
        env={"EXIT_IF_FILE": str(broken), "STARTS_FILE": str(started)},
    )
    policy = RestartPolicy.from_settings(config.settings)
    host = {"host": f"storm.app.{DOMAIN}"}
    async with proxied(nursery, tmp_path, config) as (sup, store, server):
        statuses: list[int] = []
        done = trio.Event()

        async def client() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                while not done.is_set():
                    statuses.append((await http.get("/", headers=host)).status_code)

        async with trio.open_nursery() as clients:
            for _ in range(CLIENTS):
                clients.start_soon(client)
            # hammer until the instance failed (or it was started more often than allowed),
            # then 100 requests more: none of them may start it again
            await wait_for(
                lambda: (
                    len(starts(started)) - port_races(sup) > policy.max_restarts
                    or ((v := sup.get("app:storm")) is not None and v.state == "failed")
                ),
                timeout=60,
            )
            after_failed = len(statuses) + 100
            await wait_for(lambda: len(statuses) >= after_failed, timeout=60)
            done.set()

        times = starts(started)
        races = port_races(sup)
        assert 1 <= len(times) - races <= policy.max_restarts, (times, races)
        if not races:  # a start repeated on another port follows the first at once
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert all(gap >= policy.base_ms / 1000 for gap in gaps), gaps
        view = sup.get("app:storm")
        assert view.state == "failed"
        assert view.restarts == policy.max_restarts
        # nothing answers but the proxy: each request waited or was refused, none spawned
        assert set(statuses) == {503}

        # a failed instance stays failed, whoever asks, until an operator restarts it
        broken.unlink()
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            refused = await http.get("/", headers=host)
            assert (refused.status_code, refused.text) == (503, "Service temporarily unavailable")
            assert len(starts(started)) == len(times)
            back = await sup.restart("app:storm")
            assert back.state == "running"
            assert len(store.get_instance("app:storm").restart_times) <= 1  # history reset
            answered = await http.get("/", headers=host)
            assert answered.status_code == 200
            assert answered.text == f"storm pid={back.pid}"


async def _kill_twice(sup: Any, store: Store, iid: str) -> tuple[float, float]:
    """Crash ``iid`` (restarted at once), then crash it again: the second restart is
    scheduled after the backoff delay. Returns (scheduled restart epoch, delay)."""
    policy = RestartPolicy.from_settings(sup.config.settings)
    first = sup.get(iid)
    os.kill(first.pid, signal.SIGKILL)
    again = await wait_for(
        lambda: (
            (v := sup.get(iid)) and v.state == "running" and v.pid not in (None, first.pid) and v
        )
    )
    os.kill(again.pid, signal.SIGKILL)
    record = await wait_for(
        lambda: (r := store.get_instance(iid)) and r.pid is None and len(r.restart_times) == 2 and r
    )
    delay = delay_seconds(policy, len(record.restart_times) - 1)
    assert delay > 0
    scheduled = record.restart_times[-1] + delay
    assert sup.get(iid).restart_at == scheduled  # what the supervisor shows as due
    return scheduled, delay


async def test_a_request_during_backoff_waits_for_the_scheduled_restart(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    started = tmp_path / "starts"
    config = make_config(
        tmp_path,
        settings={**QUIET, "backoff_base_ms": 2000},
        env={"STARTS_FILE": str(started)},
    )
    async with proxied(nursery, tmp_path, config) as (sup, store, server):
        await sup.spawn("app", "crash")
        scheduled, _ = await _kill_twice(sup, store, "app:crash")
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            response = await http.get("/", headers={"host": f"crash.app.{DOMAIN}"})
        assert response.status_code == 200
        times = starts(started)
        # the first start and two restarts; the request added none
        assert len(times) - port_races(sup) == 3
        assert times[-1] >= scheduled, (times[-1], scheduled)
        assert response.text == f"crash pid={sup.get('app:crash').pid}"


async def test_a_restart_beyond_request_timeout_gets_503_with_retry_after(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    started = tmp_path / "starts"
    config = make_config(
        tmp_path,
        request_timeout=1,
        settings={**QUIET, "backoff_base_ms": 20_000},
        env={"STARTS_FILE": str(started)},
    )
    async with proxied(nursery, tmp_path, config) as (sup, store, server):
        await sup.spawn("app", "slow")
        _, delay = await _kill_twice(sup, store, "app:slow")
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            response = await http.get("/", headers={"host": f"slow.app.{DOMAIN}"})
        assert (response.status_code, response.text) == (503, "Service temporarily unavailable")
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= delay
        assert len(starts(started)) - port_races(sup) == 2  # the request started nothing
        view = sup.get("app:slow")
        assert (view.state, view.pid) == ("starting", None)  # still in backoff
