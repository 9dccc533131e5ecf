"""The compatibility window: whether this release runs on a database a newer one migrated.

Rolling back is putting the older binary back and starting it. The older binary has
no script for the newer revisions, so the database says what it needs: the table
``schema_revisions`` holds one row per applied revision, written by the release that
applied it, with the oldest release that runs on the schema at that revision and the
revision's one-line summary. Within a major version a revision only adds (tables,
nullable or defaulted columns, indexes; ``tests/integration/store/test_window.py``
inspects every one), so an older release of the same major runs on it: it reads and
writes the tables and columns it knows, and the newer columns keep their defaults.

A database is *ahead, inside the window* when its revision is one this tenement does
not know, its row names an oldest release no newer than this one, and this tenement's
own head is among the applied revisions (the database grew from this release's
schema). Anything else unknown is refused, as before the window existed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from tenement._version import __version__

if TYPE_CHECKING:
    import sqlalchemy as sa

WINDOW_TABLE = "schema_revisions"

#: every row, oldest revision first (revisions are zero-padded numbers)
ROWS_SQL = (
    f"SELECT revision, oldest_release, summary, applied_by FROM {WINDOW_TABLE} ORDER BY revision"
)

_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def release(version: str) -> tuple[int, int, int]:
    """The major, minor and patch numbers of a version: ``0.3.0.dev0`` -> ``(0, 3, 0)``.

    A pre-release or development build of X.Y.Z counts as X.Y.Z: the window is about
    which schema a build's code knows, and a build of 0.3.0 knows 0.3.0's.

    Raises:
        ValueError: ``version`` does not start with three dot-separated numbers.
    """
    found = _RELEASE.match(version)
    if found is None:
        raise ValueError(f"{version!r} is not a release version (MAJOR.MINOR.PATCH)")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


@attrs.frozen
class Revision:
    """One applied revision, as its row records it."""

    revision: str
    oldest_release: str
    summary: str
    applied_by: str = ""


@attrs.frozen
class Ahead:
    """A database at a revision newer than this tenement's head, and what its rows say.

    Attributes:
        revision: the database's revision.
        oldest_release: the oldest release that runs on it.
        applied_by: the tenement version that applied it.
        unknown: the applied revisions this tenement does not know, oldest first: the
            features whose data it ignores.
        in_window: this tenement runs on it.
        version: this tenement's version (what ``in_window`` was decided for).
    """

    revision: str
    oldest_release: str
    applied_by: str
    unknown: tuple[Revision, ...]
    in_window: bool
    version: str = __version__

    def ignored(self) -> str:
        """``0005 (…), 0006 (…)``: what the newer revisions add."""
        return ", ".join(f"{r.revision} ({r.summary})" for r in self.unknown)


def read_ahead(rows: Iterable[Any], revision: str, known: Sequence[str]) -> Ahead | None:
    """What the rows of ``schema_revisions`` say of a database at ``revision``, which is
    not in ``known`` (this tenement's revisions, oldest first); None without a row for it.
    """
    applied = [
        Revision(row["revision"], row["oldest_release"], row["summary"], row["applied_by"])
        for row in rows
    ]
    by_revision = {r.revision: r for r in applied}
    own = by_revision.get(revision)
    if own is None:
        return None
    try:
        fits = release(own.oldest_release) <= release(__version__)
    except ValueError:  # a row this release cannot read: not inside its window
        fits = False
    return Ahead(
        revision=revision,
        oldest_release=own.oldest_release,
        applied_by=own.applied_by,
        unknown=tuple(r for r in applied if r.revision not in known),
        in_window=fits and known[-1] in by_revision,
    )


def record_revisions(conn: sa.Connection, chain: Sequence[Revision]) -> None:
    """Make ``schema_revisions`` list exactly ``chain`` (the applied revisions, after an
    upgrade or a downgrade), in the migration's own transaction. Rows already there are
    kept as they are (who applied a revision, and when, does not change)."""
    import sqlalchemy as sa

    present = {row[0] for row in conn.execute(sa.text(f"SELECT revision FROM {WINDOW_TABLE}"))}
    wanted = {r.revision for r in chain}
    for gone in sorted(present - wanted):
        conn.execute(sa.text(f"DELETE FROM {WINDOW_TABLE} WHERE revision = :r"), {"r": gone})
    new = [
        {
            "revision": r.revision,
            "oldest_release": r.oldest_release,
            "summary": r.summary,
            "applied_by": __version__,
            "applied_at": time.time(),
        }
        for r in chain
        if r.revision not in present
    ]
    if new:
        conn.execute(
            sa.text(
                f"INSERT INTO {WINDOW_TABLE} "
                "(revision, oldest_release, summary, applied_by, applied_at) "
                "VALUES (:revision, :oldest_release, :summary, :applied_by, :applied_at)"
            ),
            new,
        )
