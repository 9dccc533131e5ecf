"""Detach, then a new supervisor adopts: same pids, still reachable, logs continue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenement.config import Config
from tenement.store import InstanceRecord, Store
from tenement.supervisor import SupervisorBusy, open_supervisor
from tenement.supervisor.procfs import read_start_ticks
from tests.integration.supervisor.supervisor_support import http_get, pid_alive, wait_for


async def test_detach_then_adopt(config: Config, store: Store) -> None:
    async with open_supervisor(config, store, log_poll_seconds=0.01) as first:
        view = await first.spawn("app", "alice")
        await first.set_weight("app:alice", 60)
        await http_get(view.port, "/say?before-detach")
        await wait_for(lambda: store.query_logs(search="before-detach"))
        first.detach()
    assert pid_alive(view.pid)
    # written while no server watches
    await http_get(view.port, "/say?while-alone")

    async with open_supervisor(config, store, log_poll_seconds=0.01) as second:
        adopted = second.get("app:alice")
        assert adopted is not None
        assert (adopted.pid, adopted.port, adopted.weight) == (view.pid, view.port, 60)
        assert (await http_get(view.port))[0] == 200
        await http_get(view.port, "/say?after-adopt")
        await wait_for(lambda: store.query_logs(search="after-adopt"))
        messages = [e.message for e in store.query_logs(process="app", level="stdout")]
        assert messages.count("before-detach") == 1
        assert messages.count("while-alone") == 1
        assert messages.count(f"starting pid={view.pid}") == 1
        # adopted means watched: a crash is noticed and restarted
        os.kill(view.pid, signal.SIGKILL)
        await wait_for(lambda: (v := second.get("app:alice")) and v.pid not in (None, view.pid))
    assert "adopt" in [row.action for row in store.recent_audit(50)]


async def test_a_tenant_that_died_unwatched_is_restarted(config: Config, store: Store) -> None:
    async with open_supervisor(config, store) as first:
        view = await first.spawn("app", "gone")
        first.detach()
    os.kill(view.pid, signal.SIGKILL)
    await wait_for(lambda: not pid_alive(view.pid))
    async with open_supervisor(config, store) as second:
        again = await wait_for(lambda: (v := second.get("app:gone")) and v.state == "running" and v)
        assert again.pid != view.pid
        assert again.restarts == 1
        assert store.get_instance("app:gone").pid == again.pid
        await wait_for(lambda: "crash-restart" in [r.action for r in store.recent_audit(20)])


async def test_a_stopped_row_stays_stopped_and_wakeable(config: Config, store: Store) -> None:
    async with open_supervisor(config, store) as first:
        await first.spawn("app", "resting")
        await first.stop("app:resting")
    async with open_supervisor(config, store) as second:
        assert second.get("app:resting") is None
        assert second.may_wake("app", "resting")  # known from its row


async def test_pid_reuse_is_not_adopted_nor_killed(config: Config, store: Store) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = read_start_ticks(stranger.pid)
        assert ticks is not None
        store.save_instance(
            InstanceRecord(
                instance_id="app:old",
                service="app",
                tenant="old",
                pid=stranger.pid,
                start_ticks=ticks - 1,  # same pid, another process start: not ours
                pgid=stranger.pid,
                port=31999,
                socket="/tmp/x.sock",
                state="running",
                updated_at=time.time(),
            )
        )
        async with open_supervisor(config, store) as sup:
            # ours died (its pid was reused): restarted as a new process, the stranger kept
            again = await wait_for(lambda: (v := sup.get("app:old")) and v.state == "running" and v)
            assert again.pid != stranger.pid
            assert stranger.poll() is None  # still running: never signalled
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


async def test_a_second_live_supervisor_is_refused(config: Config, store: Store) -> None:
    async with open_supervisor(config, store):
        with pytest.raises(SupervisorBusy, match="another tenement server"):
            async with open_supervisor(config, store):
                pass


async def test_removed_service_instances_are_stopped_on_adoption(
    config: Config, store: Store, tmp_path: Path
) -> None:
    async with open_supervisor(config, store) as first:
        view = await first.spawn("app", "orphan")
        first.detach()
    import attrs

    without = attrs.evolve(config, services={})
    async with open_supervisor(without, store) as second:
        assert second.get("app:orphan") is None
    assert not pid_alive(view.pid)
