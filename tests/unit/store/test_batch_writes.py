"""Batch writes: many instance rows and audit rows in one transaction (adoption's write)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenement.store import InstanceRecord, Store
from tenement.store._db import SqliteDatabase


@pytest.fixture
def commits(store: Store) -> Iterator[list[int]]:
    """One entry per transaction the store commits (SQLite's own statement trace)."""
    assert isinstance(store.database, SqliteDatabase)
    seen: list[int] = []

    def on_statement(_connection: int, statement: str) -> None:
        if statement == "COMMIT":
            seen.append(1)

    store.database.trace(on_statement)
    yield seen
    store.database.trace(None)


def record(tenant: str, pid: int) -> InstanceRecord:
    return InstanceRecord(
        instance_id=f"api:{tenant}",
        service="api",
        tenant=tenant,
        pid=pid,
        start_ticks=pid * 10,
        pgid=pid,
        port=30000 + pid,
        socket=f"/tmp/{tenant}.sock",
        state="running",
        updated_at=1.0,
    )


def test_save_instances_is_one_commit_and_replaces(store: Store, commits: list[int]) -> None:
    store.save_instance(record("a", 1))
    commits.clear()
    store.save_instances([record("a", 11), record("b", 2), record("c", 3)])
    assert len(commits) == 1
    assert [(r.tenant, r.pid) for r in store.load_instances()] == [("a", 11), ("b", 2), ("c", 3)]
    store.save_instances([])
    assert len(commits) == 1


def test_audit_many_is_one_commit_in_order(store: Store, commits: list[int]) -> None:
    store.audit_many([("adopt", "api", "a", "port 1", True), ("stop", "api", "b", None, False)])
    assert len(commits) == 1
    rows = store.recent_audit(10)
    assert [(r.action, r.instance_id, r.details, r.success) for r in rows] == [
        ("stop", "b", None, False),
        ("adopt", "a", "port 1", True),
    ]


def test_save_adoption_writes_rows_and_audit_in_one_commit(
    store: Store, commits: list[int]
) -> None:
    store.save_adoption(
        [record("a", 1), record("b", 2)],
        [("adopt", "api", "a", "port 30001", True), ("adopt", "api", "b", "port 30002", True)],
    )
    assert len(commits) == 1
    assert [r.tenant for r in store.load_instances()] == ["a", "b"]
    assert sorted(r.instance_id for r in store.recent_audit(10)) == ["a", "b"]
    store.save_adoption([], [])
    assert len(commits) == 1
