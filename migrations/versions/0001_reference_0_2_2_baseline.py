"""Baseline: exactly the schema of the reference tenement 0.2.2.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Why: a database made by tenement 0.2.2 has these tables and no version table; it is
stamped with this revision and upgraded from here, so its tokens keep working. On
SQLite the tables are created with the reference's own statements (so a fresh
database at this revision is the reference's, FTS5 index and triggers included);
other databases get the same tables without the full-text index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the oldest tenement release that runs on a database at this revision (the
#: compatibility window, tenement/store/window.py)
oldest_release: str = "0.3.0"

# tenement 0.2.2's store.rs, statement by statement
REFERENCE_SQLITE = (
    """CREATE TABLE IF NOT EXISTS logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            level TEXT NOT NULL,
            process TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            message TEXT NOT NULL
        )""",
    "CREATE INDEX IF NOT EXISTS idx_logs_process ON logs(process)",
    "CREATE INDEX IF NOT EXISTS idx_logs_instance ON logs(instance_id)",
    "CREATE INDEX IF NOT EXISTS idx_logs_timestamp ON logs(timestamp DESC)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(
            message,
            content='logs',
            content_rowid='id'
        )""",
    """CREATE TRIGGER IF NOT EXISTS logs_ai AFTER INSERT ON logs BEGIN
            INSERT INTO logs_fts(rowid, message) VALUES (new.id, new.message);
        END""",
    """CREATE TRIGGER IF NOT EXISTS logs_ad AFTER DELETE ON logs BEGIN
            INSERT INTO logs_fts(logs_fts, rowid, message) VALUES('delete', old.id, old.message);
        END""",
    """CREATE TABLE IF NOT EXISTS config (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
    """CREATE TABLE IF NOT EXISTS instance_state (
            instance_id TEXT PRIMARY KEY,
            process_name TEXT NOT NULL,
            id TEXT NOT NULL,
            pid INTEGER NOT NULL,
            port INTEGER,
            started_at TEXT NOT NULL
        )""",
    """CREATE TABLE IF NOT EXISTS tenant_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token_hash TEXT NOT NULL,
            token_prefix TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            description TEXT,
            created_at TEXT NOT NULL
        )""",
    "CREATE INDEX IF NOT EXISTS idx_tenant_tokens_tenant ON tenant_tokens(tenant_id)",
    "CREATE INDEX IF NOT EXISTS idx_tenant_tokens_prefix ON tenant_tokens(token_prefix)",
    """CREATE TABLE IF NOT EXISTS deploy_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            action TEXT NOT NULL,
            process TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            details TEXT,
            success INTEGER NOT NULL DEFAULT 1
        )""",
    "CREATE INDEX IF NOT EXISTS idx_deploy_log_timestamp ON deploy_log(timestamp DESC)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in REFERENCE_SQLITE:
            op.execute(statement)
        return
    op.create_table(
        "logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("timestamp", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("process", sa.Text, nullable=False),
        sa.Column("instance_id", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("idx_logs_process", "logs", ["process"])
    op.create_index("idx_logs_instance", "logs", ["instance_id"])
    op.create_index("idx_logs_timestamp", "logs", [sa.text("timestamp DESC")])
    op.create_table(
        "config",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "instance_state",
        sa.Column("instance_id", sa.Text, primary_key=True),
        sa.Column("process_name", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("port", sa.Integer),
        sa.Column("started_at", sa.Text, nullable=False),
    )
    op.create_table(
        "tenant_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("token_prefix", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_index("idx_tenant_tokens_tenant", "tenant_tokens", ["tenant_id"])
    op.create_index("idx_tenant_tokens_prefix", "tenant_tokens", ["token_prefix"])
    op.create_table(
        "deploy_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("timestamp", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("process", sa.Text, nullable=False),
        sa.Column("instance_id", sa.Text, nullable=False),
        sa.Column("details", sa.Text),
        sa.Column("success", sa.Integer, nullable=False, server_default=sa.text("1")),
    )
    op.create_index("idx_deploy_log_timestamp", "deploy_log", [sa.text("timestamp DESC")])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS logs_ai")
        op.execute("DROP TRIGGER IF EXISTS logs_ad")
        op.execute("DROP TABLE IF EXISTS logs_fts")
    for table in ("deploy_log", "tenant_tokens", "instance_state", "config", "logs"):
        op.drop_table(table)
