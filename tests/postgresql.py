"""A throwaway PostgreSQL cluster for tests: one per module or session, never the host's.

It listens on a Unix socket in its own directory and on a free 127.0.0.1 port (or, for
the fleet tests, on the hub address of a :mod:`tests.netns` network). Over the
socket anyone may connect as any role (``trust``); over TCP a role needs its password
(``scram-sha-256``), so tests can use URLs with passwords in them. Start it with
:func:`running_cluster`, which raises :class:`Unavailable` (a sentence for the skip
message) where PostgreSQL or the psycopg driver is not installed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

#: the cluster's superuser (initdb -U), reachable without a password over the socket
SUPERUSER = "tenement"


class Unavailable(Exception):
    """PostgreSQL cannot run here; the message says why."""


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _as_postgres(args: list[str]) -> list[str]:
    """Run as the postgres user when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A running cluster: its socket directory, TCP port, and helpers to make roles and
    databases."""

    def __init__(self, base: Path, pg_ctl: str, host: str, netns: str | None) -> None:
        self.base = base
        self.socket_dir = base  # the socket is base/.s.PGSQL.{port}
        self.data = base / "data"
        self.host = host
        self.port = _free_port()
        self._netns = ["ip", "netns", "exec", netns] if netns else []
        self._pg_ctl = pg_ctl
        #: started, and not stopped since (a test may stop the cluster to play an outage)
        self.running = False

    def start(self) -> None:
        """Start (or start again) and wait until it accepts connections."""
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self.socket_dir} -c fsync=off"
        )
        subprocess.run(
            self._netns
            + _as_postgres(
                [
                    self._pg_ctl,
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.base / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.running = True

    def stop(self) -> None:
        self.running = False
        subprocess.run(
            _as_postgres([self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )

    def admin(self, sql: str) -> None:
        """Run ``sql`` as the superuser, outside a transaction (CREATE DATABASE)."""
        import psycopg

        with psycopg.connect(
            f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname=postgres",
            autocommit=True,
        ) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def new_database(self, owner: str = SUPERUSER) -> str:
        """Create an empty database owned by ``owner``; returns its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE {name} OWNER "{owner}"')
        return name

    def new_role(self, password: str) -> str:
        """Create a login role with ``password``; returns its name."""
        name = f"r_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        return name

    def refuse_without_tls(self, role: str) -> None:
        """Refuse ``role`` over TCP without TLS, as a server that requires TLS does (the
        cluster has no certificate, so TLS is refused too)."""
        hba = self.data / "pg_hba.conf"
        rule = f"hostnossl all {role} 127.0.0.1/32 reject\n"
        # rewritten in place: the file keeps its owner (postgres) even when we are root
        hba.write_text(rule + hba.read_text())
        self.admin("SELECT pg_reload_conf()")

    def allow_subnet(self, subnet: str) -> None:
        """Let roles with a password connect over TCP from ``subnet`` (a fleet's nodes)."""
        hba = self.data / "pg_hba.conf"
        hba.write_text(hba.read_text() + f"host all all {subnet} scram-sha-256\n")
        self.admin("SELECT pg_reload_conf()")

    def socket_url(self, database: str, user: str = SUPERUSER) -> str:
        """A URL reaching ``database`` over the socket, no password needed."""
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, database: str, user: str, password: str) -> str:
        """A URL reaching ``database`` over TCP, with a password in it."""
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"


@contextlib.contextmanager
def running_cluster(host: str = "127.0.0.1", netns: str | None = None) -> Iterator[Cluster]:
    """A fresh cluster listening on ``host`` (inside network namespace ``netns`` if
    given), stopped and deleted on exit."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable(
            "psycopg is not installed (pip install 'tenement-py[postgresql]')"
        ) from None
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise Unavailable("PostgreSQL (initdb, pg_ctl) is not installed (apt install postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable(
                "running as root without a postgres user to run PostgreSQL as"
            ) from None
        if shutil.which("runuser") is None:
            raise Unavailable("running as root without runuser (util-linux)")
    base = Path(tempfile.mkdtemp(prefix="tenement-pg-"))
    # others (a container's service user) must reach the socket in it
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
    cluster = Cluster(base, pg_ctl, host, netns)
    try:
        subprocess.run(
            _as_postgres(
                [
                    initdb,
                    "-D",
                    str(cluster.data),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-U",
                    SUPERUSER,
                ]
            ),
            check=True,
            capture_output=True,
        )
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
