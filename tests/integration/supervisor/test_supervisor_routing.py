"""Wake-once, idle reaping, weights, deploy and route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from tenement.store import Store
from tenement.supervisor import DeployError, InstanceNotFound, WakeError, open_supervisor
from tests.integration.supervisor.supervisor_support import (
    http_get,
    make_config,
    pid_alive,
    wait_for,
)


async def test_fifty_concurrent_wakes_start_one_process(supervisor: Any) -> None:
    targets = []

    async def wake() -> None:
        targets.append(await supervisor.wake("app", "sleepy"))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(wake)
    assert len(targets) == 50
    assert len({t.port for t in targets}) == 1
    assert dict(supervisor.statistics().events)["wake"] == 1
    assert len(supervisor.instances()) == 1
    assert (await http_get(targets[0].port))[0] == 200


async def test_a_wake_is_audited_once_even_as_the_server_stops(
    store: Store, tmp_path: Path
) -> None:
    """The wake's audit row is written beside the woken request, not before it, and a
    stop right after the wake does not lose it."""
    async with open_supervisor(make_config(tmp_path), store) as sup:
        await sup.wake("app", "w1")  # and stop at once
    wakes = [r for r in store.recent_audit(50) if r.action == "wake"]
    assert [(r.process, r.instance_id) for r in wakes] == [("app", "w1")]


async def test_wake_gives_up_after_startup_timeout(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, startup_timeout=0.3, env={"LISTEN_DELAY": "30"})
    async with open_supervisor(config, store) as sup:
        with pytest.raises(WakeError, match=r"failed to start within 0\.3 seconds"):
            await sup.wake("app", "slow")
        # a failed start counts against max_restarts; the process is left to the health checks
        assert sup.get("app:slow").restarts == 1
        assert dict(sup.statistics().events)["wake_failed"] == 1


async def test_may_wake_known_listed_or_any(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, instances={"app": ("listed",)})
    async with open_supervisor(config, store) as sup:
        assert sup.may_wake("app", "listed")
        assert not sup.may_wake("app", "stranger")
        assert not sup.may_wake("nope", "listed")
    anyone = make_config(tmp_path, settings={"wake_any_id": True})
    async with open_supervisor(anyone, store) as sup:
        assert sup.may_wake("app", "stranger")
        assert not sup.may_wake("app", "bad id!")


async def test_idle_instances_are_stopped_unless_connected(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, idle_timeout=0.2)
    async with open_supervisor(config, store) as sup:
        busy = await sup.spawn("app", "busy")
        with sup.connection("app:busy"):
            idle = await sup.spawn("app", "idle")
            await wait_for(lambda: sup.get("app:idle") is None)
            assert not pid_alive(idle.pid)
            assert sup.get("app:busy") is not None
        assert pid_alive(busy.pid)
        await wait_for(lambda: sup.get("app:busy") is None)


async def test_target_and_weighted_targets(supervisor: Any) -> None:
    await supervisor.spawn("app", "a")
    await supervisor.spawn("app", "b")
    assert await supervisor.set_weight("app:b", 0) == 0
    assert await supervisor.set_weight("app:a", 250) == 100
    assert [(t.tenant, t.weight) for t in supervisor.weighted_targets("app")] == [
        ("a", 100),
        ("b", 0),
    ]
    target = supervisor.target("app", "b")
    assert target is not None and target.weight == 0
    assert supervisor.target("app", "nobody") is None
    with pytest.raises(InstanceNotFound):
        await supervisor.set_weight("app:nobody", 5)


async def test_weight_survives_stop_and_start(supervisor: Any, store: Store) -> None:
    await supervisor.spawn("app", "a")
    await supervisor.set_weight("app:a", 40)
    await supervisor.stop("app:a")
    assert store.get_instance("app:a").weight == 40
    assert (await supervisor.spawn("app", "a")).weight == 40


async def test_deploy_waits_healthy_and_route_swaps(supervisor: Any, store: Store) -> None:
    v1 = await supervisor.deploy("app", "v1", weight=100, timeout=10)
    v2 = await supervisor.deploy("app", "v2", weight=10, timeout=10)
    assert (v1.weight, v2.weight) == (100, 10)
    old, new = await supervisor.route("app", "v1", "v2")
    assert (old.weight, new.weight) == (0, 100)
    assert [(t.tenant, t.weight) for t in supervisor.weighted_targets("app")] == [
        ("v1", 0),
        ("v2", 100),
    ]
    actions = [row.action for row in store.recent_audit(20)]
    assert actions.count("deploy") == 2 and "route" in actions
    with pytest.raises(InstanceNotFound):
        await supervisor.route("app", "v1", "v9")


async def test_deploy_that_never_gets_healthy_is_stopped(supervisor: Any, tmp_path: Path) -> None:
    (tmp_path / "unhealthy-v3").write_text("")
    with pytest.raises(DeployError, match=r"did not become healthy within 0\.5 seconds"):
        await supervisor.deploy("app", "v3", timeout=0.5)
    assert supervisor.get("app:v3") is None
