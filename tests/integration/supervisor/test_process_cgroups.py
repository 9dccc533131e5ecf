"""A real cgroup v2 memory limit, where this host has a writable cgroup v2 hierarchy."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tenement.supervisor import cgroups
from tenement.supervisor.process import (
    SpawnError,
    TenantProcess,
    _spawn,
    read_start_ticks,
    start_process,
)
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


def cgroup2_mount() -> Path | None:
    """A writable cgroup v2 hierarchy, with or without controllers (hybrid hosts have one)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, where, kind, *_ = line.split()
        if kind == "cgroup2" and os.access(where, os.W_OK):
            return Path(where)
    return None


@pytest.fixture
def real_cgroup() -> Iterator[Path]:
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no writable cgroup v2 hierarchy")
    own = (cgroups.procfs.cgroup_of("self") or "/").lstrip("/")
    directory = mount / own / f"tenement-test-{os.getpid()}"
    try:
        directory.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup in {mount / own}: {exc}")
    yield directory
    if directory.exists():
        cgroups.kill_all(directory)
        with contextlib.suppress(OSError):
            directory.rmdir()


async def test_stop_kills_processes_that_left_the_group_through_the_cgroup(
    tmp_path: Path, real_cgroup: Path
) -> None:
    # the tenant starts a daemon that calls setsid (leaving the process group, so no
    # group signal reaches it) and ignores SIGTERM; only the cgroup still holds it
    code = """
    import os, signal, time
    if os.fork() == 0:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(os.getpid(), flush=True)
        time.sleep(60)
        os._exit(0)
    time.sleep(60)
    """
    spec = ProcessSpec(
        argv=(sys.executable, "-c", textwrap.dedent(code)),
        env={},
        cwd=None,
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        cgroup_name="notes:alice",
    )
    popen = _spawn(list(spec.argv), spec, real_cgroup)
    process = TenantProcess(
        pid=popen.pid,
        pgid=popen.pid,
        start_ticks=read_start_ticks(popen.pid),
        pidfd=os.pidfd_open(popen.pid),
        popen=popen,
        cgroup=real_cgroup,
    )
    with trio.fail_after(10):
        while not (tmp_path / "out.log").read_text():
            await trio.sleep(0.005)
    daemon = int((tmp_path / "out.log").read_text())
    assert cgroups.procfs.cgroup_of(daemon).endswith(real_cgroup.name)  # entered before exec
    assert cgroups.procfs.read_stat(daemon).session == daemon  # out of the tenant's group
    assert await process.terminate(5) is False  # the group itself obeyed SIGTERM
    stat = cgroups.procfs.read_stat(daemon)
    assert stat is None or stat.exited
    assert not real_cgroup.exists()  # emptied and removed
