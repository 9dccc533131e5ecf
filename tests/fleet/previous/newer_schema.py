"""A pytest plugin for the previous release's tests: every PostgreSQL database they make
is first migrated to this tree's head by this tree's code.

Loaded by tests/fleet/test_previous_release_store.py into a pytest run of the previous
release's own tests, in that release's tree: ``TENEMENT_NEWER_TREE`` names this tree,
``TENEMENT_NEWER_LOG`` a file that gets one line per database migrated. Stand-alone (no
import from either tree's ``tests`` package): both trees have one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MIGRATE = """
import sys
from tenement.store import open_store
from tenement.store.migrate import migrate_to_head
with open_store(sys.argv[1]) as store:
    report = migrate_to_head(store, backup_dir=None)
print(report.to_revision)
"""


def pytest_configure(config: object) -> None:
    import tenement
    from tests.postgresql import Cluster  # the previous release's

    here = Path.cwd().resolve()
    if not Path(tenement.__file__).resolve().is_relative_to(here):
        raise RuntimeError(f"tenement comes from {tenement.__file__}, not from {here}")
    newer = os.environ["TENEMENT_NEWER_TREE"]
    log = Path(os.environ["TENEMENT_NEWER_LOG"])
    made = Cluster.new_database

    def new_database(self: Cluster, *args: object, **kwargs: object) -> str:
        name = made(self, *args, **kwargs)
        migrated = subprocess.run(
            [sys.executable, "-c", MIGRATE, self.socket_url(name)],
            env={**os.environ, "PYTHONPATH": newer},
            cwd=newer,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"the newer tree's migration failed:\n{migrated.stderr}")
        with log.open("a") as out:
            out.write(f"{name} {migrated.stdout.strip()}\n")
        return name

    Cluster.new_database = new_database  # type: ignore[method-assign]
