"""Real tenant processes: start, readiness, stop escalation, fds, logs, adoption."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from tenement.supervisor import procfs
from tenement.supervisor.process import (
    SpawnError,
    TenantProcess,
    kill_stale_group,
    read_start_ticks,
    start_process,
)
from tenement.supervisor.readiness import wait_accepting
from tenement.supervisor.spec import ProcessSpec

#: listens on a port of its own (written to $PORT_FILE: a port chosen by the kernel cannot
#: be taken by other test runs in between), prints a line to each stream, exits 0 on SIGTERM
SERVER_APP = """
import os, signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
with open(os.environ["PORT_FILE"] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(os.environ["PORT_FILE"] + ".tmp", os.environ["PORT_FILE"])
print("out", os.environ.get("RUN", ""), flush=True)
print("err", os.environ.get("RUN", ""), file=sys.stderr, flush=True)
while True:
    s.accept()[0].close()
"""

#: ignores SIGTERM, forks a child that ignores it too, prints both pids
STUBBORN_APP = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    while True:
        time.sleep(1)
print(os.getpid(), child, flush=True)
while True:
    time.sleep(1)
"""


def make_spec(tmp_path: Path, code: str, **changes) -> ProcessSpec:
    env = {"PATH": os.environ["PATH"], **changes.pop("env", {})}
    return ProcessSpec(
        argv=changes.pop("argv", (sys.executable, "-c", textwrap.dedent(code))),
        env=env,
        cwd=changes.pop("cwd", None),
        stdout_path=tmp_path / "logs" / "app" / "t.stdout.log",
        stderr_path=tmp_path / "logs" / "app" / "t.stderr.log",
        isolation=changes.pop("isolation", "process"),
        cgroup_name="app:t",
        **changes,
    )


async def poll(condition: Callable[[], object], seconds: float = 10) -> object:
    """Wait for ``condition()`` to be truthy; return its value."""
    with trio.fail_after(seconds):
        while not (value := condition()):
            await trio.sleep(0.005)
    return value


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def gone(pid: int) -> bool:
    stat = procfs.read_stat(pid)
    return stat is None or stat.exited


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port nobody can listen on while the test runs: connecting to it is refused."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


async def test_start_ready_terminate_and_logs_appended_across_restarts(tmp_path: Path) -> None:
    for run in ("first", "second"):
        port_file = tmp_path / f"{run}.port"
        spec = make_spec(tmp_path, SERVER_APP, env={"PORT_FILE": str(port_file), "RUN": run})
        process = await start_process(spec)
        assert process.is_child
        assert process.pgid == process.pid == os.getsid(process.pid)
        assert process.start_ticks == read_start_ticks(process.pid)
        await poll(port_file.exists)
        with trio.fail_after(10):
            await wait_accepting(int(port_file.read_text()), None, process=process)
        await poll(lambda run=run, spec=spec: f"err {run}" in lines(spec.stderr_path))
        assert process.alive()
        assert await process.terminate(10) is False  # it exited on SIGTERM
        assert not process.alive()
        assert process.returncode == 0
        assert await process.wait_exited() == 0
        assert await process.terminate(10) is False  # idempotent
    assert lines(spec.stdout_path) == ["out first", "out second"]
    assert lines(spec.stderr_path) == ["err first", "err second"]


async def test_sigterm_ignored_by_app_and_its_child_escalates_to_sigkill(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, STUBBORN_APP)
    process = await start_process(spec)
    leader, child = map(int, (await poll(lambda: lines(spec.stdout_path)))[0].split())
    assert leader == process.pid
    assert procfs.read_stat(child).pgrp == process.pgid
    assert await process.terminate(0.2) is True
    assert gone(leader) and gone(child)
    assert process.returncode == -signal.SIGKILL
    assert procfs.session_members(process.pid) == []


async def test_leftover_group_members_are_stopped_after_the_leader_exits(tmp_path: Path) -> None:
    # the leader exits on SIGTERM at once; its child ignores SIGTERM and must be killed
    code = """
    import os, signal, sys, time
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(os.getpid(), flush=True)  # ready: SIGTERM is ignored from now on
        while True:
            time.sleep(1)
    while True:
        time.sleep(1)
    """
    spec = make_spec(tmp_path, code)
    process = await start_process(spec)
    child = int((await poll(lambda: lines(spec.stdout_path)))[0])
    assert await process.terminate(0.2) is True
    assert process.returncode == -signal.SIGTERM
    assert gone(child)


async def test_cancelling_terminate_still_kills_and_waits(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, STUBBORN_APP)
    process = await start_process(spec)
    leader, child = map(int, (await poll(lambda: lines(spec.stdout_path)))[0].split())
    with trio.move_on_after(0.05):
        await process.terminate(60)
    assert gone(leader) and gone(child)


async def test_two_tasks_can_wait_for_the_same_exit(tmp_path: Path) -> None:
    process = await start_process(
        make_spec(tmp_path, "import sys, time; time.sleep(0.2); sys.exit(3)")
    )
    codes = []

    async def waiter() -> None:
        codes.append(await process.wait_exited())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            nursery.start_soon(waiter)
    assert codes == [3, 3]


@pytest.mark.parametrize(
    ("argv", "cwd", "message"),
    [
        (("./app",), None, "No such file or directory: './app'"),
        (
            ("no-such-command-xyz", "--flag"),
            None,
            "No such file or directory: 'no-such-command-xyz'",
        ),
        (
            (sys.executable, "-c", "pass"),
            "/no/such/dir",
            "No such file or directory: '/no/such/dir'",
        ),
    ],
    ids=["relative-path", "not-on-path", "missing-workdir"],
)
async def test_exec_errors_are_spawn_errors_naming_the_command(
    tmp_path: Path, argv: tuple[str, ...], cwd: str | None, message: str
) -> None:
    with pytest.raises(SpawnError) as caught:
        await start_process(make_spec(tmp_path, "", argv=argv, cwd=cwd))
    assert str(caught.value) == message
    assert caught.value.command == argv[0]


async def test_not_executable_is_permission_denied(tmp_path: Path) -> None:
    (tmp_path / "app").write_text("#!/bin/sh\n")
    with pytest.raises(SpawnError, match=r"Permission denied: '\./app'"):
        await start_process(make_spec(tmp_path, "", argv=("./app",), cwd=str(tmp_path)))


async def test_no_fd_leaks_into_the_tenant_and_stdin_is_dev_null(tmp_path: Path) -> None:
    code = """
    import os
    fds = []
    for fd in range(3, 4096):
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(fd)
    print(fds, os.readlink("/proc/self/fd/0"), flush=True)
    """
    leaky = socket.socket()
    leaky.bind(("127.0.0.1", 0))
    leaky.listen()
    leaky.set_inheritable(True)  # only close_fds stands between it and the tenant
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        spec = make_spec(tmp_path, code)
        process = await start_process(spec)
        with trio.fail_after(10):
            assert await process.wait_exited() == 0
    finally:
        leaky.close()
        os.close(read_end)
        os.close(write_end)
    assert lines(spec.stdout_path) == ["[] /dev/null"]


async def test_environment_is_exactly_the_spec(tmp_path: Path) -> None:
    code = "import json, os; print(json.dumps(dict(os.environ)), flush=True)"
    spec = make_spec(tmp_path, code, env={"A": "1"})
    process = await start_process(spec)
    with trio.fail_after(10):
        await process.wait_exited()
    import json

    env = json.loads(lines(spec.stdout_path)[0])
    env.pop("LC_CTYPE", None)  # Python's own locale coercion may add it
    assert env == spec.env


async def test_readiness_fails_fast_when_the_process_dies_first(
    tmp_path: Path, refusing_port: int
) -> None:
    process = await start_process(make_spec(tmp_path, "import sys; sys.exit(3)"))
    with trio.fail_after(10), pytest.raises(SpawnError) as caught:
        await wait_accepting(refusing_port, None, process=process)
    assert str(caught.value) == f"pid {process.pid} exited with code 3 before accepting connections"


async def test_readiness_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    code = f"""
    import socket, time
    time.sleep(0.1)
    s = socket.socket(socket.AF_UNIX)
    s.bind({str(path)!r})
    s.listen()
    while True:
        s.accept()[0].close()
    """
    process = await start_process(make_spec(tmp_path, code))
    try:
        with trio.fail_after(10):
            await wait_accepting(None, str(path), process=process)
        assert process.alive()
    finally:
        await process.terminate(5)


HELPER = """
import sys, trio
from pathlib import Path
from tenement.supervisor.process import start_process
from tenement.supervisor.spec import ProcessSpec

async def main():
    spec = ProcessSpec(
        argv=(sys.executable, "-c", "import time; time.sleep(60)"),
        env={}, cwd=None,
        stdout_path=Path(sys.argv[1]), stderr_path=Path(sys.argv[1]),
        isolation="process", cgroup_name="app:t",
    )
    process = await start_process(spec)
    print(process.pid, process.start_ticks, flush=True)

trio.run(main)
"""


async def test_tenant_outlives_its_server_and_is_adopted_by_pid_and_start_time(
    tmp_path: Path,
) -> None:
    # a "server" process starts the tenant and exits without stopping it
    done = subprocess.run(
        [sys.executable, "-c", HELPER, str(tmp_path / "t.log")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid, ticks = map(int, done.stdout.split())
    try:
        assert not gone(pid)
        assert TenantProcess.adopt(pid, ticks + 1) is None  # pid reuse: different start time
        # no cgroup v2 hierarchy: its cgroup is not looked up
        bare = TenantProcess.adopt(pid, ticks, cgroups_v2=False)
        assert bare is not None and bare.cgroup is None
        bare._mark_exited()  # closes its pidfd
        process = TenantProcess.adopt(pid, ticks)
        assert process is not None
        assert (process.pid, process.pgid, process.is_child) == (pid, pid, False)
        assert process.alive()
        os.kill(pid, signal.SIGTERM)  # someone else stops it; the pidfd notices
        with trio.fail_after(10):
            assert await process.wait_exited() is None  # not our child: status unknown
        assert not process.alive()
        await poll(lambda: gone(pid))
        assert TenantProcess.adopt(pid, ticks) is None
    finally:
        kill_stale_group(pid, ticks)


async def test_adopted_process_is_stopped_with_its_group(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELPER, str(tmp_path / "t.log")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid, ticks = map(int, done.stdout.split())
    process = TenantProcess.adopt(pid, ticks)
    assert process is not None
    assert await process.terminate(5) is False
    assert gone(pid)


async def test_kill_stale_group_only_when_pid_and_start_time_match(tmp_path: Path) -> None:
    # the leader has exited already; a child ignoring SIGTERM lives on in its session
    code = """
    import os, signal, time
    if os.fork() == 0:
        while True:
            time.sleep(1)
    print(os.getpid(), flush=True)
    """
    spec = make_spec(tmp_path, code)
    process = await start_process(spec)
    ticks = process.start_ticks
    with trio.fail_after(10):
        await process.wait_exited()
    members = await poll(lambda: procfs.session_members(process.pid, started_since=ticks))
    assert kill_stale_group(process.pid, ticks) == len(members) == 1
    await poll(lambda: not procfs.session_members(process.pid))


async def test_kill_stale_group_spares_a_reused_pid() -> None:
    # our own (live) test process stands in for "the pid now belongs to someone else"
    ticks = read_start_ticks(os.getpid())
    assert kill_stale_group(os.getpid(), ticks + 1) == 0


async def test_no_fd_is_kept_once_the_process_exited(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    process = await start_process(make_spec(tmp_path, "pass"))
    assert len(os.listdir("/proc/self/fd")) == before + 1  # its pidfd, nothing else
    with trio.fail_after(10):
        assert await process.wait_exited() == 0
    assert len(os.listdir("/proc/self/fd")) == before
    assert await process.terminate(1) is False
