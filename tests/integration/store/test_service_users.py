"""``service_users``: a service keeps its uid, no two services share one; and the
database file is private whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenement.store import Store, UidsExhausted, migrate_to_head, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/tenement.db") as store:
        migrate_to_head(store, backup_dir=None)
        yield store


def never(uid: int) -> bool:
    return False


def test_each_service_gets_the_lowest_free_uid_and_keeps_it(store: Store) -> None:
    assert store.service_uid("a", 100, 109, taken=never, now=1.0) == 100
    assert store.service_uid("b", 100, 109, taken=lambda uid: uid == 101, now=2.0) == 102
    assert store.service_uid("a", 100, 109, taken=lambda uid: True, now=3.0) == 100
    assert store.service_uids() == {"a": 100, "b": 102}


def test_a_uid_outside_a_new_range_is_allotted_again(store: Store) -> None:
    store.service_uid("a", 100, 109, taken=never, now=1.0)
    assert store.service_uid("a", 200, 209, taken=never, now=2.0) == 200
    assert store.service_uids() == {"a": 200}


def test_a_full_range_is_a_clear_error(store: Store) -> None:
    store.service_uid("a", 100, 100, taken=never, now=1.0)
    with pytest.raises(
        UidsExhausted, match="no free uid left in tenant_uids 100-100 for service 'b'"
    ):
        store.service_uid("b", 100, 100, taken=never, now=2.0)


def test_the_database_is_private_under_umask_022(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        with open_store(f"sqlite:///{tmp_path}/tenement.db") as store:
            migrate_to_head(store, backup_dir=tmp_path / "backups")
            store.service_uid("a", 100, 109, taken=never, now=1.0)
            for name in ("tenement.db", "tenement.db-wal", "tenement.db-shm"):
                assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    finally:
        os.umask(previous)


def test_an_existing_wide_database_is_narrowed(tmp_path: Path) -> None:
    database = tmp_path / "tenement.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    with open_store(f"sqlite:///{database}"):
        pass
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600
