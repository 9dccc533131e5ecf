"""The previous release's tests of the store, run on this tree's schema (issue 19).

During a rolling upgrade the nodes not upgraded yet run on the schema the first
upgraded node migrated to, inside their compatibility window
(``tenement/store/window.py``). The rolling-upgrade test runs this tree's code on a
newer schema; this one runs an older tree's own tests of its store on this tree's
schema: its code and its expectations, on our tables.

The previous release is the tree just before the newest migration was added (there is
no tagged release yet): the newest code that knows one revision less. Its tree comes
from git (``git archive``); its tests of the PostgreSQL store and of the fleet's store
and directory run in their own pytest, where ``tests/fleet/previous/newer_schema.py``
migrates every database they make with this tree's code first. Its tests that create
and migrate a new database themselves are left out: the database is not new.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tenement.store.schema import HEAD_REVISION
from tests.postgresql import Cluster

ROOT = Path(__file__).parents[2]
PLUGIN_DIR = Path(__file__).parent / "previous"
TESTS = [
    "tests/integration/store/test_postgresql.py",
    "tests/fleet/test_fleet_store.py",
    "tests/fleet/test_fleet_directory.py",
]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def previous_release() -> str:
    """The commit before the one that added the newest migration (HEAD while that
    migration is not committed yet)."""
    newest = max((ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    added = git("log", "--diff-filter=A", "--format=%H", "--", str(newest.relative_to(ROOT)))
    return f"{added.split()[-1]}^" if added else "HEAD"


def test_the_previous_releases_store_tests_pass_on_this_schema(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    del pg_cluster  # the same skip where PostgreSQL cannot be had; the run makes its own
    if not (ROOT / ".git").exists() or git("rev-parse", "--is-shallow-repository") == "true":
        pytest.skip("not a whole git clone: the previous release's tree comes from its history")
    commit = previous_release()
    tree = tmp_path / "previous"
    tree.mkdir()
    archive = tmp_path / "previous.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), commit,
         "tenement", "tests", "migrations", "pyproject.toml"],
        check=True,
    )  # fmt: skip
    with tarfile.open(archive) as packed:
        packed.extractall(tree, filter="data")
    log = tmp_path / "migrated.log"
    env = {
        **os.environ,
        "PYTHONPATH": f"{tree}{os.pathsep}{PLUGIN_DIR}",
        "TENEMENT_NEWER_TREE": str(ROOT),
        "TENEMENT_NEWER_LOG": str(log),
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "newer_schema", "-p", "no:cacheprovider",
         "-q", "-k", "not migrat", *TESTS],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, f"{commit}: {summary}\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 15, summary
    assert "skipped" not in summary, summary
    # every database they used was this tree's schema, made by this tree's code
    migrated = log.read_text().split()
    assert migrated and set(migrated[1::2]) == {HEAD_REVISION}, migrated
