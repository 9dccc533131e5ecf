"""cgroups: the files written for a tenant's limits, and the fallback without cgroups v2.

cgroupfs itself is only writable on some hosts (tests/integration/supervisor/
test_process_cgroups.py uses the real one there); here a directory laid out like
cgroupfs shows what is written where.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tenement.supervisor import cgroups


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A cgroup v2 root (and an existing ``tenement`` base) as plain files."""
    for directory in (tmp_path, tmp_path / "tenement"):
        directory.mkdir(exist_ok=True)
        (directory / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
        (directory / "cgroup.subtree_control").write_text("")
    return tmp_path


def test_limits_are_written(root: Path) -> None:
    if cgroups.procfs.cgroup_of("self") not in (None, "/"):
        pytest.skip("this process is in a non-root cgroup; the base differs")
    directory = cgroups.prepare("notes:alice", memory_limit_mb=64, cpu_shares=20000, root=root)
    assert directory == root / "tenement" / "notes:alice"
    assert (directory / "memory.max").read_text() == str(64 * 1024 * 1024)
    assert (directory / "cpu.weight").read_text() == "10000"  # clamped
    assert (root / "cgroup.subtree_control").read_text() == "+memory +cpu"
    assert (root / "tenement" / "cgroup.subtree_control").read_text() == "+memory +cpu"


def test_only_the_asked_limits_are_written(root: Path) -> None:
    directory = cgroups.prepare("notes:bob", memory_limit_mb=0, cpu_shares=0, root=root)
    assert directory is not None
    assert not (directory / "memory.max").exists()  # 0 = no limit, as the reference
    assert (directory / "cpu.weight").read_text() == "1"
    assert (root / "cgroup.subtree_control").read_text() == "+cpu"


def test_no_limits_no_cgroup(root: Path) -> None:
    assert cgroups.prepare("notes:c", memory_limit_mb=None, cpu_shares=None, root=root) is None
    assert not (root / "tenement" / "notes:c").exists()


def test_missing_controller_is_an_error_saying_where(root: Path) -> None:
    (root / "cgroup.controllers").write_text("pids\n")
    with pytest.raises(cgroups.CgroupError, match="controller\\(s\\) memory not available"):
        cgroups.prepare("notes:d", memory_limit_mb=8, cpu_shares=None, root=root)


def test_without_cgroup_v2_the_tenant_runs_unlimited_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tenement.supervisor.cgroups"):
        assert cgroups.prepare("notes:e", memory_limit_mb=8, cpu_shares=None, root=tmp_path) is None
    assert "cgroups v2 is not available" in caplog.text
    assert "notes:e runs without memory/cpu limits" in caplog.text


def test_remove_and_populated(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = root / "tenement" / "x"
    directory.mkdir()
    assert not cgroups.populated(directory)
    (directory / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    assert cgroups.populated(directory)
    os.remove(directory / "cgroup.events")
    cgroups.remove(directory)
    assert not directory.exists()
    cgroups.remove(directory)  # already gone: fine


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        ("/system.slice/tenement.service/supervisor", "system.slice/tenement.service/tenants"),
        ("/system.slice/tenement.service", "tenement"),  # no DelegateSubgroup: never move us
        ("/", "tenement"),
        ("", "tenement"),
    ],
    ids=["delegate-subgroup", "unit-root", "root", "no-cgroup-v2"],
)
def test_base_dir_uses_the_delegated_unit_only_from_its_supervisor_leaf(
    tmp_path: Path, own: str, expected: str
) -> None:
    (tmp_path / "system.slice" / "tenement.service" / "supervisor").mkdir(parents=True)
    assert cgroups.base_dir(tmp_path, own=own) == tmp_path / expected
