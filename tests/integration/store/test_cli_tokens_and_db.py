"""`ten token-gen/-list/-revoke` and `ten db ...` through click, on real files."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from reference_helpers import REFERENCE_ADMIN_TOKEN, REFERENCE_ALICE_TOKEN, build_reference_db

from tenement.cli import ten
from tenement.store import SchemaKind, list_backups, open_store, schema_status, verify_token
from tenement.store.schema import HEAD_REVISION


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with a minimal tenement.toml (data_dir = "data"), made the cwd."""
    (tmp_path / "tenement.toml").write_text('[settings]\ndata_dir = "data"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(ten, list(args), catch_exceptions=False)


def store_of(project: Path):  # type: ignore[no-untyped-def]
    return open_store(f"sqlite:///{project}/data/tenement.db")


ADMIN_OUTPUT = re.compile(
    r"Generated admin API token:\n\n  (?P<token>[A-Za-z0-9_-]{43})\n\n"
    r"Token saved to (?P<path>.+)/api_token\n"
    r"Use it in the Authorization header: Bearer (?P=token)\n\Z"
)
TENANT_OUTPUT = re.compile(
    r"Generated tenant token for 'alice':\n\n  (?P<token>[A-Za-z0-9_-]{43})\n\n"
    r"This token can only access instances/logs for tenant 'alice'.\n"
    r"Deploy and route operations are admin-only.\n\Z"
)


def test_admin_token_gen_output_file_and_replacement(project: Path) -> None:
    first = run("token-gen")
    assert first.exit_code == 0, first.output
    match = ADMIN_OUTPUT.match(first.output)
    assert match, first.output
    token_file = project / "data" / "api_token"
    assert Path(match["path"]) == project / "data"
    assert token_file.read_text() == match["token"]
    assert token_file.stat().st_mode & 0o777 == 0o600

    second = ADMIN_OUTPUT.match(run("token-gen").output)
    assert second
    assert token_file.read_text() == second["token"]
    with store_of(project) as store:
        current = store.admin_token_hash()
        assert current is not None
        assert verify_token(second["token"], current)
        assert not verify_token(match["token"], current)
        assert schema_status(store).kind is SchemaKind.AT_HEAD


def test_tenant_token_gen_list_revoke(project: Path) -> None:
    made = run("token-gen", "--tenant", "alice", "--description", "ci deploys")
    assert made.exit_code == 0, made.output
    match = TENANT_OUTPUT.match(made.output)
    assert match, made.output
    assert not (project / "data" / "api_token").exists()
    token = match["token"]

    listed = run("token-list")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["ID", "TENANT", "PREFIX", "CREATED", "DESCRIPTION"]
    assert lines[1].split()[:3] == ["1", "alice", token[:8]]
    assert lines[1].endswith("ci deploys")
    assert token not in listed.output and "$argon2" not in listed.output

    with store_of(project) as store:
        assert store.find_tenant_token(token).tenant == "alice"  # type: ignore[union-attr]

    revoked = run("token-revoke", "1")
    assert (revoked.exit_code, revoked.output) == (0, "Revoked tenant token 1\n")
    again = run("token-revoke", "1")
    assert again.exit_code == 1
    assert "No tenant token with ID 1" in again.output
    assert run("token-list").output == "No tenant tokens\n"


def test_a_bad_tenant_id_is_a_usage_error(project: Path) -> None:
    result = run("token-gen", "--tenant", "a b:c")
    assert result.exit_code == 2
    assert "--tenant" in result.output
    assert not (project / "data").exists()


def test_token_gen_while_a_server_holds_the_database_open(project: Path) -> None:
    """WAL: a reader with an open transaction does not block token-gen."""
    assert run("db", "upgrade").exit_code == 0
    with store_of(project) as server, server.engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM tenant_tokens").scalar()  # txn open
        result = run("token-gen", "--tenant", "alice")
        assert result.exit_code == 0, result.output
        conn.rollback()
        token = TENANT_OUTPUT.match(result.output)["token"]  # type: ignore[index]
        assert server.find_tenant_token(token) is not None


def test_token_commands_on_a_reference_db_leave_its_schema_alone(project: Path) -> None:
    build_reference_db(project / "data" / "tenement.db")
    assert run("token-gen", "--tenant", "alice").exit_code == 0
    listed = run("token-list").output
    assert REFERENCE_ALICE_TOKEN[:8] in listed
    with store_of(project) as store:
        assert schema_status(store).kind is SchemaKind.REFERENCE
        assert len(store.list_tenant_tokens()) == 2
        admin_hash = store.admin_token_hash()
        assert admin_hash is not None and verify_token(REFERENCE_ADMIN_TOKEN, admin_hash)


def test_token_gen_refuses_a_newer_schema(project: Path) -> None:
    assert run("db", "upgrade").exit_code == 0
    conn = sqlite3.connect(project / "data" / "tenement.db")
    conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.commit()
    conn.close()
    result = run("token-gen")
    assert result.exit_code == 1
    assert "0099" in result.output and f"ten db downgrade {HEAD_REVISION}" in result.output
    assert not (project / "data" / "api_token").exists()


def test_db_check_current_upgrade_downgrade_backup_history(project: Path) -> None:
    missing = run("db", "check")
    assert missing.exit_code == 1
    assert "No database yet" in missing.output
    assert not (project / "data" / "tenement.db").exists()

    build_reference_db(project / "data" / "tenement.db")
    reference = run("db", "check")
    assert reference.exit_code == 1
    assert "0.2.2" in reference.output

    upgraded = run("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "Backed up to" in upgraded.output
    assert f"Database is at revision {HEAD_REVISION}" in upgraded.output
    assert run("db", "check").exit_code == 0
    assert run("db", "upgrade").output.endswith(f"already at revision {HEAD_REVISION}\n")

    current = run("db", "current")
    assert current.exit_code == 0
    assert f"Schema: revision {HEAD_REVISION} (head)" in current.output
    assert "Database: sqlite:///" in current.output

    history = run("db", "history")
    assert history.exit_code == 0
    assert f" -> {HEAD_REVISION} (head, current)" in history.output.splitlines()[0]
    assert history.output.splitlines()[-1].startswith("base -> 0001")

    down = run("db", "downgrade", "0001")
    assert down.exit_code == 0, down.output
    assert "Database is at revision 0001" in down.output
    behind = run("db", "check")
    assert behind.exit_code == 1
    assert "upgrade to" in behind.output

    manual = run("db", "backup", str(project / "copy.db"))
    assert manual.exit_code == 0
    assert (project / "copy.db").is_file()
    assert run("db", "backup").exit_code == 0
    assert len(list_backups(project / "data" / "backups")) == 3  # reference, 0002, manual

    conn = sqlite3.connect(project / "data" / "tenement.db")
    conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.commit()
    conn.close()
    unknown = run("db", "check")
    assert unknown.exit_code == 2
    assert "0099" in unknown.output
    refused = run("db", "upgrade")
    assert refused.exit_code == 1
    assert "0099" in refused.output and "backups" in refused.output


def test_db_restore_puts_a_backup_back(project: Path) -> None:
    assert run("token-gen", "--tenant", "alice").exit_code == 0
    assert run("db", "backup", str(project / "one.db")).exit_code == 0
    assert run("token-gen", "--tenant", "bob").exit_code == 0
    restored = run("db", "restore", str(project / "one.db"))
    assert restored.exit_code == 0, restored.output
    assert "Backed up the current database to" in restored.output
    with store_of(project) as store:
        assert [row.tenant for row in store.list_tenant_tokens()] == ["alice"]


@pytest.mark.parametrize(
    "command",
    [
        ["token-gen"],
        ["token-list"],
        ["token-revoke"],
        ["db"],
        *[["db", sub] for sub in ("current", "history", "upgrade", "downgrade", "backup", "check")],
        ["db", "restore"],
    ],
    ids=" ".join,
)
def test_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


@pytest.mark.parametrize("command", [["db", "downgrade", "0001"], ["db", "restore", "copy.db"]])
def test_downgrade_and_restore_refuse_while_a_server_holds_the_lease(
    project: Path, command: list[str]
) -> None:
    assert run("db", "upgrade").exit_code == 0
    assert run("db", "backup", "copy.db").exit_code == 0
    with store_of(project) as server:
        assert server.try_acquire_lease("server-1", ttl_s=300, now=time.time())
        refused = run(*command)
        assert refused.exit_code == 1
        assert "server-1" in refused.output and "--force" in refused.output
        with store_of(project) as store:
            assert schema_status(store).revision == HEAD_REVISION
        forced = run(*command, "--force")
        assert forced.exit_code == 0, forced.output
