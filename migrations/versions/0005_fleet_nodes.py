"""Fleet nodes: the nodes table, and which node owns each instance and server.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Why: several tenement hosts on one PostgreSQL database (docs/fleet.md) must know who
is alive and which host runs which tenant, with the database as the only arbiter. Each
node keeps a row in ``nodes`` (its address, capacity, and a heartbeat stamped with the
database's clock); an instance row names the node that runs it (NULL: a database from
before, or a single host) and an epoch for the fencing still to come; a server row
names its node, so that a leader hands its tenants only to a server of its own node.
Only additions: an older release ignores the new table and columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the oldest tenement release that runs on a database at this revision (the
#: compatibility window, tenement/store/window.py)
oldest_release: str = "0.3.0"


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("advertise", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("data_dir", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("heartbeat_at", sa.Double, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="up"),
        sa.Column("cpus", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("memory_total", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("memory_available", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("instances", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("down_at", sa.Double),
        sa.Column("down_by", sa.Text),
        sa.PrimaryKeyConstraint("name", name="pk_nodes"),
    )
    op.add_column("instances", sa.Column("node", sa.Text))
    op.add_column(
        "instances",
        sa.Column("epoch", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_instances_node", "instances", ["node"])
    op.add_column("servers", sa.Column("node", sa.Text))


def downgrade() -> None:
    # SQLite (3.35+) drops a column in place; batch mode would rebuild the tables and
    # leave their CREATE text unlike the one revision 0004 made
    op.drop_column("servers", "node")
    op.drop_index("ix_instances_node", table_name="instances")
    op.drop_column("instances", "epoch")
    op.drop_column("instances", "node")
    op.drop_table("nodes")
