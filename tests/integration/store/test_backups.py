"""Backups: written before a migration, pruned to the newest 5, restorable."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenement.store import (
    BackupError,
    backup_database,
    list_backups,
    migrate_to_head,
    open_store,
    prune_backups,
    restore_backup,
    schema_status,
)
from tenement.store.migrate import upgrade
from tenement.store.schema import HEAD_REVISION


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/data/tenement.db"


def test_upgrade_backs_up_the_old_revision_first(tmp_path: Path) -> None:
    backups = tmp_path / "data" / "backups"
    with open_store(db_url(tmp_path)) as store:
        upgrade(store, "0001", backup_dir=backups)
        store.set_admin_token_hash("before-upgrade")
        report = migrate_to_head(store, backup_dir=backups)
    assert report.backup is not None
    assert report.backup.parent == backups
    assert report.backup.name.startswith("tenement-0001-")
    assert report.backup.stat().st_mode & 0o777 == 0o600
    copy = sqlite3.connect(report.backup)
    try:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        assert copy.execute("SELECT value FROM config").fetchone() == ("before-upgrade",)
    finally:
        copy.close()


def test_only_the_newest_five_are_kept_and_other_files_are_left_alone(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "notes.txt").write_text("mine")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with open_store(db_url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        made = [
            backup_database(store, backups, label="0002", now=start + timedelta(minutes=i))
            for i in range(7)
        ]
    assert list_backups(backups) == made[2:]
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [p.name for p in made[2:]] + ["notes.txt"]
    )
    assert prune_backups(backups, 2) == made[2:5]


def test_two_backups_in_the_same_second_both_exist(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with open_store(db_url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        first = backup_database(store, tmp_path / "b", label="0002", now=now)
        second = backup_database(store, tmp_path / "b", label="0002", now=now)
    assert first != second
    assert list_backups(tmp_path / "b") == [first, second]


def test_backup_to_a_named_file(tmp_path: Path) -> None:
    with open_store(db_url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        target = backup_database(store, tmp_path / "elsewhere" / "copy.db", label="x")
    assert target == tmp_path / "elsewhere" / "copy.db"
    with open_store(f"sqlite:///{target}") as copy:
        assert schema_status(copy).revision == HEAD_REVISION


def test_restore_brings_the_data_back(tmp_path: Path) -> None:
    with open_store(db_url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        store.audit("spawn", "api", "kept")
        saved = backup_database(store, tmp_path / "backups", label="0002")
        store.audit("spawn", "api", "lost")
        with open_store(db_url(tmp_path)) as other_connection_open:
            assert len(other_connection_open.recent_audit(10)) == 2
            restore_backup(store, saved)
            # every connection sees the restored content, WAL and all
            assert [r.instance_id for r in other_connection_open.recent_audit(10)] == ["kept"]
        assert [r.instance_id for r in store.recent_audit(10)] == ["kept"]


def test_restore_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with open_store(db_url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        store.audit("spawn", "api", "kept")
        with pytest.raises(BackupError, match=r"junk\.db"):
            restore_backup(store, junk)
        with pytest.raises(BackupError, match="does not exist"):
            restore_backup(store, tmp_path / "missing.db")
        assert [r.instance_id for r in store.recent_audit(10)] == ["kept"]
