"""Supervisor state: instances, servers, the supervisor lease, log file offsets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Why: tenants outlive the server process. A starting server adopts them from the
``instances`` rows (pid + process start time guard against pid reuse), takes the
``lease`` so that only one server supervises a data dir, announces itself in
``servers`` (a successor can see its predecessor), and resumes tailing each log file
from ``log_offsets`` without losing or repeating lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the oldest tenement release that runs on a database at this revision (the
#: compatibility window, tenement/store/window.py)
oldest_release: str = "0.3.0"


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("start_ticks", sa.BigInteger),
        sa.Column("pgid", sa.Integer),
        sa.Column("port", sa.Integer),
        sa.Column("socket", sa.Text, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False, server_default=sa.text("100")),
        sa.Column("health", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("restart_times", sa.JSON, nullable=False),
        sa.Column("restarts_total", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("started_at", sa.Double),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_instances"),
        sa.CheckConstraint(
            "weight >= 0 AND weight <= 100", name="ck_instances_weight_range"
        ),
    )
    op.create_index("ix_instances_service", "instances", ["service"])
    op.create_table(
        "servers",
        sa.Column("server_id", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("server_id", name="pk_servers"),
    )
    op.create_table(
        "lease",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_lease"),
    )
    op.create_table(
        "log_offsets",
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("inode", sa.BigInteger, nullable=False),
        sa.Column("byte_offset", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_log_offsets"),
    )


def downgrade() -> None:
    op.drop_table("log_offsets")
    op.drop_table("lease")
    op.drop_table("servers")
    op.drop_index("ix_instances_service", table_name="instances")
    op.drop_table("instances")
