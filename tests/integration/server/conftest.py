"""Fixtures for the `ten serve` tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tenants import kill_recorded_tenants


@pytest.fixture
def directory(tmp_path: Path):
    """The server's working directory; tenants a failed test left running are killed."""
    yield tmp_path
    kill_recorded_tenants(tmp_path / "data")
