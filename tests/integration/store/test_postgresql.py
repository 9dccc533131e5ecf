"""The store on PostgreSQL (``database_url``): migrations and every query family.

Runs a throwaway PostgreSQL cluster (tests/postgresql.py). Skips, saying why, where
PostgreSQL or the psycopg driver is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tenement.store import (
    InstanceRecord,
    LogEntry,
    SchemaKind,
    Store,
    is_at_head,
    migrate_to_head,
    open_store,
    schema_status,
)
from tenement.store.migrate import downgrade
from tenement.store.schema import HEAD_REVISION
from tenement.store.tables import metadata
from tests.postgresql import Cluster


@pytest.fixture
def pg_store(pg_cluster: Cluster) -> Iterator[Store]:
    with open_store(pg_cluster.socket_url(pg_cluster.new_database())) as store:
        yield store


def test_migrations_up_down_up_on_postgresql(pg_store: Store) -> None:
    assert schema_status(pg_store).kind is SchemaKind.EMPTY
    report = migrate_to_head(pg_store, backup_dir=None)
    assert report.created and report.to_revision == HEAD_REVISION
    assert is_at_head(pg_store)
    with pg_store.engine.connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    # PostgreSQL makes every primary key NOT NULL; the reference declared some of its
    # SQLite keys without NOT NULL, and the models follow the reference.
    others = [d for d in diffs if not (isinstance(d, list) and d[0][0] == "modify_nullable")]
    assert others == []
    pg_store.set_admin_token_hash("kept")
    downgrade(pg_store, "0001", backup_dir=None)
    assert pg_store.admin_token_hash() == "kept"
    downgrade(pg_store, "base", backup_dir=None)
    assert schema_status(pg_store).kind is SchemaKind.EMPTY
    migrate_to_head(pg_store, backup_dir=None)
    assert is_at_head(pg_store)


def test_queries_on_postgresql(pg_store: Store) -> None:
    migrate_to_head(pg_store, backup_dir=None)
    pg_store.set_admin_token_hash("a")
    pg_store.set_admin_token_hash("b")
    assert pg_store.admin_token_hash() == "b"
    token_id = pg_store.add_tenant_token("alice", "hash", "abcdefgh", None)
    assert [r.tenant for r in pg_store.tenant_tokens_with_prefix("abcdefgh")] == ["alice"]
    assert pg_store.revoke_tenant_token(token_id)

    entries = [
        LogEntry(1_700_000_000_000 + i, "stdout", "api", "t1", f"{i}: 100% done") for i in range(6)
    ]
    pg_store.insert_logs(entries, offsets={"/l": (1, 10)})
    pg_store.insert_logs([], offsets={"/l": (1, 20)})
    assert pg_store.log_offset("/l") == (1, 20)
    assert pg_store.query_logs(search="100%", limit=2) == entries[-2:]
    assert pg_store.query_logs(search="nope") == []
    # each message is 12 characters: 30 hold the newest two
    assert pg_store.query_logs(search="100%", max_chars=30) == entries[-2:]
    assert pg_store.prune_logs(keep_rows=3) == 3

    record = InstanceRecord(
        instance_id="api:t1",
        service="api",
        tenant="t1",
        pid=10,
        start_ticks=2**40,
        pgid=10,
        port=30000,
        socket="/s",
        state="running",
        updated_at=5.5,
        restart_times=(1.0, 2.5),
    )
    pg_store.save_instance(record)
    pg_store.save_instance(record)
    assert pg_store.load_instances() == [record]

    assert pg_store.try_acquire_lease("a", 10, now=1.0)
    assert not pg_store.try_acquire_lease("b", 10, now=2.0)
    pg_store.register_server("s1", 1, "http://127.0.0.1:1", now=1.0)
    assert [s.server_id for s in pg_store.live_servers(now=2.0, max_age_s=5)] == ["s1"]
    pg_store.audit("spawn", "api", "t1")
    assert pg_store.recent_audit(5)[0].action == "spawn"
