"""Service users: the uid each service's tenants run as.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

Why: a tenant must not run as the server's user (it could read the database, the API
token and the server's environment). Where the server can change uid it runs each
service as a uid of its own, allotted from ``[settings] tenant_uids``; the allotment is
recorded so that a service keeps its uid (and so its files) across restarts, and two
services never share one (``uid`` is unique).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the oldest tenement release that runs on a database at this revision (the
#: compatibility window, tenement/store/window.py)
oldest_release: str = "0.3.0"


def upgrade() -> None:
    op.create_table(
        "service_users",
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("uid", sa.Integer, nullable=False),
        sa.Column("allotted_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("service", name="pk_service_users"),
        sa.UniqueConstraint("uid", name="uq_service_users_uid"),
    )


def downgrade() -> None:
    op.drop_table("service_users")
