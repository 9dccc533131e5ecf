"""tenement installed in a booted container: by .deb, or from a wheelhouse until one exists.

The test configuration: one service ``web`` (a stdlib HTTP app answering
``"<tenant> <pid>"``), tenants ``alice`` and ``bob`` started with the server,
``isolation = "process"``, and ``tenement.socket`` moved by a drop-in to a free
loopback port (the container shares the host's network namespace).
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.system.nspawn import Container, Unavailable

REPO = Path(__file__).resolve().parents[2]
CONFIG = "/etc/tenement/tenement.toml"
DATA_DIR = "/var/lib/tenement"
VENV = "/opt/venvs/tenement"
#: Debian's python, the one the container has too (3.11); never a pyenv python on PATH
DEBIAN_PYTHON = "/usr/bin/python3"

APP = """\
import os
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status, body = 200, f"{os.environ.get('TENANT', '?')} {os.getpid()}\\n".encode()
        if self.path == "/tmpfile":
            try:
                with tempfile.NamedTemporaryFile(dir="/tmp") as file:
                    body += f"wrote {file.name}\\n".encode()
            except OSError as error:
                status, body = 500, f"cannot write in /tmp: {error}\\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

SERVICE = """
[service.{name}]
command = "/usr/bin/python3 /etc/tenement/app.py"
isolation = "process"
health = "/health"
stop_timeout = 5

[service.{name}.env]
TENANT = "{{id}}"
"""

CONFIG_TEXT = (
    """\
[settings]
data_dir = "/var/lib/tenement"
health_check_interval = 2
"""
    + SERVICE.format(name="web")
    + """
[instances]
web = ["alice", "bob"]
"""
)

SOCKET_DROP_IN = """\
# tests/system: loopback only, on a free port (the container shares the host's network)
[Socket]
ListenStream=
ListenStream=127.0.0.1:{port}
ListenStream=/run/tenement/tenement.sock
"""


#: the tables whose rows an upgrade or a rollback must keep (``instances`` rows come and
#: go with the tenants: a stop removes API-spawned ones in every release)
KEPT_TABLES = ("tenant_tokens", "deploy_log", "config", "service_users")


def free_port() -> int:
    """A free loopback port in 18080..28079 (the socket unit binds it in the container)."""
    for _ in range(200):
        port = 18080 + random.randrange(10000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise Unavailable("no free loopback port in 18080..28079")


def build_wheelhouse(dest: Path, *, tree: Path = REPO, deps: bool = True) -> Path:
    """Wheels of tenement and (unless not ``deps``) its dependencies, built with Debian's
    python 3.11.

    A throwaway venv of /usr/bin/python3 does the building (the host may lack
    python3-pip); systemd-python compiles against the host's libsystemd-dev.

    Raises:
        Unavailable: no Debian python, or the build failed (message has pip's last lines).
    """
    if not Path(DEBIAN_PYTHON).exists():
        raise Unavailable(f"{DEBIAN_PYTHON} is missing (the wheels must match the container)")
    with tempfile.TemporaryDirectory(prefix="tenement-wheel-venv-") as venv:
        steps = [
            [DEBIAN_PYTHON, "-m", "venv", venv],
            [
                *(f"{venv}/bin/pip", "wheel", "-q", "--wheel-dir", str(dest)),
                *((f"{tree}[postgresql]",) if deps else (str(tree), "--no-deps")),
            ],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-8:])
                raise Unavailable(f"building the wheelhouse failed: {' '.join(step)}\n{tail}")
    return dest


def install_from_wheels(container: Container, wheels: Path) -> None:
    """What the .deb does, by hand: venv, /usr/bin/ten, units, sysusers, tmpfiles."""
    shutil.copytree(wheels, container.path("/opt/tenement-wheels"))
    units = REPO / "units"
    for unit in ("tenement.service", "tenement.socket"):
        shutil.copy(units / unit, container.path(f"/usr/lib/systemd/system/{unit}"))
    shutil.copy(
        units / "sysusers.d/tenement.conf", container.path("/usr/lib/sysusers.d/tenement.conf")
    )
    shutil.copy(
        units / "tmpfiles.d/tenement.conf", container.path("/usr/lib/tmpfiles.d/tenement.conf")
    )
    container.run(
        f"python3 -m venv {VENV}"
        f" && {VENV}/bin/pip install -q --no-index --find-links /opt/tenement-wheels"
        " 'tenement-py[postgresql]'"
        f" && ln -sf {VENV}/bin/ten /usr/bin/ten"
        " && systemd-sysusers && systemd-tmpfiles --create && systemctl daemon-reload",
        timeout=300,
    )


def install_deb(container: Container, deb: Path) -> None:
    """``apt-get install ./x.deb`` in the container (dependencies from Debian's mirror)."""
    inside = f"/root/{deb.name}"
    shutil.copy(deb, container.path(inside))
    container.run(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
        " --allow-downgrades"
        f" -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {inside}",
        timeout=300,
    )


