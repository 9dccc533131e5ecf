"""The two .debs the upgrade and rollback tests install: this tree, and a newer rebuild.

``old`` is ``make deb`` of a copy of this tree. ``new`` is ``make deb VERSION=<next>``
of a copy with one extra Alembic migration (``0003_system_test``, a table with a marker
row; its downgrade drops it), so that installing it really migrates the database and
makes a backup, and going back really needs ``ten db downgrade``.

Set ``TENEMENT_TEST_DEB_OLD`` and ``TENEMENT_TEST_DEB_NEW`` to use prebuilt packages
instead (then ``new`` need not add a migration; the tests check what its ``ten db
history`` says); ``TENEMENT_TEST_INSTALL=wheels`` installs from a wheelhouse and skips
the package tests. Without a ``deb`` target in the Makefile, or when the build fails,
:attr:`Debs.why_not` says so and the package tests skip with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs

from tests.system.deployment import REPO

#: the migration the newer package adds (revision id and the table it creates)
EXTRA_REVISION = "0003"
EXTRA_TABLE = "system_test_marker"

_MIGRATION = '''\
"""System test only: one table with a marker row, to upgrade into and downgrade out of.

Revision ID: {revision}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))
    op.bulk_insert(table, [{{"id": 1}}])


def downgrade() -> None:
    op.drop_table("{table}")
'''

_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info", "build"
)


@attrs.frozen
class Debs:
    old: Path | None = None
    new: Path | None = None
    old_version: str = ""
    new_version: str = ""
    #: the newer package adds revision EXTRA_REVISION (False for prebuilt packages)
    new_has_migration: bool = False
    #: why there are no packages (the skip reason), when old or new is None
    why_not: str = ""


def find_or_build_debs(into: Path, *, log=print) -> Debs:  # type: ignore[no-untyped-def]
    """The packages (copied into ``into``), or a :class:`Debs` saying why there are none."""
    given_old = os.environ.get("TENEMENT_TEST_DEB_OLD")
    given_new = os.environ.get("TENEMENT_TEST_DEB_NEW")
    if given_old and given_new:
        return Debs(old=Path(given_old), new=Path(given_new), old_version="", new_version="")
    if os.environ.get("TENEMENT_TEST_INSTALL") == "wheels":
        return Debs(why_not="TENEMENT_TEST_INSTALL=wheels (no .deb wanted)")
    if os.geteuid() != 0:
        return Debs(why_not="not root")
    makefile = (REPO / "Makefile").read_text()
    if not re.search(r"^deb\s*:", makefile, re.M):
        return Debs(why_not="the Makefile has no `deb` target yet (packaging not merged)")
    for tool in ("dpkg-buildpackage", "dh_virtualenv"):
        if shutil.which(tool) is None:
            return Debs(why_not=f"{tool} is not installed (apt-get install dh-virtualenv)")
    work = Path(tempfile.mkdtemp(prefix="tenement-debs-", dir="/var/tmp"))
    try:
        versions = REPO / "packaging" / "versions.py"
        old_version = _run(["/usr/bin/python3", str(versions), "package"], REPO).strip()
        new_version = _bump(old_version)
        new_tree = _copy_tree(work / "tenement")
        heads = sorted((new_tree / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
        down = heads[-1].name[:4]
        (new_tree / "migrations" / "versions" / f"{EXTRA_REVISION}_system_test.py").write_text(
            _MIGRATION.format(revision=EXTRA_REVISION, down=down, table=EXTRA_TABLE)
        )
        log(f"building the debs: tenement-py {old_version}, and {new_version} (+ migration 0003)")
        _run(["make", "deb"], REPO)
        old = _the_deb(REPO, old_version)
        _run(["make", "deb", f"VERSION={new_version}"], new_tree)
        new = _the_deb(new_tree, new_version)
        return Debs(
            old=Path(shutil.copy(old, into)),
            new=Path(shutil.copy(new, into)),
            old_version=old_version,
            new_version=new_version,
            new_has_migration=True,
        )
    except _BuildFailed as failed:
        return Debs(why_not=f"`make deb` failed: {failed}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _copy_tree(dest: Path) -> Path:
    """The files ``make deb`` would package (tracked + untracked, not ignored), in a new
    git work tree at ``dest`` (build-deb.sh lists files with git)."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], REPO)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    _run(["git", "init", "-q"], dest)
    return dest


class _BuildFailed(Exception):
    pass


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-10:])
        raise _BuildFailed(f"{' '.join(argv)} (exit {done.returncode}):\n{tail}")
    return done.stdout


def _bump(version: str) -> str:
    """``0.3.0~dev0`` -> ``0.3.1~systest1``: a newer release, from the same tree."""
    release = re.match(r"^[0-9.]+", version)
    if release is None:
        raise _BuildFailed(f"cannot bump the package version {version!r}")
    parts = release.group(0).rstrip(".").split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    return ".".join(parts) + "~systest1"


def _the_deb(tree: Path, version: str) -> Path:
    found = sorted((tree / "dist").glob(f"tenement-py_{version}_*.deb"))
    if not found:
        listing = (
            sorted(p.name for p in (tree / "dist").glob("*")) if (tree / "dist").exists() else []
        )
        raise _BuildFailed(f"no dist/tenement-py_{version}_*.deb after the build (dist: {listing})")
    return found[0]
