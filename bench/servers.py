"""The two servers under test, each in its own directory with the same tenement.toml.

``ours`` is this checkout's ``ten`` (``python -m tenement``); ``reference`` is the Rust
tenement 0.2.2 binary. Both serve the same tenant apps (bench/apps) on loopback ports.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.procs import Procs

log = logging.getLogger(__name__)

APPS = Path(__file__).resolve().parent / "apps"


def socket_shim(fd: int) -> list[str]:
    """A shell that makes ``fd`` fd 3 and sets LISTEN_PID to its own pid, then execs its
    arguments in place (systemd-style). A shell, not a Python, so that the startup
    measured is the server's: a Python shim added its own ~17 ms start to every figure."""
    move = "" if fd == 3 else f" 3<&{fd} {fd}<&-"
    return ["/bin/sh", "-c", f'export LISTEN_PID=$$; exec "$@"{move}', "shim"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tenant_python() -> str:
    """The interpreter tenants run with: the system's, as a deployment would, else ours.

    Never a wrapper found on PATH (a pyenv shim adds a shell and ~100 ms to every start).
    """
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return os.path.realpath(sys.executable)


def write_config(directory: Path, marker: str, *, log_lines: int) -> None:
    """The tenement.toml both servers read; ``marker`` tags every tenant command line."""
    py = tenant_python()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tenement.toml").write_text(
        f"""[settings]
data_dir = "data"
health_check_interval = 10
# tenants run as the server's user, as the reference runs them, and so can read their
# apps wherever this checkout is (a root server would give each its own uid)
tenant_users = false

[service.fast]
command = "{py} {APPS}/fast_backend.py {marker}"
isolation = "process"
health = "/health"

[service.cold]
command = "{py} {APPS}/cold_app.py {marker}"
isolation = "process"
health = "/health"

[service.tiny]
command = "{py} -S {APPS}/tiny.py {marker}"
isolation = "process"
health = "/health"

[service.chatty]
command = "{py} {APPS}/chatty.py {marker}"
isolation = "process"
health = "/health"

[service.chatty.env]
LINES = "{log_lines}"

[instances]
fast = ["t1"]
cold = ["w"]  # known to both servers, so a request to w.cold.localhost may wake it
"""
    )


class Server:
    """One server under test: its directory, token, process and API."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        directory: Path,
        procs: Procs,
        serve_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.argv = argv  # the `ten` command, without a subcommand
        self.serve_args = serve_args  # more `ten serve` options
        self.directory = directory
        self.procs = procs
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.held: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def token_gen(self) -> None:
        subprocess.run(
            [*self.argv, "token-gen"], cwd=self.directory, capture_output=True, check=True
        )
        self.token = (self.directory / "data" / "api_token").read_text().strip()

    def version(self) -> str:
        return subprocess.run(
            [*self.argv, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()

    def serve_argv(self) -> list[str]:
        if self.name == "ours":
            return [
                *self.argv,
                *("serve", "--port", str(self.port), "--log-level", "warning"),
                *self.serve_args,
            ]
        return [*self.argv, "serve", "--port", str(self.port)]

    def hold_socket(self) -> None:
        """Bind the port ourselves and pass it as systemd would (LISTEN_FDS) from now on."""
        self.held = socket.socket()
        self.held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.held.bind(("127.0.0.1", self.port))
        self.held.listen(4096)

    def start(self) -> float:
        """Start the server; returns the seconds from exec until ``GET /health`` answers 200."""
        began = time.monotonic()
        if self.held is not None:
            fd = self.held.fileno()
            argv = [*socket_shim(fd), *self.serve_argv()]
            env = {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "tcp", "RUST_LOG": "warn"}
            self.proc = self.procs.start(argv, cwd=self.directory, env=env, pass_fds=(fd,))
        else:
            env = {"RUST_LOG": "warn"}
            self.proc = self.procs.start(self.serve_argv(), cwd=self.directory, env=env)
        self.wait_healthy(timeout=120)
        return time.monotonic() - began

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited ({self.proc.returncode}), see logs")
            try:
                status, _ = self.request("GET", "/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} server not healthy after {timeout}s")
            time.sleep(0.002)

    def stop(self, signum: int = signal.SIGTERM, wait: float = 120) -> None:
        """Signal the server (not its tenants' groups) and wait for it to exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.procs.end(self.proc, signal.SIGKILL)
        self.proc = None

    def serving_pids(self) -> list[int]:
        """The server's process and its workers, not its tenants (:func:`serving_pids`)."""
        assert self.proc is not None
        return serving_pids(self.proc.pid)

    def memory_kb(self) -> dict[str, int]:
        """Resident memory of the serving processes, in kB: ``rss`` summed (pages they
        share counted in each), ``pss`` summed (shared pages split among their users:
        what the set costs), and ``processes``."""
        rss = pss = 0
        pids = self.serving_pids()
        for pid in pids:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            rss += int(re.search(r"^Rss:\s+(\d+)", rollup, re.M).group(1))
            pss += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))
        return {"rss": rss, "pss": pss, "processes": len(pids)}

    # -- HTTP ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str | None = None,
        body: object = None,
        timeout: float = 30,
        auth: bool = False,
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Host": host or f"127.0.0.1:{self.port}", "Connection": "close"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if auth:
                headers["Authorization"] = f"Bearer {self.token}"
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def api(self, method: str, path: str, body: object = None, timeout: float = 60) -> bytes:
        status, data = self.request(method, path, body=body, timeout=timeout, auth=True)
        if status >= 300:
            raise RuntimeError(f"{self.name}: {method} {path} -> {status} {data[:200]!r}")
        return data

    def spawn(self, service: str, ident: str) -> None:
        self.api("POST", "/api/instances/spawn", {"process": service, "id": ident})

    def stop_instance(self, service: str, ident: str) -> None:
        self.api("DELETE", f"/api/instances/{service}:{ident}")

    def ten_ps(self) -> float:
        """Seconds the ``ten ps`` command takes against this server."""
        began = time.monotonic()
        subprocess.run(
            [*self.argv, "ps", "--server", f"http://127.0.0.1:{self.port}", "--token", self.token],
            cwd=self.directory,
            capture_output=True,
            check=True,
        )
        return time.monotonic() - began


def serving_pids(main: int) -> list[int]:
    """Process ``main`` and its workers: the children that are forks of it (the same
    command line), not its tenants."""
    cmdline = Path(f"/proc/{main}/cmdline").read_bytes()
    children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    pids = [main]
    for pid in map(int, children):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                pids.append(pid)
        except OSError:  # exited meanwhile
            continue
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (all their threads); a process
    gone counts nothing."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