class Tenement:
    """The installed, configured tenement in a container, and what the tests ask of it."""

    def __init__(self, container: Container, port: int, how: str) -> None:
        self.container = container
        self.port = port
        #: "deb" or "wheels": how the software got in (upgrade tests need "deb")
        self.how = how

    def prepare(self) -> None:
        """The test config, the app and the socket drop-in: before installing, so that a
        package's postinst never opens the stock port 8080 on every address."""
        c = self.container
        c.write("/etc/tenement/app.py", APP)
        c.write(CONFIG, CONFIG_TEXT)
        c.write(
            # before 20-tls.conf (test_tls_systemd.py): this one resets ListenStream=, as
            # `ten install --port`'s 10-install.conf does
            "/etc/systemd/system/tenement.socket.d/10-system-test.conf",
            SOCKET_DROP_IN.format(port=self.port),
        )

    def start(self) -> None:
        """`systemctl enable --now tenement.socket`, start the service, make a token."""
        c = self.container
        c.run("systemctl daemon-reload && systemctl enable --now tenement.socket")
        c.run("systemctl start tenement", timeout=150)
        self.wait_active()
        c.run(f"runuser -u tenement -- ten --config {CONFIG} --data-dir {DATA_DIR} token-gen")
        self.wait_instances({"web:alice", "web:bob"})

    def ten(self, *args: str, check: bool = True, timeout: float = 120.0) -> str:
        """Run ``ten`` in the container as root, against this server, with the admin token."""
        argv = [
            "ten",
            "--server",
            f"http://127.0.0.1:{self.port}",
            "--config",
            CONFIG,
            "--data-dir",
            DATA_DIR,
            *args,
        ]
        return self.container.run(argv, check=check, timeout=timeout).stdout

    def ten_as_service_user(self, *args: str, check: bool = True) -> str:
        """``ten`` as the user tenement (commands that write the data dir: db, token-gen)."""
        argv = ["runuser", "-u", "tenement", "--", "ten", "--config", CONFIG]
        argv += ["--data-dir", DATA_DIR, *args]
        return self.container.run(argv, check=check).stdout

    def sql(self, statement: str) -> str:
        """One statement on the server's database, as root; rows as ``a|b`` lines."""
        script = (
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
            " rows = db.execute(sys.argv[2]).fetchall(); db.commit();"
            " print('\\n'.join('|'.join(map(str, r)) for r in rows))"
        )
        argv = ["python3", "-c", script, f"{DATA_DIR}/tenement.db", statement]
        return self.container.run(argv).stdout.strip()

    def row_counts(self) -> dict[str, int]:
        """How many rows each table a rollback must keep has."""
        return {t: int(self.sql(f"SELECT count(*) FROM {t}")) for t in KEPT_TABLES}

    def journal_problems(self) -> str:
        """The service's warnings and errors this boot, for a failed assertion's message."""
        return self.container.out(
            "journalctl -u tenement -p warning -o short-monotonic --no-pager | tail -n 40",
            check=False,
        )

    def instances(self) -> dict[str, dict]:
        """``ten ps --json``, by instance id."""
        return {row["id"]: row for row in json.loads(self.ten("ps", "--json"))}

    def tenant_pids(self) -> dict[str, int]:
        """The running instances' pids (container pids), checked alive in /proc."""
        pids = {
            iid: row["pid"] for iid, row in self.instances().items() if row["state"] == "running"
        }
        for iid, pid in pids.items():
            assert self.container.pid_alive(pid), f"{iid}: pid {pid} is not alive in /proc"
            cmdline = self.container.out(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
            assert "app.py" in cmdline, f"{iid}: pid {pid} is {cmdline!r}, not the tenant"
        return pids

    def wait_instances(self, expected: set[str], timeout: float = 30.0) -> None:
        ids = " ".join(sorted(expected))
        script = (
            f"ten --server http://127.0.0.1:{self.port} --data-dir {DATA_DIR} ps --json"
            " | python3 -c 'import json,sys; rows=json.load(sys.stdin);"
            ' running={r["id"] for r in rows if r["state"]=="running"};'
            f' sys.exit(0 if set("{ids}".split()) <= running else 1)\''
        )
        try:
            self.container.wait_for(script, timeout=timeout, what=f"instances {ids} running")
        except AssertionError as failed:
            journal = self.container.out("journalctl -u tenement --no-pager -o cat -n 40")
            raise AssertionError(f"{failed}\njournal of tenement:\n{journal}") from None

    def main_pid(self) -> int:
        return int(self.container.out("systemctl show -p MainPID --value tenement"))

    def wait_active(self, timeout: float = 60.0) -> int:
        """Wait until tenement.service is active with a main pid; that pid."""
        self.container.wait_for(
            'test "$(systemctl show -p ActiveState --value tenement)" = active'
            ' && test "$(systemctl show -p MainPID --value tenement)" != 0',
            timeout=timeout,
            what="tenement.service active",
        )
        return self.main_pid()

    def write_config(self, text: str) -> None:
        self.container.write(CONFIG, text)
