"""The compatibility window: revisions only add, and an older release runs on a newer schema.

Each revision records the oldest release that runs on it; within a major version a
revision may only add (tables, nullable or defaulted columns, indexes), and this test
inspects the schema before and after every revision since the window began. A database
at a newer revision whose row lets this release run on it is used as it is; anything
else unknown is refused as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from tenement._version import __version__
from tenement.store import (
    SchemaKind,
    Store,
    StoreError,
    UnknownRevision,
    is_at_head,
    migrate_to_head,
    open_store,
    runs_on,
    schema_status,
)
from tenement.store.migrate import _script_directory, downgrade, upgrade
from tenement.store.schema import HEAD_REVISION, KNOWN_REVISIONS
from tenement.store.tables import FTS_TABLES
from tenement.store.window import WINDOW_TABLE, release

#: the first revision made under the window: every one from here on only adds
WINDOW_FROM = "0004"


def url(tmp_path: Path, name: str = "tenement") -> str:
    return f"sqlite:///{tmp_path}/data/{name}.db"


# --- what a revision may do -----------------------------------------------------------


@attrs.frozen
class Shape:
    """Everything about a schema that an older release's queries rely on."""

    columns: dict[str, dict[str, tuple[str, bool, str | None]]]
    primary_keys: dict[str, tuple[str, ...]]
    unique: dict[str, set[tuple[str, ...]]]
    checks: dict[str, set[str]]
    foreign_keys: dict[str, set[tuple[tuple[str, ...], str]]]
    indexes: dict[str, set[str]]
    triggers: dict[str, set[str]]


