"""Backoff as a state: what calls a scheduled restart off, and what counts against it.

Real tenant processes (tenant_app.py appends each start's time to ``STARTS_FILE``);
spawns are counted from those records.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tenement.store import Store
from tenement.supervisor import WakeError, open_supervisor
from tenement.supervisor.backoff import RestartPolicy, delay_seconds
from tests.integration.supervisor.supervisor_support import make_config, wait_for

#: the second restart waits 2.5 s: time enough for the test to act before it is due
SETTINGS = {"max_restarts": 5, "backoff_base_ms": 2500, "backoff_max_ms": 60000}


def starts(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


async def in_backoff(sup: Any, store: Store, iid: str) -> float:
    """Crash ``iid`` twice (the first restart is immediate, the second waits the base
    delay); returns the epoch time the second restart is scheduled for."""
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
    policy = RestartPolicy.from_settings(sup.config.settings)
    return record.restart_times[-1] + delay_seconds(policy, 1)


async def test_an_operator_spawn_in_backoff_starts_at_once_and_once(
    store: Store, tmp_path: Path
) -> None:
    started = tmp_path / "starts"
    config = make_config(tmp_path, settings=SETTINGS, env={"STARTS_FILE": str(started)})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "op")
        scheduled = await in_backoff(sup, store, "app:op")
        view = await sup.spawn("app", "op")
        assert view.state == "running"
        assert starts(started) == 3
        # past the time the called-off restart was due: it started nothing more
        await wait_for(lambda: time.time() > scheduled + 0.3)
        assert starts(started) == 3
        assert sup.get("app:op").pid == view.pid


async def test_a_stop_in_backoff_calls_the_restart_off(store: Store, tmp_path: Path) -> None:
    started = tmp_path / "starts"
    config = make_config(tmp_path, settings=SETTINGS, env={"STARTS_FILE": str(started)})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "gone")
        scheduled = await in_backoff(sup, store, "app:gone")
        await sup.stop("app:gone")
        await wait_for(lambda: time.time() > scheduled + 0.3)
        assert starts(started) == 2
        assert sup.get("app:gone") is None
        assert store.get_instance("app:gone").state == "stopped"


async def test_failed_wakes_count_until_the_instance_fails(store: Store, tmp_path: Path) -> None:
    """A wake that fails puts the instance in backoff; the request waits for the
    scheduled restarts (within request_timeout) and the budget runs out: failed."""
    started = tmp_path / "starts"
    config = make_config(
        tmp_path,
        settings={"max_restarts": 3, "backoff_base_ms": 50, "backoff_max_ms": 60000},
        env={"EXIT_AT_ONCE": "1", "STARTS_FILE": str(started)},
        instances={"app": ("w",)},
    )
    async with open_supervisor(config, store) as sup:
        # the [instances] start failed; it is an operator's start: not counted
        await wait_for(lambda: starts(started) == 1)
        with pytest.raises(WakeError, match="has failed"):
            await sup.wake("app", "w")
        view = sup.get("app:w")
        assert (view.state, view.restarts) == ("failed", 3)
        assert starts(started) == 1 + 3  # the wake and two scheduled restarts
        assert dict(sup.statistics().events)["wake_failed"] == 1
        actions = [(row.action, row.success) for row in store.recent_audit(20)]
        assert ("wake", False) in actions
