"""The idle rule and disk usage (pure, plus a real directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenement.config import Service
from tenement.supervisor.idle import idle_instances, is_idle
from tenement.supervisor.instance import RUNNING, STOPPED, Instance, Run
from tenement.supervisor.storage import dir_size, quota_bytes, quota_level, usage_percent


def _running(tenant: str, *, last_activity: float, connections: int = 0) -> Instance:
    inst = Instance("notes", tenant, "/tmp/x.sock", state=RUNNING, last_activity=last_activity)
    inst.run = Run(process=None, port=30000)
    inst.active_connections = connections
    return inst


SERVICE = Service(name="notes", command="app", idle_timeout=60)


@pytest.mark.parametrize(
    ("idle_timeout", "last", "connections", "expected"),
    [
        (60, 0.0, 0, True),
        (60, 50.0, 0, False),  # touched 50 s before now=100: not idle yet
        (60, 0.0, 1, False),  # a live connection keeps it
        (None, 0.0, 0, False),
        (0, 0.0, 0, False),
    ],
    ids=["idle", "recent", "connected", "no-timeout", "zero-timeout"],
)
def test_is_idle(idle_timeout: float | None, last: float, connections: int, expected: bool) -> None:
    service = Service(name="notes", command="app", idle_timeout=idle_timeout)
    inst = _running("alice", last_activity=last, connections=connections)
    assert is_idle(inst, service, now=100.0) is expected


def test_stopped_instances_are_never_idle() -> None:
    inst = _running("alice", last_activity=0.0)
    inst.state = STOPPED
    assert idle_instances([inst], {"notes": SERVICE}, now=100.0) == []
    assert idle_instances([_running("bob", last_activity=0)], {}, now=100.0) == []


def test_dir_size_sums_files_recursively(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "b").write_bytes(b"y" * 5)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert dir_size(tmp_path) == 15
    assert dir_size(tmp_path / "missing") == 0


@pytest.mark.parametrize(
    ("used", "quota", "percent", "level"),
    [
        (0, None, 0.0, None),
        (50, 100, 50.0, None),
        (80, 100, 80.0, "high"),
        (100, 100, 100.0, "exceeded"),
        (1, 0, 100.0, "exceeded"),
        (0, 0, 0.0, None),
    ],
)
def test_quota(used: int, quota: int | None, percent: float, level: str | None) -> None:
    assert usage_percent(used, quota) == percent
    assert quota_level(used, quota) == level


def test_quota_bytes_from_megabytes() -> None:
    assert quota_bytes(2) == 2 * 1024 * 1024
    assert quota_bytes(None) is None
