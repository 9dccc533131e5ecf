"""Spawn and stop with real tenant processes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from tenement.config import Config
from tenement.store import Store
from tenement.supervisor import (
    Health,
    InstanceNotFound,
    SpawnError,
    UnknownService,
    open_supervisor,
)
from tests.integration.supervisor.supervisor_support import (
    http_get,
    make_config,
    pid_alive,
    wait_for,
)


async def test_spawn_runs_the_app_on_its_port(
    supervisor: Any, store: Store, tmp_path: Path
) -> None:
    view = await supervisor.spawn("app", "alice")
    assert (view.id, view.state, view.weight) == ("app:alice", "running", 100)
    assert 30000 <= view.port <= 40000
    status, body = await http_get(view.port)
    assert status == 200
    assert body == f"alice pid={view.pid}".encode()
    assert (tmp_path / "data" / "app" / "alice").is_dir()
    record = store.get_instance("app:alice")
    assert (record.pid, record.port, record.state) == (view.pid, view.port, "running")
    assert record.start_ticks is not None
    assert ("spawn", "app", "alice") in [
        (row.action, row.process, row.instance_id) for row in store.recent_audit(10)
    ]


async def test_environment_port_socket_and_scrubbing(
    config: Config, store: Store, tmp_path: Path
) -> None:
    environ = dict(os.environ)
    environ.update(NOTIFY_SOCKET="/run/systemd/notify", LISTEN_FDS="2", KEEP_ME="yes")
    async with open_supervisor(config, store, environ=environ) as sup:
        view = await sup.spawn("app", "bob")
        assert await http_get(view.port, "/env?PORT") == (200, str(view.port).encode())
        expected_socket = str(tmp_path / "sock" / "app-bob.sock").encode()
        assert await http_get(view.port, "/env?SOCKET_PATH") == (200, expected_socket)
        assert await http_get(view.port, "/env?TENANT") == (200, b"bob")
        assert await http_get(view.port, "/env?KEEP_ME") == (200, b"yes")
        assert (await http_get(view.port, "/env?NOTIFY_SOCKET"))[0] == 404
        assert (await http_get(view.port, "/env?LISTEN_FDS"))[0] == 404


async def test_spawn_is_idempotent(supervisor: Any) -> None:
    first, second = await supervisor.spawn("app", "a"), await supervisor.spawn("app", "a")
    assert first.pid == second.pid
    assert len(supervisor.instances()) == 1


async def test_unknown_service(supervisor: Any) -> None:
    with pytest.raises(UnknownService, match="Unknown process: nope"):
        await supervisor.spawn("nope", "alice")


async def test_failed_exec_leaves_nothing_stuck(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    broken = config.services["app"]
    config = attrs.evolve(
        config,
        services={"app": attrs.evolve(broken, command="/nonexistent/program", args=())},
    )
    async with open_supervisor(config, store) as sup:
        for _ in range(2):  # the second try fails the same way: no guard left behind
            with pytest.raises(SpawnError):
                await sup.spawn("app", "alice")
        assert sup.instances() == []
        assert sup.allocated_ports == frozenset()


async def test_exit_before_accepting_is_a_spawn_error(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, env={"EXIT_AT_ONCE": "1"})
    async with open_supervisor(config, store) as sup:
        with pytest.raises(SpawnError, match="exited with code 4"):
            await sup.spawn("app", "alice")
        assert sup.get("app:alice") is None
        assert sup.allocated_ports == frozenset()


async def test_stop_releases_everything(supervisor: Any, store: Store) -> None:
    view = await supervisor.spawn("app", "alice")
    await supervisor.stop("app:alice")
    assert not pid_alive(view.pid)
    assert supervisor.get("app:alice") is None
    assert supervisor.allocated_ports == frozenset()
    record = store.get_instance("app:alice")
    assert (record.state, record.pid) == ("stopped", None)
    with pytest.raises(InstanceNotFound, match="Instance not found: app:alice"):
        await supervisor.stop("app:alice")


async def test_storage_persist_false_deletes_the_data_dir(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, storage_persist=False)
    async with open_supervisor(config, store) as sup:
        await sup.spawn("app", "alice")
        data = tmp_path / "data" / "app" / "alice"
        (data / "file").write_text("x")
        await sup.stop("app:alice")
        assert not data.exists()


async def test_stop_escalates_to_sigkill_for_the_whole_group(store: Store, tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    config = make_config(
        tmp_path, stop_timeout=0.3, env={"IGNORE_TERM": "1", "CHILD_PID_FILE": str(child_file)}
    )
    async with open_supervisor(config, store) as sup:
        view = await sup.spawn("app", "stubborn")
        child = int(await wait_for(lambda: child_file.exists() and child_file.read_text()))
        assert pid_alive(child)
        await sup.stop("app:stubborn")
        assert not pid_alive(view.pid)
        await wait_for(lambda: not pid_alive(child))
        assert dict(sup.statistics().events)["kill"] == 1


async def test_exit_stops_everything(config: Config, store: Store) -> None:
    async with open_supervisor(config, store) as sup:
        pids = [(await sup.spawn("app", name)).pid for name in ("a", "b", "c")]
    assert not any(pid_alive(pid) for pid in pids)
    assert {r.state for r in store.load_instances()} == {"stopped"}


async def test_instances_table_are_spawned_at_start(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, instances={"app": ("one", "two")})
    async with open_supervisor(config, store) as sup:
        await wait_for(lambda: len([v for v in sup.instances() if v.state == "running"]) == 2)
        assert {v.tenant for v in sup.instances()} == {"one", "two"}


async def test_hundred_concurrent_spawns(supervisor: Any) -> None:
    views = []

    async def spawn(i: int) -> None:
        views.append(await supervisor.spawn("app", f"t{i}"))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(spawn, i)
    assert len({v.port for v in views}) == 100
    assert len({v.pid for v in views}) == 100
    assert all(v.state == "running" for v in supervisor.instances())


async def test_check_health(supervisor: Any, tmp_path: Path) -> None:
    await supervisor.spawn("app", "alice")
    assert await supervisor.check_health("app:alice") is Health.HEALTHY
    with pytest.raises(InstanceNotFound):
        await supervisor.check_health("app:nobody")


async def test_unsupported_isolation_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, isolation="firecracker")
    async with open_supervisor(config, store) as sup:
        with pytest.raises(SpawnError, match="not supported"):
            await sup.spawn("app", "alice")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="namespace isolation needs root and util-linux unshare",
)
async def test_namespace_isolation_spawn_crash_and_stop(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, isolation="namespace")
    async with open_supervisor(config, store) as sup:
        view = await sup.spawn("app", "ns")
        status, body = await http_get(view.port)
        assert status == 200
        assert body.startswith(b"ns pid=")
        assert body != f"ns pid={view.pid}".encode()  # its own pid namespace
        await sup.stop("app:ns")
        assert not pid_alive(view.pid)
