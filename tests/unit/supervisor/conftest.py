"""A real SQLite database at head, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tenement.store import Store, migrate_to_head, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/data/tenement.db") as opened:
        migrate_to_head(opened, backup_dir=None)
        yield opened
