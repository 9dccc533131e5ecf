"""The database: schema, migrations, backups, and the queries every layer uses.

Public face of the store layer; other layers import from here only. Layout:
``store.py`` (:class:`Store`, built from one class per concept: ``tokens.py``,
``instances.py``, ``logs.py``, ``audit.py``, ``lease.py``, ``users.py``; their queries are
SQL text run through ``_db.py``: sqlite3 for a SQLite file, SQLAlchemy for any other URL),
``private.py`` (the modes of the server's files),
``schema.py`` (which revision a database is at, without Alembic), ``migrate.py``
(Alembic, loaded only when needed), ``tables.py`` (the schema as SQLAlchemy tables, for
Alembic and the migration tests), ``backup.py``; the migration scripts live in the
top-level ``migrations/`` (``tenement/_migrations`` when installed).
"""

from tenement.store._db import check_url
from tenement.store._sqlite import sqlite_path
from tenement.store.audit import AuditRow
from tenement.store.backup import (
    backup_database,
    backup_dir_for,
    check_restorable,
    list_backups,
    prune_backups,
    restore_backup,
)
from tenement.store.errors import (
    BackupError,
    DatabaseUnavailable,
    DriverMissing,
    StoreError,
    UnknownRevision,
    UnrecognisedDatabase,
)
from tenement.store.instances import InstanceRecord
from tenement.store.lease import ServerRow
from tenement.store.logs import LogEntry
from tenement.store.migrate import MigrationReport, RevisionInfo, migrate_to_head
from tenement.store.private import passage_dir, private_dir, private_file
from tenement.store.schema import (
    SchemaKind,
    SchemaStatus,
    is_at_head,
    runs_on,
    schema_status,
)
from tenement.store.store import Store, default_url, open_store
from tenement.store.tokens import (
    TenantTokenRow,
    generate_token,
    hash_token,
    token_prefix,
    verify_token,
)
from tenement.store.users import UidsExhausted

__all__ = [
    "AuditRow",
    "BackupError",
    "DatabaseUnavailable",
    "DriverMissing",
    "InstanceRecord",
    "LogEntry",
    "MigrationReport",
    "RevisionInfo",
    "SchemaKind",
    "SchemaStatus",
    "ServerRow",
    "Store",
    "StoreError",
    "TenantTokenRow",
    "UidsExhausted",
    "UnknownRevision",
    "UnrecognisedDatabase",
    "backup_database",
    "backup_dir_for",
    "check_restorable",
    "check_url",
    "default_url",
    "generate_token",
    "hash_token",
    "is_at_head",
    "list_backups",
    "migrate_to_head",
    "open_store",
    "passage_dir",
    "private_dir",
    "private_file",
    "prune_backups",
    "restore_backup",
    "runs_on",
    "schema_status",
    "sqlite_path",
    "token_prefix",
    "verify_token",
]
