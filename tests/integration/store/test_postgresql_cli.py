"""`ten db …` and `ten token-gen` on PostgreSQL as a user meets them (issue #17).

The database_url carries a password over TCP (tests/postgresql.py): no output may show
it. A missing driver, a refused connection, a wrong password, a missing database and a
server that wants TLS each end in one ``Error:`` line that says where and what to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tenement.cli import ten
from tenement.store.schema import HEAD_REVISION
from tests.postgresql import Cluster

REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> Result:
    return CliRunner().invoke(ten, list(args), catch_exceptions=False)


def said(result: Result) -> str:
    """Everything a command printed, stdout and stderr (click's terminal output)."""
    return result.output


def project(directory: Path, url: str) -> Path:
    (directory / "tenement.toml").write_text(
        f'[settings]\ndata_dir = "data"\ndatabase_url = "{url}"\n'
    )
    return directory


@pytest.fixture
def password() -> str:
    return f"Pw-{uuid.uuid4().hex}"


@pytest.fixture
def pg_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_cluster: Cluster, password: str
) -> str:
    """A project whose database_url is a fresh PostgreSQL database, password in the URL;
    returns the URL."""
    role = pg_cluster.new_role(password)
    url = pg_cluster.tcp_url(pg_cluster.new_database(owner=role), role, password)
    project(tmp_path, url)
    monkeypatch.chdir(tmp_path)
    return url


def test_db_commands_work_on_postgresql_and_never_show_the_password(
    pg_project: str, password: str, tmp_path: Path
) -> None:
    outputs = []

    def ten_(*args: str, code: int = 0) -> str:
        result = run(*args)
        outputs.append(said(result))
        assert result.exit_code == code, said(result)
        return said(result)

    current = ten_("db", "current")
    assert "postgresql+psycopg://" in current and "***" in current
    assert "\nSchema: " in current
    ten_("db", "check", code=1)
    assert f"revision {HEAD_REVISION}" in ten_("db", "upgrade")
    ten_("db", "check")
    assert HEAD_REVISION in ten_("db", "current")
    ten_("token-gen")
    backup = ten_("db", "backup")
    assert "Backed up to" in backup
    dump = Path(backup.split("Backed up to ", 1)[1].strip())
    assert dump.suffix == ".dump" and dump.parent == tmp_path / "data" / "backups"
    assert dump.stat().st_mode & 0o777 == 0o600
    listed = subprocess.run(
        ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
    )
    assert " TABLE public instances " in listed.stdout
    downgraded = ten_("db", "downgrade", "0001", "--force")
    assert "Backed up to" in downgraded and ".dump" in downgraded
    ten_("db", "upgrade")
    ten_("db", "check")
    restore = ten_("db", "restore", str(dump), "--force", code=1)
    assert "pg_restore" in restore
    for output in outputs:
        assert password not in output


def test_db_backup_without_pg_dump_says_to_use_the_databases_tools(
    pg_project: str, password: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("db", "upgrade").exit_code == 0
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run("db", "backup")
    assert result.exit_code == 1
    assert "pg_dump, which is not installed" in said(result)
    assert "database's own tools" in said(result)
    # a migration goes on without a backup, and says why
    downgraded = run("db", "downgrade", "0001", "--force")
    assert downgraded.exit_code == 0, said(downgraded)
    assert "not backing up" in said(downgraded) and "pg_dump" in said(downgraded)
    assert password not in said(result) + said(downgraded)


def _unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong password", "the password was refused"),
        ("no such database", "does not exist"),
        ("refused", "Connection refused"),
        ("TLS required", "accepts only TLS"),
    ],
)
def test_a_database_that_cannot_be_reached_is_one_clear_error(
    case: str,
    expected: str,
    pg_cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    password: str,
) -> None:
    role = pg_cluster.new_role(password)
    database = pg_cluster.new_database(owner=role)
    port = pg_cluster.port
    if case == "wrong password":
        url = pg_cluster.tcp_url(database, role, password + "-wrong")
    elif case == "no such database":
        database = "nope_" + uuid.uuid4().hex[:8]
        url = pg_cluster.tcp_url(database, role, password)
    elif case == "refused":
        port = _unused_port()
        url = f"postgresql://{role}:{password}@127.0.0.1:{port}/{database}"
    else:
        pg_cluster.refuse_without_tls(role)
        url = pg_cluster.tcp_url(database, role, password)
    project(tmp_path, url)
    monkeypatch.chdir(tmp_path)
    for command in (("db", "current"), ("token-gen",), ("db", "upgrade")):
        result = run(*command)
        assert result.exit_code == 1, said(result)
        [error] = [line for line in said(result).splitlines() if line.startswith("Error:")]
        assert f'database "{database}" at 127.0.0.1:{port} as user {role}' in error
        assert expected in error
        assert password not in said(result)
    if case == "TLS required":
        assert "sslmode=require" in error


@pytest.mark.parametrize(
    "command",
    [("serve", "--bind", "127.0.0.1:0"), ("token-gen",), ("db", "current"), ("db", "upgrade")],
    ids=["serve", "token-gen", "db current", "db upgrade"],
)
def test_without_the_driver_every_command_says_how_to_install_it(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    """psycopg made unimportable (``sys.modules['psycopg'] = None``, what Python does for
    a module that is absent), in a real ``python -m tenement`` process."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['psycopg'] = None\n")
    project(tmp_path, "postgresql://ten:S3cret-pw@127.0.0.1:5432/ten")
    with open(tmp_path / "tenement.toml", "a") as config:
        config.write("tenant_users = false\n")
    done = subprocess.run(
        [sys.executable, "-m", "tenement", *command],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{blocker}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: database_url is a postgresql URL, but its driver `psycopg` cannot be "
        f"imported; install it with: {sys.executable} -m pip install 'tenement-py[postgresql]'"
    ]
    assert "S3cret-pw" not in done.stdout + done.stderr
    # serve stopped before it bound a socket or opened anything
    assert not (tmp_path / "data" / "tenement.db").exists()
