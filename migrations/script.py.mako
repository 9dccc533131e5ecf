"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Why: (say why this change is needed; one change per revision)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

#: the oldest tenement release that runs on a database at this revision. Within a major
#: version a revision only adds (tables, nullable or defaulted columns, indexes: see
#: docs/upgrading.md), and this stays the previous revision's value; a revision that
#: drops, renames, retypes or tightens anything starts a new major version and says so.
oldest_release: str = "FILL IN"  # e.g. the previous revision's value

# After adding a revision, update KNOWN_REVISIONS in tenement/store/schema.py and set
# oldest_release above (the test of the window says what it must be).


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
