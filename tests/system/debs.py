"""The two .debs the upgrade and rollback tests install: this tree, and a newer rebuild.

``old`` is ``make deb`` of this tree. ``new`` is that package repacked as the next
version (``0.3.0~dev0`` -> ``0.3.1~systest1``) with one extra Alembic migration in its
venv (``tests/newer_release.py``: a table with a marker row and a defaulted column on
``instances``, recorded as runnable by this tree's release), so that installing it
really migrates the database and makes a backup, and going back puts the older
package on a database ahead of it, inside its window. (A second ``make deb
VERSION=...`` would take minutes; the repack takes seconds and ships the very same
maintainer scripts.)

Set ``TENEMENT_TEST_DEB_OLD`` and ``TENEMENT_TEST_DEB_NEW`` to use prebuilt packages
instead (then ``new`` need not add a migration; the tests check what its ``ten db
history`` says); ``TENEMENT_TEST_INSTALL=wheels`` installs from a wheelhouse and skips
the package tests. Without a ``deb`` target in the Makefile, or when the build fails,
:attr:`Debs.why_not` says so and the package tests skip with that reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs

from tests.newer_release import NotATree, make_newer
from tests.system.deployment import REPO

#: the oldest release that runs on the newer package's extra revision: this tree's, so
#: that the older package runs on the database the newer one migrated (the window)
WINDOW_RELEASE = "0.3.0"


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
    try:
        versions = REPO / "packaging" / "versions.py"
        old_version = _run(["/usr/bin/python3", str(versions), "package"], REPO).strip()
        new_version = _bump(old_version)
        log(f"building the deb of this tree: tenement-py {old_version} (`make deb`)")
        _run(["make", "deb"], REPO)
        old = Path(shutil.copy(_the_deb(REPO, old_version), into))
        pep440 = _run(["/usr/bin/python3", str(versions), "pep440", new_version], REPO).strip()
        new = repack_newer(old, into, new_version, pep440)
        return Debs(
            old=old,
            new=new,
            old_version=old_version,
            new_version=new_version,
            new_has_migration=True,
        )
    except _BuildFailed as failed:
        return Debs(why_not=f"`make deb` failed: {failed}")


def repack_newer(old: Path, into: Path, version: str, pep440: str) -> Path:
    """``old`` as package ``version``, with migration EXTRA_REVISION added to its venv.

    The same files and maintainer scripts as ``old`` (it is the same tree), so installing
    it is exactly a package upgrade; only the version (``Version:``, ``_version.py``)
    and the one migration differ. A repack takes seconds; a second dh-virtualenv build
    takes minutes.
    """
    with tempfile.TemporaryDirectory(prefix="tenement-repack-", dir="/var/tmp") as work:
        tree = Path(work) / "deb"
        _run(["dpkg-deb", "-R", str(old), str(tree)], into)
        (package,) = tree.glob("opt/venvs/*/lib/python3*/site-packages/tenement")
        try:
            make_newer(package, package / "_migrations", pep440, oldest_release=WINDOW_RELEASE)
        except NotATree as exc:
            raise _BuildFailed(str(exc)) from exc
        control = tree / "DEBIAN" / "control"
        control.write_text(
            re.sub(r"^Version: .*$", f"Version: {version}", control.read_text(), flags=re.M)
        )
        sums = []
        for path in sorted(tree.rglob("*")):
            relative = path.relative_to(tree)
            if path.is_file() and not path.is_symlink() and relative.parts[0] != "DEBIAN":
                sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {relative}\n")
        (tree / "DEBIAN" / "md5sums").write_text("".join(sums))
        out = into / old.name.replace(old.name.split("_")[1], version)
        _run(["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "-b", str(tree), str(out)], into)
    return out


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
