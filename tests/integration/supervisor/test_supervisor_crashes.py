"""Crashes, health verdicts, backoff and the failed state, with real processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tenement.store import Store
from tenement.supervisor import Health, InstanceFailed, open_supervisor
from tests.integration.supervisor.supervisor_support import (
    http_get,
    make_config,
    pid_alive,
    wait_for,
)


async def test_a_crash_is_restarted_at_once(supervisor: Any, store: Store) -> None:
    view = await supervisor.spawn("app", "alice")
    await supervisor.set_weight("app:alice", 30)
    os.kill(view.pid, signal.SIGKILL)
    after = await wait_for(
        lambda: (
            (v := supervisor.get("app:alice"))
            and v.pid not in (None, view.pid)
            and v.state == "running"
            and v
        )
    )
    assert after.restarts == 1
    assert after.weight == 30  # kept across the respawn (the reference resets it to 100)
    assert (await http_get(after.port))[0] == 200
    actions = [row.action for row in store.recent_audit(20)]
    assert "crash-restart" in actions
    record = store.get_instance("app:alice")
    assert record.pid == after.pid and len(record.restart_times) == 1
    assert supervisor.statistics().instance_restarts == (("app", "alice", 1),)


async def test_a_crash_loop_ends_failed_kept_and_not_routed(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, env={"CRASH_AFTER": "0.2"}, settings={"max_restarts": 3})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "loop")
        view = await wait_for(lambda: (v := sup.get("app:loop")) and v.state == "failed" and v)
        assert view.health is Health.FAILED
        assert view.restarts == 3
        assert (view.pid, view.port) == (None, None)
        assert sup.target("app", "loop") is None
        assert sup.weighted_targets("app") == []
        # a request is refused (503), not told the tenant is unknown (404), and starts nothing
        assert sup.may_wake("app", "loop")
        with pytest.raises(InstanceFailed, match="has failed"):
            await sup.wake("app", "loop")
        assert sup.get("app:loop").pid is None
        await wait_for(lambda: "failed" in [row.action for row in store.recent_audit(20)])
        assert store.get_instance("app:loop").state == "failed"
        # by hand it comes back, with a fresh restart budget
        back = await sup.restart("app:loop")
        assert back.state == "running"
        assert back.pid is not None


async def test_unhealthy_is_restarted_then_recovers(supervisor: Any, tmp_path: Path) -> None:
    view = await supervisor.spawn("app", "sick")
    await wait_for(lambda: supervisor.get("app:sick").health is Health.HEALTHY)
    flag = tmp_path / "unhealthy-sick"
    flag.write_text("")
    await wait_for(lambda: supervisor.get("app:sick").restarts >= 1)
    assert not pid_alive(view.pid)  # the unhealthy process was stopped, not left behind
    flag.unlink()
    now = await wait_for(
        lambda: (v := supervisor.get("app:sick")) and v.health is Health.HEALTHY and v
    )
    assert now.pid != view.pid


async def test_health_goes_degraded_before_unhealthy(store: Store, tmp_path: Path) -> None:
    # a long interval: only the checks this test asks for run
    config = make_config(tmp_path, settings={"health_check_interval": 3600})
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "a")
        assert await sup.check_health("app:a") is Health.HEALTHY
        (tmp_path / "unhealthy-a").write_text("")
        seen = [await sup.check_health("app:a") for _ in range(2)]
        assert seen == [Health.DEGRADED, Health.DEGRADED]
        assert store.get_instance("app:a").health == "degraded"
