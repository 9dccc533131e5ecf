"""A newer release of this tree, for the upgrade and rollback tests.

The same code with a higher version and one more migration, ``EXTRA_REVISION``, which
only adds, as every revision within a major version must: a table with a marker row,
and a column on ``instances`` with a default (the kind of data an older release ignores
while it runs, and must leave intact for the newer one). Its ``oldest_release`` says
which releases run on it: this tree's (inside the window), or a new major's (outside).

Made from a copy of the source tree (``tests/integration/server/test_rollback.py``,
run with ``PYTHONPATH``) or inside a repacked .deb (``tests/system/debs.py``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: this tree's newest revision: the older release's head, which a rollback runs on
OLD_HEAD = max(p.name[:4] for p in (REPO / "migrations" / "versions").glob("[0-9]" * 4 + "_*.py"))
#: the newer release's extra revision: the next one after this tree's, so that a real
#: migration added later never collides with it
EXTRA_REVISION = f"{int(OLD_HEAD) + 1:04d}"
EXTRA_TABLE = "system_test_marker"
#: the column the newer release adds to ``instances``, and its default
EXTRA_COLUMN = "newer_feature"
EXTRA_DEFAULT = "unset"

_MIGRATION = '''\
"""Test only: a newer release's feature. It only adds: a table and a defaulted column.

Revision ID: {revision}
Revises: {down}

Why: the upgrade and rollback tests need a release newer than this tree.
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None
oldest_release = "{oldest_release}"


def upgrade() -> None:
    table = op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))
    op.bulk_insert(table, [{{"id": 1}}])
    op.add_column(
        "instances",
        sa.Column("{column}", sa.Text, nullable=False, server_default="{default}"),
    )


def downgrade() -> None:
    op.drop_column("instances", "{column}")
    op.drop_table("{table}")
'''

_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


class NotATree(Exception):
    """The package to make newer does not look like this tree's."""


def make_newer(package: Path, migrations: Path, version: str, *, oldest_release: str) -> None:
    """Turn the tenement package at ``package`` (its migration scripts at ``migrations``)
    into release ``version`` (PEP 440) with ``EXTRA_REVISION``, which records
    ``oldest_release`` as the oldest release that runs on it.

    Raises:
        NotATree: ``package`` has no ``KNOWN_REVISIONS = (...)`` to add the revision to.
    """
    (package / "_version.py").write_text(f'__version__ = "{version}"\n')
    # a release with a migration also lists it in the store's known revisions
    schema = package / "store" / "schema.py"
    text, count = re.subn(
        r"^(KNOWN_REVISIONS = \([^)]*?),?\s*\)",
        rf'\1, "{EXTRA_REVISION}")',
        schema.read_text(),
        count=1,
        flags=re.M,
    )
    if count != 1:
        raise NotATree(f"no KNOWN_REVISIONS = (...) in {schema} to add the migration to")
    schema.write_text(text)
    versions = migrations / "versions"
    down = sorted(p.name[:4] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]
    (versions / f"{EXTRA_REVISION}_system_test.py").write_text(
        _MIGRATION.format(
            revision=EXTRA_REVISION,
            down=down,
            table=EXTRA_TABLE,
            column=EXTRA_COLUMN,
            default=EXTRA_DEFAULT,
            oldest_release=oldest_release,
        )
    )


def newer_source_tree(
    into: Path, version: str, *, oldest_release: str, project: bool = False
) -> Path:
    """A copy of this tree's ``tenement`` and ``migrations`` in ``into``, made newer: put
    ``into`` first on ``PYTHONPATH`` to run it. With ``project``, also what building a
    wheel of it needs (``pip wheel INTO``)."""
    shutil.copytree(REPO / "tenement", into / "tenement", ignore=_SKIP)
    shutil.copytree(REPO / "migrations", into / "migrations", ignore=_SKIP)
    if project:
        shutil.copytree(REPO / "units", into / "units", ignore=_SKIP)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(REPO / name, into / name)
    make_newer(into / "tenement", into / "migrations", version, oldest_release=oldest_release)
    return into
