"""isolation = "namespace": own PID namespace and /proc; stop still reaches every process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from tenement.supervisor import procfs
from tenement.supervisor.process import (
    NAMESPACE_NEEDS_ROOT,
    SpawnError,
    TenantProcess,
    start_process,
)
from tenement.supervisor.spec import ProcessSpec

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="namespaces are Linux only"),
    pytest.mark.skipif(
        not procfs.has_cap_sys_admin(), reason="namespace isolation needs CAP_SYS_ADMIN (root)"
    ),
]


def make_spec(tmp_path: Path, code: str, **changes) -> ProcessSpec:
    return ProcessSpec(
        argv=changes.pop("argv", (sys.executable, "-c", textwrap.dedent(code))),
        env={"PATH": os.environ["PATH"]},
        cwd=None,
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        isolation="namespace",
        cgroup_name="app:t",
        **changes,
    )


async def first_line(path: Path) -> str:
    with trio.fail_after(10):
        while not (path.exists() and path.read_text().endswith("\n")):
            await trio.sleep(0.005)
    return path.read_text().splitlines()[0]


def gone(pid: int) -> bool:
    stat = procfs.read_stat(pid)
    return stat is None or stat.exited


async def test_tenant_sees_its_own_pid_namespace_and_proc(tmp_path: Path) -> None:
    code = """
    import os, time
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print(os.getppid(), os.getpid(), pids, flush=True)
    time.sleep(60)
    """
    spec = make_spec(tmp_path, code)
    process = await start_process(spec)
    try:
        parent, own, pids = (await first_line(spec.stdout_path)).split(" ", 2)
        assert int(parent) == 1  # tenement's init is pid 1 of the namespace
        assert own != str(process.pid)
        # its /proc shows its namespace only: init and itself, not this test process
        assert eval(pids) == [1, int(own)]
    finally:
        assert await process.terminate(10) is False


async def test_sigterm_reaches_a_tenant_without_a_handler_and_stop_kills_the_namespace(
    tmp_path: Path,
) -> None:
    # the app has no SIGTERM handler (it would be ignored were it pid 1); its child ignores
    # SIGTERM but dies with the namespace
    code = """
    import os, signal, time
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
    print("up", flush=True)
    time.sleep(60)
    """
    spec = make_spec(tmp_path, code)
    process = await start_process(spec)
    await first_line(spec.stdout_path)
    members = procfs.session_members(process.pid)
    assert len(members) == 4  # unshare, init, app, child
    assert await process.terminate(10) is False
    assert process.returncode == 128 + 15  # the init reports a signal as 128+N
    assert all(gone(m.pid) for m in members)


async def test_stubborn_tenant_is_killed_after_the_grace(tmp_path: Path) -> None:
    code = """
    import os, signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("up", flush=True)
    time.sleep(60)
    """
    spec = make_spec(tmp_path, code)
    process = await start_process(spec)
    await first_line(spec.stdout_path)
    members = procfs.session_members(process.pid)
    assert await process.terminate(0.2) is True
    assert all(gone(m.pid) for m in members)


async def test_exit_code_is_passed_through(tmp_path: Path) -> None:
    process = await start_process(make_spec(tmp_path, "import sys; sys.exit(7)"))
    with trio.fail_after(10):
        assert await process.wait_exited() == 7


async def test_missing_command_fails_the_spawn(tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match=r"No such file or directory: '\./app'"):
        await start_process(make_spec(tmp_path, "", argv=("./app",)))


UNPRIVILEGED = """
import sys, trio
from pathlib import Path
from tenement.supervisor.process import start_process
from tenement.supervisor.spec import ProcessSpec

spec = ProcessSpec(
    argv=("true",), env={}, cwd=None,
    stdout_path=Path("/dev/null"), stderr_path=Path("/dev/null"),
    isolation="namespace", cgroup_name="app:t",
)
try:
    trio.run(start_process, spec)
except Exception as exc:
    print(exc)
"""


DROP_SYS_ADMIN = ["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", "--"]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_without_cap_sys_admin_the_error_says_what_to_do() -> None:
    # drop CAP_SYS_ADMIN (and only it) for a process that tries namespace isolation
    done = subprocess.run(
        [*DROP_SYS_ADMIN, sys.executable, "-c", UNPRIVILEGED],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.strip() == NAMESPACE_NEEDS_ROOT, done.stderr


STARTER = """
import sys, trio
from pathlib import Path
from tenement.supervisor.process import start_process
from tenement.supervisor.spec import ProcessSpec

async def main():
    code = "import os, time\\nif os.fork() == 0:\\n    time.sleep(60)\\ntime.sleep(60)"
    spec = ProcessSpec(
        argv=(sys.executable, "-c", code), env={}, cwd=None,
        stdout_path=Path(sys.argv[1]), stderr_path=Path(sys.argv[1]),
        isolation="namespace", cgroup_name="app:t",
    )
    process = await start_process(spec)
    print(process.pid, process.start_ticks, flush=True)

trio.run(main)
"""


async def test_a_namespaced_tenant_is_adopted_and_stopped_whole(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", STARTER, str(tmp_path / "t.log")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid, ticks = map(int, done.stdout.split())
    process = TenantProcess.adopt(pid, ticks)
    assert process is not None
    with trio.fail_after(10):
        while len(members := procfs.session_members(pid)) < 4:  # unshare, init, app, child
            await trio.sleep(0.005)
    assert await process.terminate(5) is False
    assert all(gone(m.pid) for m in members)
