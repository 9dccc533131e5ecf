"""A real API harness per test (see harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.api.harness import Harness, open_api


@pytest.fixture
async def api_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_api(tmp_path) as harness:
        yield harness
