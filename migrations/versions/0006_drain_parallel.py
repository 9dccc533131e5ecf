"""Drain parallel: how many of a draining node's tenants move at once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Why: ``ten drain NODE --parallel N`` moves N tenants at once, and a drain must go on
as it was asked after the draining node's server is restarted: the plan is rows, never
a server's memory, so N is the node's row's. NULL: not draining (or a drain asked of a
release before this one: one at a time). Only an addition: an older release ignores
the column, and drains one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the oldest tenement release that runs on a database at this revision (the
#: compatibility window, tenement/store/window.py)
oldest_release: str = "0.3.0"


def upgrade() -> None:
    op.add_column("nodes", sa.Column("drain_parallel", sa.Integer))


def downgrade() -> None:
    # SQLite (3.35+) drops a column in place, as revision 0005's downgrade does
    op.drop_column("nodes", "drain_parallel")
