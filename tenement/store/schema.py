"""What revision a database is at, found without importing Alembic.

Alembic costs about half a second to import, and every restart would pay it; a
database already at :data:`HEAD_REVISION` needs one ``SELECT`` instead.
(``tests/integration/store/test_migrations.py`` checks that :data:`HEAD_REVISION` is
the migration scripts' real head.)
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from tenement.store._sqlite import FTS_TABLES
from tenement.store.store import Store
from tenement.store.window import ROWS_SQL, WINDOW_TABLE, Ahead, read_ahead

if TYPE_CHECKING:
    import sqlalchemy as sa

#: every revision in migrations/versions, oldest first (kept here so that startup needs
#: no Alembic; a test checks it against the scripts)
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006")

#: the newest revision
HEAD_REVISION = KNOWN_REVISIONS[-1]

#: the revision that is exactly the reference 0.2.2's schema
BASELINE_REVISION = KNOWN_REVISIONS[0]

VERSION_TABLE = "alembic_version"

#: the reference 0.2.2's tables and their columns, to recognise a database it made
REFERENCE_TABLES: dict[str, frozenset[str]] = {
    "logs": frozenset({"id", "timestamp", "level", "process", "instance_id", "message"}),
    "config": frozenset({"key", "value"}),
    "instance_state": frozenset({"instance_id", "process_name", "id", "pid", "port", "started_at"}),
    "tenant_tokens": frozenset(
        {"id", "token_hash", "token_prefix", "tenant_id", "description", "created_at"}
    ),
    "deploy_log": frozenset(
        {"id", "timestamp", "action", "process", "instance_id", "details", "success"}
    ),
}


class SchemaKind(enum.Enum):
    """What kind of database a :class:`SchemaStatus` describes."""

    #: no tables at all: created at head
    EMPTY = "empty"
    #: made by the reference 0.2.2 (no version table): stamped as the baseline, upgraded
    REFERENCE = "reference"
    #: at a revision this tenement knows, older than head
    BEHIND = "behind"
    AT_HEAD = "at-head"
    #: at a newer release's revision whose rows say this release runs on it (window.py):
    #: used as it is, the newer features' data ignored
    AHEAD = "ahead"
    #: at a revision this tenement does not know (a newer release's) and cannot run on
    UNKNOWN_REVISION = "unknown-revision"
    #: holds tables that are neither tenement's nor the reference's
    UNRECOGNISED = "unrecognised"


@attrs.frozen
class SchemaStatus:
    """Where a database stands.

    Attributes:
        kind: see :class:`SchemaKind`.
        revision: the ``alembic_version`` row, None without one.
        head: this tenement's newest revision.
        detail: for UNRECOGNISED, why (which tables are foreign or which are missing).
        foreign_tables: for UNRECOGNISED, the tables tenement does not know.
        ahead: for AHEAD, and UNKNOWN_REVISION when the database has a row for its
            revision, what that row says.
    """

    kind: SchemaKind
    revision: str | None
    head: str = HEAD_REVISION
    detail: str = ""
    foreign_tables: tuple[str, ...] = ()
    ahead: Ahead | None = None

    @property
    def needs_upgrade(self) -> bool:
        return self.kind in (SchemaKind.EMPTY, SchemaKind.REFERENCE, SchemaKind.BEHIND)

    @property
    def usable(self) -> bool:
        """This tenement runs on the database as it is."""
        return self.kind in (SchemaKind.AT_HEAD, SchemaKind.AHEAD)

    def describe(self) -> str:
        """One short line for ``ten db current`` / ``ten db check``."""
        if self.kind is SchemaKind.AT_HEAD:
            return f"revision {self.revision} (head)"
        if self.kind is SchemaKind.BEHIND:
            return f"revision {self.revision}; upgrade to {self.head} needed"
        if self.kind is SchemaKind.EMPTY:
            return f"empty database; `ten db upgrade` creates it at {self.head}"
        if self.kind is SchemaKind.REFERENCE:
            return (
                f"tenement 0.2.2 database (no version table); "
                f"upgrade to {self.head} needed (stamped {BASELINE_REVISION} first)"
            )
        if self.kind is SchemaKind.AHEAD:
            assert self.ahead is not None
            return (
                f"revision {self.revision}, ahead of this tenement's {self.head} (applied by "
                f"tenement {self.ahead.applied_by}; releases from {self.ahead.oldest_release} "
                f"run on it); this tenement runs on it and ignores what it does not know: "
                f"{self.ahead.ignored()}"
            )
        if self.kind is SchemaKind.UNKNOWN_REVISION:
            needs = ""
            if self.ahead is not None:
                needs = f"; it needs tenement {self.ahead.oldest_release} or later"
            return f"revision {self.revision} is unknown to this tenement (head {self.head}){needs}"
        return f"not a tenement database: {self.detail}"


def current_revision(conn: sa.Connection) -> str | None:
    """The ``alembic_version`` row, or None when the table is missing or empty."""
    import sqlalchemy as sa

    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def is_at_head(store: Store) -> bool:
    """True if the database is at this tenement's head revision.

    Cheap: one query, and neither Alembic nor (on SQLite) SQLAlchemy is imported.
    """
    try:
        with store.database.read() as session:
            revision: str | None = session.execute(
                f"SELECT version_num FROM {VERSION_TABLE}"
            ).scalar()
    except store.database.error:  # no version table
        return False
    return revision == HEAD_REVISION


def runs_on(store: Store) -> bool:
    """True if this tenement runs on the database as it is: at head, or ahead inside the
    compatibility window (window.py). As cheap as :func:`is_at_head` at head."""
    try:
        with store.database.read() as session:
            revision = session.execute(f"SELECT version_num FROM {VERSION_TABLE}").scalar()
            if revision == HEAD_REVISION:
                return True
            if revision is None or revision in KNOWN_REVISIONS:
                return False
            rows = session.execute(ROWS_SQL).rows
    except store.database.error:  # no version table, or no window table
        return False
    ahead = read_ahead(rows, revision, KNOWN_REVISIONS)
    return ahead is not None and ahead.in_window


def inspect_schema(conn: sa.Connection) -> SchemaStatus:
    """Classify the database behind ``conn`` (see :class:`SchemaKind`)."""
    import sqlalchemy as sa

    revision = current_revision(conn)
    if revision is not None:
        if revision == HEAD_REVISION:
            return SchemaStatus(SchemaKind.AT_HEAD, revision)
        if revision in KNOWN_REVISIONS:
            return SchemaStatus(SchemaKind.BEHIND, revision)
        ahead = None
        if sa.inspect(conn).has_table(WINDOW_TABLE):
            rows = conn.execute(sa.text(ROWS_SQL)).mappings().all()
            ahead = read_ahead(rows, revision, KNOWN_REVISIONS)
        if ahead is not None and ahead.in_window:
            return SchemaStatus(SchemaKind.AHEAD, revision, ahead=ahead)
        return SchemaStatus(SchemaKind.UNKNOWN_REVISION, revision, ahead=ahead)
    inspector = sa.inspect(conn)
    tables = {
        name
        for name in inspector.get_table_names()
        if name not in FTS_TABLES and name != VERSION_TABLE
    }
    if not tables:
        return SchemaStatus(SchemaKind.EMPTY, None)
    foreign = tuple(sorted(tables - REFERENCE_TABLES.keys()))
    if foreign:
        return SchemaStatus(
            SchemaKind.UNRECOGNISED,
            None,
            detail=f"unknown tables {', '.join(foreign)} and no {VERSION_TABLE} table",
            foreign_tables=foreign,
        )
    missing = sorted(REFERENCE_TABLES.keys() - tables)
    if missing:
        return SchemaStatus(
            SchemaKind.UNRECOGNISED,
            None,
            detail=f"tenement 0.2.2 tables {', '.join(missing)} are missing",
        )
    for table, columns in REFERENCE_TABLES.items():
        found = {column["name"] for column in inspector.get_columns(table)}
        if found != columns:
            return SchemaStatus(
                SchemaKind.UNRECOGNISED,
                None,
                detail=f"table {table} has columns {', '.join(sorted(found))}, "
                f"not tenement 0.2.2's {', '.join(sorted(columns))}",
            )
    if conn.dialect.name == "sqlite" and "logs_fts" not in inspector.get_table_names():
        return SchemaStatus(
            SchemaKind.UNRECOGNISED, None, detail="tenement 0.2.2's logs_fts table is missing"
        )
    return SchemaStatus(SchemaKind.REFERENCE, None)


def schema_status(store: Store) -> SchemaStatus:
    """:func:`inspect_schema` in a read transaction of ``store``."""
    with store.engine.connect() as conn:
        return inspect_schema(conn)
