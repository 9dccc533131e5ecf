"""Backoff as a state: what calls a scheduled restart off, and what counts against it.

Real tenant processes (tenant_app.py appends each start's time to ``STARTS_FILE``);
spawns are counted from those records and compared with the scheduled restart time the
supervisor shows (``InstanceView.restart_at``), never with the test's own timings.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from tenement.store import Store
from tenement.supervisor import InstanceNotFound, WakeError, open_supervisor
from tests.integration.supervisor.supervisor_support import make_config, wait_for

#: the second restart waits 2.5 s; no health checks after the first, which could restart
#: a tenant on a loaded machine and add starts the tests do not expect
SETTINGS = {
    "max_restarts": 5,
    "backoff_base_ms": 2500,
    "backoff_max_ms": 60000,
    "health_check_interval": 3600,
}


def starts(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def launches(sup: Any, path: Path) -> int:
    """Starts, less those repeated on another port because another program took the
    tenant's port (other test runs on this machine use the same port range)."""
    return len(starts(path)) - dict(sup.statistics().events).get("port_taken", 0)


def running(sup: Any, iid: str) -> bool:
    view = sup.get(iid)
    return view is not None and view.state == "running"


async def crash(sup: Any, iid: str) -> Any:
    """Kill ``iid``'s process; returns the view once it is restarted or in backoff."""
    before = sup.get(iid)
    os.kill(before.pid, signal.SIGKILL)
    return await wait_for(
        lambda: (
            (v := sup.get(iid))
            and (v.restart_at is not None or v.pid not in (None, before.pid))
            and v
        )
    )


async def in_backoff(sup: Any, iid: str) -> float:
    """Crash ``iid`` twice (the first restart is immediate, the second waits the base
    delay); returns the epoch time the second restart is scheduled for."""
    await crash(sup, iid)
    await wait_for(lambda: running(sup, iid))
    view = await crash(sup, iid)
    assert view.restart_at is not None and view.pid is None
    return view.restart_at


def acted_in_time(scheduled: float) -> None:
    """Skip when the test could not act before the restart was due (a loaded machine):
    what follows would not show anything then."""
    if time.time() >= scheduled:
        pytest.skip("the machine is too slow to act within the backoff delay")


async def test_an_operator_spawn_in_backoff_starts_at_once_and_once(
    store: Store, tmp_path: Path
) -> None:
    started = tmp_path / "starts"
    config = make_config(tmp_path, settings=SETTINGS, env={"STARTS_FILE": str(started)})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "op")
        scheduled = await in_backoff(sup, "app:op")
        view = await sup.spawn("app", "op")
        acted_in_time(scheduled)
        assert view.state == "running"
        assert view.restart_at is None
        assert launches(sup, started) == 3
        # past the time the called-off restart was due: it started nothing more
        await wait_for(lambda: time.time() > scheduled + 0.3)
        assert launches(sup, started) == 3
        assert sup.get("app:op").pid == view.pid


async def test_a_stop_in_backoff_calls_the_restart_off(store: Store, tmp_path: Path) -> None:
    started = tmp_path / "starts"
    config = make_config(tmp_path, settings=SETTINGS, env={"STARTS_FILE": str(started)})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "gone")
        scheduled = await in_backoff(sup, "app:gone")
        await sup.stop("app:gone")
        acted_in_time(scheduled)
        await wait_for(lambda: time.time() > scheduled + 0.3)
        assert launches(sup, started) == 2
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
        await wait_for(lambda: launches(sup, started) == 1)
        with pytest.raises(WakeError, match="has failed"):
            await sup.wake("app", "w")
        view = sup.get("app:w")
        assert (view.state, view.restarts) == ("failed", 3)
        assert launches(sup, started) == 1 + 3  # the wake and two scheduled restarts
        assert dict(sup.statistics().events)["wake_failed"] == 1
        actions = [(row.action, row.success) for row in store.recent_audit(20)]
        assert ("wake", False) in actions


async def test_a_wake_during_a_restart_delay_waits_for_it(store: Store, tmp_path: Path) -> None:
    """``ten restart`` waits the policy's delay; a request meanwhile does not start the
    instance early, it waits for the restart."""
    started = tmp_path / "starts"
    config = make_config(tmp_path, settings=SETTINGS, env={"STARTS_FILE": str(started)})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "r")
        await crash(sup, "app:r")  # one restart in the window: the next one waits
        await wait_for(lambda: running(sup, "app:r"))
        restarted: list[Any] = []

        async def restart() -> None:
            restarted.append(await sup.restart("app:r"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(restart)
            scheduled = await wait_for(lambda: (v := sup.get("app:r")) and v.restart_at)
            target = await sup.wake("app", "r")
        times = starts(started)
        assert launches(sup, started) == 3  # first start, the crash restart, the operator's restart
        assert times[-1] >= scheduled, (times[-1], scheduled)
        assert target.port == restarted[0].port


async def test_a_stop_during_a_restart_delay_wins(store: Store, tmp_path: Path) -> None:
    started = tmp_path / "starts"
    config = make_config(tmp_path, settings=SETTINGS, env={"STARTS_FILE": str(started)})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "s")
        await crash(sup, "app:s")
        await wait_for(lambda: running(sup, "app:s"))
        async with trio.open_nursery() as nursery:

            async def restart() -> None:
                with pytest.raises(InstanceNotFound):
                    await sup.restart("app:s")

            nursery.start_soon(restart)
            scheduled = await wait_for(lambda: (v := sup.get("app:s")) and v.restart_at)
            await sup.stop("app:s")
            acted_in_time(scheduled)
        assert launches(sup, started) == 2
        assert sup.get("app:s") is None