def shape_of(engine: sa.Engine) -> Shape:
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        tables = [
            t
            for t in inspector.get_table_names()
            if t not in FTS_TABLES and not t.startswith("sqlite_") and t != "alembic_version"
        ]
        columns = {
            t: {
                c["name"]: (str(c["type"]), bool(c["nullable"]), c.get("default"))
                for c in inspector.get_columns(t)
            }
            for t in tables
        }
        unique: dict[str, set[tuple[str, ...]]] = {t: set() for t in tables}
        indexes: dict[str, set[str]] = {t: set() for t in tables}
        for t in tables:
            for constraint in inspector.get_unique_constraints(t):
                unique[t].add(tuple(constraint["column_names"]))
            for index in inspector.get_indexes(t):
                indexes[t].add(str(index["name"]))
                if index["unique"]:
                    unique[t].add(tuple(str(c) for c in index["column_names"]))
        triggers: dict[str, set[str]] = {t: set() for t in tables}
        for name, table in conn.exec_driver_sql(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
        ):
            triggers.setdefault(table, set()).add(name)
        return Shape(
            columns=columns,
            primary_keys={
                t: tuple(inspector.get_pk_constraint(t)["constrained_columns"]) for t in tables
            },
            unique=unique,
            checks={
                t: {str(c["sqltext"]) for c in inspector.get_check_constraints(t)} for t in tables
            },
            foreign_keys={
                t: {
                    (tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in inspector.get_foreign_keys(t)
                }
                for t in tables
            },
            indexes=indexes,
            triggers=triggers,
        )


def contractions(before: Shape, after: Shape) -> list[str]:
    """What ``after`` takes away from, or tightens in, ``before``: empty when it only adds."""
    found = []
    for table, columns in before.columns.items():
        if table not in after.columns:
            found.append(f"drops or renames table {table}")
            continue
        now = after.columns[table]
        for column, (kind, nullable, default) in columns.items():
            if column not in now:
                found.append(f"drops or renames column {table}.{column}")
                continue
            new_kind, new_nullable, new_default = now[column]
            if new_kind != kind:
                found.append(f"retypes {table}.{column} from {kind} to {new_kind}")
            if nullable and not new_nullable:
                found.append(f"makes {table}.{column} NOT NULL")
            if new_default != default:
                found.append(f"changes the default of {table}.{column}")
        for column in now.keys() - columns.keys():
            _, nullable, default = now[column]
            if not nullable and default is None:
                found.append(f"adds {table}.{column} NOT NULL without a default")
        if after.primary_keys[table] != before.primary_keys[table]:
            found.append(f"changes the primary key of {table}")
        for what, old, new in (
            ("unique constraint", before.unique, after.unique),
            ("check constraint", before.checks, after.checks),
            ("foreign key", before.foreign_keys, after.foreign_keys),
            ("trigger", before.triggers, after.triggers),
        ):
            if new.get(table, set()) - old.get(table, set()):
                found.append(f"adds a {what} to {table}")
        if before.indexes[table] - after.indexes[table]:
            found.append(f"drops an index of {table}")
    for table in after.columns.keys() - before.columns.keys():
        for _, referred in after.foreign_keys[table]:
            if referred in before.columns:
                found.append(f"new table {table} has a foreign key to {referred}")
    return found


def _oldest_release(revision: str) -> str:
    script = _script_directory().get_revision(revision)
    assert script is not None
    value: str = script.module.oldest_release
    return value


def test_every_revision_records_the_oldest_release_that_runs_on_it() -> None:
    previous = (0, 0, 0)
    for revision in KNOWN_REVISIONS:
        oldest = release(_oldest_release(revision))  # raises on a value like "FILL IN"
        assert oldest >= previous, f"{revision}: oldest_release went back"
        assert oldest <= release(__version__), f"{revision}: needs a release after this one"
        previous = oldest


@pytest.mark.parametrize("revision", KNOWN_REVISIONS[KNOWN_REVISIONS.index(WINDOW_FROM) :])
def test_a_revision_within_a_major_version_only_adds(tmp_path: Path, revision: str) -> None:
    down = KNOWN_REVISIONS[KNOWN_REVISIONS.index(revision) - 1]
    with open_store(url(tmp_path)) as store:
        upgrade(store, down, backup_dir=None)
        before = shape_of(store.engine)
        upgrade(store, revision, backup_dir=None)
        after = shape_of(store.engine)
    if release(_oldest_release(revision))[0] > release(_oldest_release(down))[0]:
        pytest.skip(f"{revision} starts a new major version: it may take away")
    assert contractions(before, after) == []


ADDS = [
    "CREATE TABLE extra (id INTEGER PRIMARY KEY, t_id INTEGER)",
    "ALTER TABLE t ADD COLUMN maybe TEXT",
    "ALTER TABLE t ADD COLUMN flag TEXT NOT NULL DEFAULT 'x'",
    "CREATE INDEX ix_t_name ON t (name)",
]

TAKES_AWAY = {
    "drops or renames column t.name": "ALTER TABLE t DROP COLUMN name",
    "drops or renames table t": "ALTER TABLE t RENAME TO t2",
    "adds t.must NOT NULL without a default": "ALTER TABLE t ADD COLUMN must TEXT NOT NULL",
    "adds a unique constraint to t": "CREATE UNIQUE INDEX ux_t_name ON t (name)",
    "adds a trigger to t": "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN SELECT 1; END",
    "new table child has a foreign key to t": (
        "CREATE TABLE child (id INTEGER PRIMARY KEY, t_id INTEGER REFERENCES t (id))"
    ),
    "retypes t.name from TEXT to INTEGER": (
        "CREATE TABLE t2 (id INTEGER PRIMARY KEY, name INTEGER); DROP TABLE t; "
        "ALTER TABLE t2 RENAME TO t"
    ),
    "makes t.name NOT NULL": (
        "CREATE TABLE t2 (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT ''); "
        "DROP TABLE t; ALTER TABLE t2 RENAME TO t"
    ),
}


def _shapes(tmp_path: Path, change: str) -> tuple[Shape, Shape]:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/shape.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    before = shape_of(engine)
    raw = engine.raw_connection()
    try:
        raw.driver_connection.executescript(change)  # type: ignore[union-attr]
    finally:
        raw.close()
    after = shape_of(engine)
    engine.dispose()
    return before, after


@pytest.mark.parametrize("change", ADDS)
def test_the_inspection_lets_additions_pass(tmp_path: Path, change: str) -> None:
    assert contractions(*_shapes(tmp_path, change)) == []


@pytest.mark.parametrize(("finding", "change"), TAKES_AWAY.items())
def test_the_inspection_finds_what_takes_away(tmp_path: Path, finding: str, change: str) -> None:
    assert finding in contractions(*_shapes(tmp_path, change))


# --- what the window's rows say ------------------------------------------------------


def _rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(
            conn.exec_driver_sql(
                f"SELECT revision, oldest_release, applied_by FROM {WINDOW_TABLE} ORDER BY revision"
            )
        )


def test_the_rows_follow_upgrades_and_downgrades(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        rows = _rows(store)
        assert [r[0] for r in rows] == list(KNOWN_REVISIONS)
        assert {r[2] for r in rows} == {__version__}
        assert all(r[1] == _oldest_release(r[0]) for r in rows)
        downgrade(store, "0003", backup_dir=None)
        with store.engine.connect() as conn:
            assert not sa.inspect(conn).has_table(WINDOW_TABLE)
        migrate_to_head(store, backup_dir=None)
        assert [r[0] for r in _rows(store)] == list(KNOWN_REVISIONS)


def _as_if_newer(store: Store, revision: str, oldest_release: str, *, own_row: bool = True) -> None:
    """What a newer release leaves behind: its revision, with its row."""
    with store.begin_write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        conn.execute(
            sa.text(
                f"INSERT INTO {WINDOW_TABLE} VALUES (:r, :oldest, 'A newer feature', '9.9.9', 0)"
            ),
            {"r": revision, "oldest": oldest_release},
        )
        if not own_row:
            conn.execute(
                sa.text(f"DELETE FROM {WINDOW_TABLE} WHERE revision = :r"), {"r": HEAD_REVISION}
            )


def test_a_newer_revision_inside_the_window_is_used_as_it_is(tmp_path: Path) -> None:
    backups = tmp_path / "data" / "backups"
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        store.set_admin_token_hash("$argon2id$kept")
        _as_if_newer(store, "0990", "0.3.0")
        status = schema_status(store)
        assert status.kind is SchemaKind.AHEAD
        assert status.usable and not status.needs_upgrade
        assert runs_on(store) and not is_at_head(store)
        described = status.describe()
        assert "0990" in described and "9.9.9" in described
        assert "0990 (A newer feature)" in described
        # the server's start changes nothing and backs nothing up
        report = migrate_to_head(store, backup_dir=backups)
        assert (report.from_revision, report.to_revision, report.backup) == ("0990", "0990", None)
        # going back is the newer release's to do: this one has no script for 0990
        with pytest.raises(UnknownRevision, match=r"tenement 9\.9\.9 wrote it"):
            downgrade(store, HEAD_REVISION, backup_dir=backups)
        with pytest.raises(StoreError, match="past 0001"):
            upgrade(store, "0001", backup_dir=backups)
        assert schema_status(store).revision == "0990"
        assert store.admin_token_hash() == "$argon2id$kept"
    assert not backups.exists()


def test_a_newer_major_is_refused_naming_the_release_it_needs(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        _as_if_newer(store, "0990", "99.0.0")
        status = schema_status(store)
        assert status.kind is SchemaKind.UNKNOWN_REVISION
        assert "needs tenement 99.0.0 or later" in status.describe()
        assert not runs_on(store)
        with pytest.raises(UnknownRevision, match=r"needs tenement 99\.0\.0 or later") as caught:
            migrate_to_head(store, backup_dir=None)
        assert f"ten db downgrade {HEAD_REVISION}" in str(caught.value)


def test_a_database_that_did_not_grow_from_this_release_is_refused(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        _as_if_newer(store, "0990", "0.3.0", own_row=False)
        assert schema_status(store).kind is SchemaKind.UNKNOWN_REVISION
        assert not runs_on(store)


def test_an_unreadable_row_is_outside_the_window(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as store:
        migrate_to_head(store, backup_dir=None)
        _as_if_newer(store, "0990", "soon")
        assert schema_status(store).kind is SchemaKind.UNKNOWN_REVISION
        assert not runs_on(store)


def test_release_reads_major_minor_patch() -> None:
    assert release("0.3.0.dev0") == (0, 3, 0)
    assert release("1.12.3rc1") == (1, 12, 3)
    with pytest.raises(ValueError, match="not a release version"):
        release("FILL IN")
