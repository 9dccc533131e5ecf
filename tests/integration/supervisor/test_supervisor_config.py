"""Reload, disk usage, and the connect check for services without a health path."""

from __future__ import annotations

from pathlib import Path

import attrs

from tenement.config import Service
from tenement.store import Store
from tenement.supervisor import Health, open_supervisor
from tenement.supervisor.lifecycle import measure_storage
from tests.integration.supervisor.supervisor_support import make_config, pid_alive, wait_for


async def test_reload_adds_services_and_stops_removed_ones(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with open_supervisor(config, store) as sup:
        old = await sup.spawn("app", "alice")
        other = attrs.evolve(config.services["app"], name="other")
        await sup.reload(attrs.evolve(config, services={"other": other}))
        assert not pid_alive(old.pid)
        assert sup.get("app:alice") is None
        assert sup.service("app") is None
        assert (await sup.spawn("other", "bob")).state == "running"


async def test_reload_starts_newly_listed_instances(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with open_supervisor(config, store) as sup:
        await sup.reload(attrs.evolve(config, instances={"app": ("listed",)}))
        await wait_for(lambda: (v := sup.get("app:listed")) and v.state == "running")


async def test_storage_usage_and_soft_quota(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, storage_quota_mb=1)
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "alice")
        (tmp_path / "data" / "app" / "alice" / "blob").write_bytes(b"x" * 900_000)
        await measure_storage(sup)
        info = sup.storage("app:alice")
        assert info.used_bytes == 900_000
        assert info.quota_bytes == 1024 * 1024
        assert 85 < info.usage_percent < 86
        assert info.path == str(tmp_path / "data" / "app" / "alice")
        assert sup.get("app:alice").storage_used_bytes == 900_000
        # "storage usage high": at least once (the maintenance pass runs every 50 ms here
        # and records it too while the instance is over its soft quota)
        assert dict(sup.statistics().events)["storage"] >= 1


async def test_without_health_path_a_connect_is_healthy(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, health=None)
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "alice")
        assert await sup.check_health("app:alice") is Health.HEALTHY


async def test_statistics(supervisor, store: Store) -> None:  # type: ignore[no-untyped-def]
    await supervisor.spawn("app", "a")
    await supervisor.spawn("app", "b")
    await supervisor.stop("app:b")
    stats = supervisor.statistics()
    assert stats.instances_up == 1
    assert stats.instances_failed == 0
    events = dict(stats.events)
    # a spawn retried on another port (a port race with other programs) counts twice
    assert events["spawn"] >= 2 and events["stop"] == 1


def test_service_type_is_the_config_one() -> None:
    assert Service(name="x", command="y").stop_timeout == 5
