"""Migrations: head constant, up-down-up, models == migrated schema, refusals."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tenement.store import (
    SchemaKind,
    Store,
    StoreError,
    UnknownRevision,
    UnrecognisedDatabase,
    is_at_head,
    migrate_to_head,
    open_store,
    schema_status,
)
from tenement.store.migrate import _script_directory, downgrade, migrations_dir, upgrade
from tenement.store.schema import HEAD_REVISION, KNOWN_REVISIONS
from tenement.store.tables import FTS_TABLES, metadata


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/data/tenement.db"


def schema_of(store: Store) -> set[tuple[str, str, str]]:
    """Everything SQLite knows about the schema (type, name, normalised SQL)."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
        )
        return {(t, n, " ".join((s or "").split())) for t, n, s in rows}


def test_the_head_constant_is_the_scripts_head() -> None:
    scripts = _script_directory()
    assert scripts.get_heads() == [HEAD_REVISION]
    ordered = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(ordered) == KNOWN_REVISIONS


def test_every_revision_has_a_docstring_that_says_why() -> None:
    for script in _script_directory().walk_revisions():
        assert script.doc and "Why:" in (script.module.__doc__ or ""), script.revision


def test_scripts_are_found_in_the_source_tree() -> None:
    assert (migrations_dir() / "env.py").is_file()


def test_empty_database_is_created_at_head(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        assert schema_status(store).kind is SchemaKind.EMPTY
        assert not is_at_head(store)
        report = migrate_to_head(store, backup_dir=tmp_path / "backups")
        assert report.created and report.to_revision == HEAD_REVISION
        assert report.backup is None  # nothing to lose
        assert is_at_head(store)
        again = migrate_to_head(store, backup_dir=tmp_path / "backups")
        assert not again.changed
    assert not (tmp_path / "backups").exists()


def test_migrated_schema_equals_the_models(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        with store.engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_name": lambda name, type_, _: (
                        not (type_ == "table" and name in FTS_TABLES)
                    ),
                },
            )
            assert compare_metadata(context, metadata) == []


@pytest.mark.parametrize("revision", KNOWN_REVISIONS)
def test_up_down_up(tmp_path: Path, revision: str) -> None:
    index = KNOWN_REVISIONS.index(revision)
    previous = KNOWN_REVISIONS[index - 1] if index else "base"
    with open_store(url(tmp_path)) as store:
        if previous != "base":
            upgrade(store, previous, backup_dir=None)
        before = schema_of(store)
        upgrade(store, revision, backup_dir=None)
        after = schema_of(store)
        assert after != before
        report = downgrade(store, previous, backup_dir=tmp_path / "backups")
        assert report.backup is not None
        assert schema_of(store) == before
        upgrade(store, revision, backup_dir=None)
        assert schema_of(store) == after
        assert schema_status(store).revision == revision


def test_data_survives_an_upgrade_and_a_downgrade(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        upgrade(store, "0001", backup_dir=None)
        store.set_admin_token_hash("$argon2id$kept")
        migrate_to_head(store, backup_dir=tmp_path / "backups")
        assert store.admin_token_hash() == "$argon2id$kept"
        downgrade(store, "0001", backup_dir=tmp_path / "backups")
        assert store.admin_token_hash() == "$argon2id$kept"


def _set_revision(store: Store, revision: str) -> None:
    with store.begin_write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_a_newer_revision_is_refused_with_the_ways_back(tmp_path: Path) -> None:
    backups = tmp_path / "data" / "backups"
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        _set_revision(store, "0099")
        assert schema_status(store).kind is SchemaKind.UNKNOWN_REVISION
        assert not is_at_head(store)
        with pytest.raises(UnknownRevision) as caught:
            migrate_to_head(store, backup_dir=backups)
        message = str(caught.value)
        assert "0099" in message
        assert f"newest is {HEAD_REVISION}" in message
        assert f"ten db downgrade {HEAD_REVISION}" in message
        assert str(backups) in message
        assert caught.value.exit_code == 1
        with pytest.raises(UnknownRevision):
            downgrade(store, "0001", backup_dir=backups)
        # nothing was touched, not even a backup
        assert schema_status(store).revision == "0099"
    assert not backups.exists()


def test_unrelated_tables_are_refused(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        with store.begin_write() as conn:
            conn.exec_driver_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        with pytest.raises(UnrecognisedDatabase) as caught:
            migrate_to_head(store, backup_dir=tmp_path / "backups")
        assert "users" in str(caught.value)
        assert "not a tenement database" in str(caught.value)
        assert caught.value.tables == ("users",)


def test_unknown_target_revision_is_a_clear_error(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store, pytest.raises(StoreError, match="no revision 'zzz'"):
        upgrade(store, "zzz", backup_dir=None)


def test_is_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
    code = (
        "import sys\n"
        "from tenement.store import open_store, is_at_head\n"
        f"with open_store({url(tmp_path)!r}) as s:\n"
        "    assert is_at_head(s)\n"
        "heavy = ('alembic', 'trio', 'argon2')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_two_servers_migrating_at_once_both_succeed_once(tmp_path: Path) -> None:
    """The second runner waits for the first's write lock, then finds nothing left to do."""
    with open_store(url(tmp_path)) as store:
        upgrade(store, "0001", backup_dir=None)
        store.set_admin_token_hash("kept")
    barrier = threading.Barrier(2)
    reports: list[object] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            with open_store(url(tmp_path)) as own:
                barrier.wait()
                reports.append(migrate_to_head(own, backup_dir=tmp_path / "backups"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.changed for r in reports) == [False, True]  # type: ignore[attr-defined]
    with open_store(url(tmp_path)) as store:
        assert is_at_head(store)
        assert store.admin_token_hash() == "kept"
