"""Fixtures for the built-in TLS tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tenants import kill_recorded_tenants


@pytest.fixture(autouse=True)
def _tenants_end_with_the_test(tmp_path: Path) -> Iterator[None]:
    """The tests end their servers with SIGUSR2 or a kill, which leave the tenants
    running for a successor: none comes, so they end here."""
    yield
    kill_recorded_tenants(tmp_path / "data")
