"""Readiness counts only a listener of the tenant's own, never another program's.

Another program may take a tenant's port between its allocation and the tenant's bind:
the tenant then exits with "Address already in use", while a connect to the port still
succeeds. Such a tenant must never be called ready, and the supervisor starts it again
on another port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tenement.store import Store
from tenement.supervisor import open_supervisor, procfs
from tenement.supervisor.process import SpawnError, start_process
from tenement.supervisor.readiness import wait_accepting
from tenement.supervisor.spec import ProcessSpec
from tests.integration.supervisor.supervisor_support import APP, http_get, make_config

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="listener ownership is read from /proc"
)

#: binds and listens on $PORT (127.0.0.1), accepts and closes connections
LISTENING_APP = """
import os, socket
s = socket.socket()
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen()
while True:
    s.accept()[0].close()
"""

#: like LISTENING_APP, but the listener is held by a grandchild whose parent has exited:
#: it stays in the tenant's process group, yet is no longer below the leader
ORPHAN_LISTENER_APP = """
import os, socket, time
if os.fork() == 0:
    if os.fork() == 0:
        s = socket.socket()
        s.bind(("127.0.0.1", int(os.environ["PORT"])))
        s.listen()
        while True:
            s.accept()[0].close()
    os._exit(0)
os.wait()
while True:
    time.sleep(1)
"""

#: the demo's case: another program took our port meanwhile; its first run runs a foreign
#: listener in a session of its own (on $PORT, its pid to $FOREIGN_PID_FILE, the port to
#: $FOREIGN_PORT_FILE) and then execs the tenant app, whose bind fails; later runs are the
#: plain tenant app
RACING_APP = f"""
import os, subprocess, sys
if not os.path.exists(os.environ["FOREIGN_PID_FILE"]):
    foreign = subprocess.Popen(
        [sys.executable, "-c", {LISTENING_APP!r}], start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    with open(os.environ["FOREIGN_PORT_FILE"], "w") as f:
        f.write(os.environ["PORT"])
    with open(os.environ["FOREIGN_PID_FILE"], "w") as f:
        f.write(str(foreign.pid))
    # wait until the foreign program listens (its port no longer binds)
    import errno, socket, time
    while True:
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", int(os.environ["PORT"])))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                break
            raise
        finally:
            probe.close()
        time.sleep(0.005)
os.execv(sys.executable, [sys.executable, "-u", {APP!r}])
"""


def make_spec(tmp_path: Path, code: str, port: int, **changes: Any) -> ProcessSpec:
    return ProcessSpec(
        argv=(sys.executable, "-c", textwrap.dedent(code)),
        env={"PATH": os.environ["PATH"], "PORT": str(port)},
        cwd=None,
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        isolation=changes.pop("isolation", "process"),
        cgroup_name="app:t",
        **changes,
    )


@pytest.fixture
def foreign() -> Iterator[socket.socket]:
    """Another program's listener on a port of 127.0.0.1 (this test process holds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


async def test_a_foreign_listener_never_makes_a_tenant_ready(
    tmp_path: Path, foreign: socket.socket
) -> None:
    port = foreign.getsockname()[1]
    process = await start_process(make_spec(tmp_path, LISTENING_APP, port))
    with trio.fail_after(10), pytest.raises(SpawnError) as caught:
        await wait_accepting(port, None, process=process)
    assert str(caught.value) == f"pid {process.pid} exited with code 1 before accepting connections"
    assert "Address already in use" in (tmp_path / "err.log").read_text()


async def test_the_tables_show_the_foreign_listener_and_not_as_the_tenants(
    tmp_path: Path, foreign: socket.socket
) -> None:
    port = foreign.getsockname()[1]
    assert procfs.listening_inodes(port) == {inode(foreign)}
    # the /proc/net fallback (used where sock_diag is missing) agrees
    assert procfs._table_listening_inodes(port) == {inode(foreign)}
    assert procfs.holds_socket(os.getpid(), frozenset({inode(foreign)}))
    # a live tenant that does not listen: the port's listener is not its own
    process = await start_process(make_spec(tmp_path, "import time; time.sleep(60)", port))
    try:
        assert procfs.tenant_holds_listener(process.pgid, port) is False
        # while this test process's own group does hold it
        assert procfs.tenant_holds_listener(os.getpgid(0), port) is True
    finally:
        await process.terminate(5)


async def test_nobody_listening_cannot_be_told(free_port: int) -> None:
    assert procfs.listening_inodes(free_port) == frozenset()
    assert procfs._table_listening_inodes(free_port) == frozenset()
    assert procfs.tenant_holds_listener(os.getpgid(0), free_port) is None


@pytest.mark.parametrize("code", [LISTENING_APP, ORPHAN_LISTENER_APP], ids=["own", "orphan"])
async def test_a_tenant_that_listens_is_ready(tmp_path: Path, free_port: int, code: str) -> None:
    process = await start_process(make_spec(tmp_path, code, free_port))
    try:
        with trio.fail_after(10):
            await wait_accepting(free_port, None, process=process)
        assert procfs.tenant_holds_listener(process.pgid, free_port) is True
        assert process.alive()
    finally:
        await process.terminate(5)


@pytest.mark.skipif(
    not procfs.has_cap_sys_admin(), reason="namespace isolation needs CAP_SYS_ADMIN (root)"
)
async def test_a_tenant_in_its_own_pid_namespace_is_ready(tmp_path: Path, free_port: int) -> None:
    # the recorded pid is unshare's; the app below it holds the listener
    spec = make_spec(tmp_path, LISTENING_APP, free_port, isolation="namespace")
    process = await start_process(spec)
    try:
        with trio.fail_after(10):
            await wait_accepting(free_port, None, process=process)
        assert not procfs.holds_socket(process.pid, procfs.listening_inodes(free_port))
        assert procfs.tenant_holds_listener(process.pgid, free_port) is True
    finally:
        await process.terminate(5)


@pytest.fixture
def foreign_pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where RACING_APP writes its foreign program's pid; that program is killed after."""
    path = tmp_path / "foreign.pid"
    yield path
    if path.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(path.read_text()), signal.SIGKILL)


