"""Real SQLite, real tenant processes (tenant_app.py), a supervisor per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tenement.config import Config
from tenement.store import Store, migrate_to_head, open_store
from tests.integration.supervisor.supervisor_support import make_config


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/data/tenement.db") as opened:
        migrate_to_head(opened, backup_dir=None)
        yield opened


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def environ() -> dict[str, str]:
    return dict(os.environ)


@pytest.fixture
async def supervisor(config: Config, store: Store, environ: dict[str, str]) -> AsyncIterator[Any]:
    from tenement.supervisor import open_supervisor

    async with open_supervisor(config, store, environ=environ, log_poll_seconds=0.02) as sup:
        yield sup
