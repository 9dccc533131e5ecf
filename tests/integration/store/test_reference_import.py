"""A data dir made by tenement 0.2.2 is recognised, stamped, upgraded; its tokens keep working."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from reference_helpers import (
    REFERENCE_ADMIN_TOKEN,
    REFERENCE_ALICE_TOKEN,
    build_reference_db,
    run_reference,
    token_from_output,
)

from tenement.store import (
    SchemaKind,
    Store,
    list_backups,
    migrate_to_head,
    open_store,
    schema_status,
    verify_token,
)
from tenement.store.migrate import upgrade
from tenement.store.schema import BASELINE_REVISION, HEAD_REVISION
from tenement.store.tables import FTS_TABLES, metadata


def sqlite_schema(store: Store) -> set[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
        )
        return {(t, n, " ".join((s or "").split())) for t, n, s in rows}


def assert_matches_models(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, _: (
                    not (type_ == "table" and name in FTS_TABLES)
                ),
            },
        )
        assert compare_metadata(context, metadata) == []


def import_and_check(data_dir: Path, admin: str, tenant: str, tenant_id: str) -> None:
    with open_store(f"sqlite:///{data_dir}/tenement.db") as store:
        assert schema_status(store).kind is SchemaKind.REFERENCE
        report = migrate_to_head(store, backup_dir=data_dir / "backups")
        assert report.stamped_reference
        assert report.from_revision is None
        assert report.to_revision == HEAD_REVISION
        assert report.backup is not None
        assert report.backup.name.startswith("tenement-reference-0.2.2-")
        assert list_backups(data_dir / "backups") == [report.backup]
        assert schema_status(store).kind is SchemaKind.AT_HEAD

        admin_hash = store.admin_token_hash()
        assert admin_hash is not None and verify_token(admin, admin_hash)
        row = store.find_tenant_token(tenant)
        assert row is not None and row.tenant == tenant_id
        assert_matches_models(store)


def test_sql_built_reference_db_is_imported(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build_reference_db(data_dir / "tenement.db")
    import_and_check(data_dir, REFERENCE_ADMIN_TOKEN, REFERENCE_ALICE_TOKEN, "alice")
    with open_store(f"sqlite:///{data_dir}/tenement.db") as store:
        # the reference's log rows and its FTS index came along
        assert [e.message for e in store.query_logs(search="old")] == ["old line"]
        assert store.list_tenant_tokens()[0].description == "hello"


def test_real_reference_data_dir_is_imported(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").write_text('[settings]\ndata_dir = "data"\n')
    admin = token_from_output(run_reference(["token-gen"], cwd=tmp_path))
    alice = token_from_output(run_reference(["token-gen", "--tenant", "alice"], cwd=tmp_path))
    data_dir = tmp_path / "data"
    assert (data_dir / "api_token").read_text().strip() == admin
    import_and_check(data_dir, admin, alice, "alice")

    # the reference binary still works on the upgraded database (it ignores our tables)
    bob = token_from_output(run_reference(["token-gen", "--tenant", "bob"], cwd=tmp_path))
    with open_store(f"sqlite:///{data_dir}/tenement.db") as store:
        row = store.find_tenant_token(bob)
        assert row is not None and row.tenant == "bob"
        assert schema_status(store).kind is SchemaKind.AT_HEAD


def test_our_baseline_is_the_reference_schema(tmp_path: Path) -> None:
    """Revision 0001 creates exactly what the reference creates, statement for statement."""
    (tmp_path / "tenement.toml").write_text('[settings]\ndata_dir = "ref"\n')
    run_reference(["token-gen"], cwd=tmp_path)
    with (
        open_store(f"sqlite:///{tmp_path}/ref/tenement.db") as reference,
        open_store(f"sqlite:///{tmp_path}/ours/tenement.db") as ours,
    ):
        upgrade(ours, BASELINE_REVISION, backup_dir=None)
        assert sqlite_schema(ours) == sqlite_schema(reference)


def test_sql_built_reference_matches_our_baseline(tmp_path: Path) -> None:
    """The SQL-built stand-in used without the binary is the same schema as revision 0001."""
    build_reference_db(tmp_path / "ref" / "tenement.db")
    with (
        open_store(f"sqlite:///{tmp_path}/ref/tenement.db") as reference,
        open_store(f"sqlite:///{tmp_path}/ours/tenement.db") as ours,
    ):
        upgrade(ours, BASELINE_REVISION, backup_dir=None)
        assert sqlite_schema(ours) == sqlite_schema(reference)