async def test_the_supervisor_starts_the_tenant_on_another_port(
    store: Store, tmp_path: Path, foreign_pid_file: Path
) -> None:
    port_file = tmp_path / "foreign.port"
    config = make_config(
        tmp_path,
        command=sys.executable,
        args=("-c", RACING_APP),
        env={"FOREIGN_PID_FILE": str(foreign_pid_file), "FOREIGN_PORT_FILE": str(port_file)},
    )
    async with open_supervisor(config, store, environ=dict(os.environ)) as sup:
        view = await sup.spawn("app", "alice")
        taken = int(port_file.read_text())
        assert view.state == "running"
        assert view.port != taken
        assert await http_get(view.port) == (200, f"alice pid={view.pid}".encode())
        # the foreign program still holds the first port, and is no part of the tenant
        assert procfs.tenant_holds_listener(view.pid, taken) is False
        spawns = [e.details for e in store.recent_audit(10) if e.action == "spawn"]
        assert f"port {taken}" in spawns


# --- a tenant of another uid, and a server without CAP_SYS_PTRACE (as under its unit) ---

#: listens on argv[1] (127.0.0.1) and waits; Debian's python, runnable by any uid
_LISTEN = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])));"
    " s.listen(); print('up', flush=True); time.sleep(120)"
)
_SLEEP = "import time; print('up', flush=True); time.sleep(120)"


@contextlib.contextmanager
def _as_uid(uid: int, code: str, *args: str) -> Iterator[int]:
    """``code`` run by /usr/bin/python3 as ``uid``, leading its own process group; its pid."""
    process = subprocess.Popen(
        [
            *("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"),
            *("/usr/bin/python3", "-c", code, *args),
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"up\n"
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _owner_listens_unprivileged(owner: int, port: int) -> str:
    """``_owner_listens`` in a root process whose capabilities are only those the unit
    gives the server's user to reach other uids' files: its descriptors links are out
    of reach, as in production."""
    code = (
        "import sys, trio; from tenement.supervisor.readiness import _owner_listens;"
        f"print(trio.run(_owner_listens, {owner}, {port}, set()))"
    )
    done = subprocess.run(
        [
            *("setpriv", "--bounding-set=-all,+dac_read_search,+dac_override", "--"),
            *(sys.executable, "-c", code),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists(),
    reason="needs root, setpriv and /usr/bin/python3 to run processes as other uids",
)
def test_a_tenant_of_its_own_uid_is_ready_where_its_descriptors_are_unreadable() -> None:
    """A regression: the unit's server (no CAP_SYS_PTRACE) could not read the links of a
    tenant's descriptors, took that for "not held", and waited out startup_timeout for
    every tenant start (requests meanwhile answered 503)."""
    port = _free_port()
    with _as_uid(61184, _LISTEN, str(port)) as tenant:
        assert _owner_listens_unprivileged(tenant, port) == "True"


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists(),
    reason="needs root, setpriv and /usr/bin/python3 to run processes as other uids",
)
def test_another_uids_listener_still_does_not_count_where_descriptors_are_unreadable() -> None:
    port = _free_port()
    with _as_uid(61185, _LISTEN, str(port)), _as_uid(61184, _SLEEP) as tenant:
        assert _owner_listens_unprivileged(tenant, port) == "False"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
