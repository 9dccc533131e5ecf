"""A real cgroup v2 memory limit, where this host has a writable cgroup v2 hierarchy."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import trio

from tenement.supervisor import cgroups
from tenement.supervisor.process import SpawnError, _spawn, start_process
from tenement.supervisor.spec import ProcessSpec


def usable() -> str | None:
    """Why real cgroup limits cannot be tested here, or None."""
    if not cgroups.available():
        return "no cgroup v2 hierarchy at /sys/fs/cgroup (hybrid or v1 host)"
    base = cgroups.base_dir()
    if not os.access(base if base.exists() else base.parent, os.W_OK):
        return f"{base} is not writable"
    controllers = (base.parent / "cgroup.controllers").read_text().split()
    if "memory" not in controllers:
        return f"the memory controller is not available in {base.parent}"
    return None


async def test_the_tenant_enters_its_cgroup_before_exec(tmp_path: Path) -> None:
    # a stand-in cgroup directory: the child writes "0" (itself) to cgroup.procs
    # between fork and exec, so nothing it forks can start outside the cgroup
    cgroup = tmp_path / "notes:alice"
    cgroup.mkdir()
    (cgroup / "cgroup.procs").write_text("")
    spec = ProcessSpec(
        argv=(sys.executable, "-c", "print('ran')"),
        env={},
        cwd=None,
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        cgroup_name="notes:alice",
    )
    popen = _spawn(list(spec.argv), spec, cgroup)
    assert popen.wait(timeout=30) == 0
    assert (cgroup / "cgroup.procs").read_text() == "0"
    assert (tmp_path / "out.log").read_text() == "ran\n"


async def test_a_failed_cgroup_entry_fails_the_spawn(tmp_path: Path) -> None:
    cgroup = tmp_path / "notes:alice"
    cgroup.mkdir()
    (cgroup / "cgroup.procs").symlink_to("/dev/full")  # every write fails with ENOSPC
    spec = ProcessSpec(
        argv=(sys.executable, "-c", "pass"),
        env={},
        cwd=None,
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        cgroup_name="notes:alice",
    )
    with pytest.raises(SpawnError, match="cannot move notes:alice into its cgroup"):
        _spawn(list(spec.argv), spec, cgroup)


@pytest.mark.skipif(usable() is not None, reason=str(usable()))
async def test_memory_limit_kills_a_tenant_that_exceeds_it(tmp_path: Path) -> None:
    code = "import time; x = bytearray(200 * 1024 * 1024); time.sleep(60)"
    spec = ProcessSpec(
        argv=(sys.executable, "-c", code),
        env={"PATH": os.environ["PATH"]},
        cwd=None,
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        isolation="process",
        memory_limit_mb=32,
        cgroup_name=f"test:{os.getpid()}",
    )
    process = await start_process(spec)
    directory = process.cgroup
    assert directory is not None
    assert (directory / "memory.max").read_text().strip() == str(32 * 1024 * 1024)
    with trio.fail_after(20):
        code = await process.wait_exited()
    assert code == -signal.SIGKILL  # the OOM killer
    await process.terminate(1)
    assert not directory.exists()
