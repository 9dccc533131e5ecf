"""Bringing a database's schema to this tenement's head, with Alembic.

Alembic is imported only here, and only when a database actually needs work
(:func:`~tenement.store.is_at_head` answers the common case without it). Every
change runs in one write transaction: it commits whole or not at all. Before
changing a database that holds data, it is backed up (:mod:`tenement.store.backup`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

import tenement
from tenement.store.backup import backup_database, skip_reason
from tenement.store.errors import StoreError, UnknownRevision, UnrecognisedDatabase
from tenement.store.schema import (
    BASELINE_REVISION,
    HEAD_REVISION,
    KNOWN_REVISIONS,
    SchemaKind,
    SchemaStatus,
    inspect_schema,
    schema_status,
)
from tenement.store.store import Store
from tenement.store.window import WINDOW_TABLE, Revision, record_revisions

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger(__name__)

#: how the label of a backup of an unversioned reference database reads
REFERENCE_LABEL = "reference-0.2.2"

Say = Callable[[str], None]


@attrs.frozen
class MigrationReport:
    """What a migration did.

    Attributes:
        from_revision: the revision before (None: empty or an unversioned reference db).
        to_revision: the revision after (None: base, everything dropped).
        backup: the backup written first, if any.
        stamped_reference: a reference 0.2.2 database was stamped as the baseline.
        created: the database was empty and was created.
    """

    from_revision: str | None
    to_revision: str | None
    backup: Path | None = None
    stamped_reference: bool = False
    created: bool = False

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision or self.stamped_reference


@attrs.frozen
class RevisionInfo:
    """One migration script, for ``ten db history``."""

    revision: str
    down_revision: str | None
    summary: str
    is_head: bool


def migrations_dir() -> Path:
    """Where the migration scripts are: inside the installed package, else the source tree.

    Raises:
        StoreError: neither has them (a broken install).
    """
    package = Path(tenement.__file__).resolve().parent
    candidates = (package / "_migrations", package.parent / "migrations")
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    looked = " and ".join(str(c) for c in candidates)
    raise StoreError(f"tenement's migration scripts are missing (looked in {looked}); reinstall")


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script_directory() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def script_revisions() -> list[RevisionInfo]:
    """Every migration script, oldest first."""
    scripts = _script_directory()
    heads = set(scripts.get_heads())
    infos = [
        RevisionInfo(
            revision=script.revision,
            down_revision=script.down_revision,
            summary=(script.doc or "").strip().splitlines()[0] if script.doc else "",
            is_head=script.revision in heads,
        )
        for script in scripts.walk_revisions()
    ]
    return list(reversed(infos))


def _chain(upto: str) -> list[Revision]:
    """The revisions a database at ``upto`` has applied, oldest first, as the window
    records them (each script's ``oldest_release`` and first docstring line)."""
    scripts = {script.revision: script for script in _script_directory().walk_revisions()}
    chain = []
    for revision in KNOWN_REVISIONS[: KNOWN_REVISIONS.index(upto) + 1]:
        script = scripts[revision]
        summary = (script.doc or "").strip().splitlines()[0].rstrip(".") if script.doc else ""
        chain.append(Revision(revision, script.module.oldest_release, summary))
    return chain


def _record_window(conn: sa.Connection, revision: str | None) -> None:
    """After a migration to ``revision``: the window's rows list what is applied (when
    the database at ``revision`` has the window's table at all)."""
    import sqlalchemy as sa

    if revision is not None and sa.inspect(conn).has_table(WINDOW_TABLE):
        record_revisions(conn, _chain(revision))


def _refuse(
    store: Store, status: SchemaStatus, backup_dir: Path | None, *, ahead_ok: bool = True
) -> None:
    unknown = status.kind is SchemaKind.UNKNOWN_REVISION
    if unknown or (status.kind is SchemaKind.AHEAD and not ahead_ok):
        assert status.revision is not None
        raise UnknownRevision(status.revision, HEAD_REVISION, backup_dir, status.ahead)
    if status.kind is SchemaKind.UNRECOGNISED:
        raise UnrecognisedDatabase(store.display_url, status.foreign_tables, status.detail)


def _check_target(target: str) -> str:
    if target == "head":
        return HEAD_REVISION
    if target == "base" or target in KNOWN_REVISIONS:
        return target
    raise StoreError(
        f"no revision {target!r} in this tenement; it knows base, "
        f"{', '.join(KNOWN_REVISIONS)} (head {HEAD_REVISION})"
    )


def _index(revision: str | None) -> int:
    return -1 if revision in (None, "base") else KNOWN_REVISIONS.index(revision)


def _backup_first(
    store: Store, status: SchemaStatus, backup_dir: Path | None, say: Say
) -> Path | None:
    if status.kind is SchemaKind.EMPTY or backup_dir is None:
        return None
    why_not = skip_reason(store)
    if why_not is not None:
        say(why_not)
        return None
    path = backup_database(store, backup_dir, label=status.revision or REFERENCE_LABEL)
    say(f"Backed up to {path}")
    return path


#: the PostgreSQL advisory lock a migration holds (any fixed number; "tenement" in ASCII)
MIGRATION_LOCK = 0x74656E656D656E74


def _serialise(conn: sa.Connection) -> None:
    """One migration at a time on a database: SQLite's write transaction already is
    (``BEGIN IMMEDIATE``); on PostgreSQL two servers starting at once on a new database
    (a fleet's nodes) both created the tables, and one failed on a duplicate. The lock is
    the transaction's: the second waits, then finds the schema migrated."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")


def upgrade(
    store: Store,
    target: str = "head",
    *,
    backup_dir: Path | None,
    say: Say | None = None,
) -> MigrationReport:
    """Upgrade to ``target`` (a revision or ``head``), backing the database up first.

    An empty database is created; a reference 0.2.2 database is stamped as the baseline
    first. Nothing happens (and no backup is made) when the database is already there.

    Args:
        backup_dir: where to back up to (None: no backup).
        say: called with each short progress line (for the CLI and sd_notify STATUS).

    Raises:
        UnknownRevision: the database is at a revision this tenement does not know.
        UnrecognisedDatabase: the database holds someone else's tables.
        StoreError: ``target`` is not a known revision or is older than the database.
    """
    say = say or (lambda line: log.info("%s", line))
    wanted = _check_target(target)
    status = schema_status(store)
    _refuse(store, status, backup_dir)
    if wanted == "base":
        raise StoreError("`upgrade base` means nothing; use `ten db downgrade base`")
    if status.kind is SchemaKind.AHEAD:
        if wanted != HEAD_REVISION:
            raise StoreError(
                f"database is at {status.revision}, past {wanted}: {status.describe()}"
            )
        say(f"Database is at {status.describe()}")
        return MigrationReport(status.revision, status.revision)
    if status.revision is not None and _index(status.revision) >= _index(wanted):
        if status.revision != wanted:
            raise StoreError(
                f"database is at {status.revision}, past {wanted}; use `ten db downgrade {wanted}`"
            )
        return MigrationReport(status.revision, status.revision)
    backup = _backup_first(store, status, backup_dir, say)
    from alembic import command

    with store.begin_write() as conn:
        _serialise(conn)
        # Again, under the write lock: another process may have migrated meanwhile.
        status = inspect_schema(conn)
        _refuse(store, status, backup_dir)
        if status.kind is SchemaKind.AHEAD or (
            status.revision is not None and _index(status.revision) >= _index(wanted)
        ):
            return MigrationReport(status.revision, status.revision, backup)
        cfg = _alembic_config(conn)
        stamped = status.kind is SchemaKind.REFERENCE
        if stamped:
            say(f"Recognised a tenement 0.2.2 database; stamping it {BASELINE_REVISION}")
            command.stamp(cfg, BASELINE_REVISION)
        start = status.revision or (BASELINE_REVISION if stamped else "empty")
        say(f"Upgrading schema {start} -> {wanted}")
        command.upgrade(cfg, wanted)
        _record_window(conn, wanted)
    return MigrationReport(
        status.revision,
        wanted,
        backup,
        stamped_reference=stamped,
        created=status.kind is SchemaKind.EMPTY,
    )


def migrate_to_head(
    store: Store, *, backup_dir: Path | None, log: Say | None = None
) -> MigrationReport:
    """:func:`upgrade` to head: what ``ten serve`` and ``ten db upgrade`` do first."""
    return upgrade(store, "head", backup_dir=backup_dir, say=log)


def downgrade(
    store: Store, target: str, *, backup_dir: Path | None, say: Say | None = None
) -> MigrationReport:
    """Downgrade to ``target`` (a revision, or ``base`` = drop every table), backing up first.

    Raises:
        UnknownRevision: the database is at a revision this tenement does not know (a
            newer tenement must downgrade it).
        StoreError: ``target`` is unknown or newer than the database, or the database
            has no version (upgrade it first).
    """
    say = say or (lambda line: log.info("%s", line))
    wanted = _check_target(target)
    status = schema_status(store)
    _refuse(store, status, backup_dir, ahead_ok=False)
    if status.revision is None:
        raise StoreError(f"database has no schema revision ({status.describe()}); nothing to undo")
    if _index(wanted) > _index(status.revision):
        raise StoreError(
            f"database is at {status.revision}, before {wanted}; use `ten db upgrade {wanted}`"
        )
    if wanted == status.revision:
        return MigrationReport(status.revision, status.revision)
    backup = _backup_first(store, status, backup_dir, say)
    from alembic import command

    with store.begin_write() as conn:
        _serialise(conn)
        status = inspect_schema(conn)
        _refuse(store, status, backup_dir, ahead_ok=False)
        if status.revision is None or _index(wanted) >= _index(status.revision):
            return MigrationReport(status.revision, status.revision, backup)
        say(f"Downgrading schema {status.revision} -> {wanted}")
        command.downgrade(_alembic_config(conn), wanted)
        _record_window(conn, None if wanted == "base" else wanted)
    return MigrationReport(status.revision, None if wanted == "base" else wanted, backup)
