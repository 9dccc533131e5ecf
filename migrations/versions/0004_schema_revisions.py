"""Schema revisions: each revision of the database, with the oldest release that runs on it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Why: rolling back is putting the older binary back and starting it. An older binary
cannot read a newer release's migration scripts, so the database itself must say
whether the older release can run on it: one row per applied revision, written by the
release that applied it (tenement/store/window.py), naming the oldest release that runs
on the schema at that revision and what the revision adds (the data an older release
ignores while it runs).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the oldest tenement release that runs on a database at this revision (the
#: compatibility window, tenement/store/window.py)
oldest_release: str = "0.3.0"


def upgrade() -> None:
    op.create_table(
        "schema_revisions",
        sa.Column("revision", sa.Text, nullable=False),
        sa.Column("oldest_release", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("applied_by", sa.Text, nullable=False),
        sa.Column("applied_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("revision", name="pk_schema_revisions"),
    )


def downgrade() -> None:
    op.drop_table("schema_revisions")
