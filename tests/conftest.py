"""Fixtures every test shares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.refbin import OVERRIDE, ReferenceUnavailable, reference_binary
from tests.postgresql import Cluster, Unavailable, running_cluster

#: variables that would leak a test runner's systemd or tenement context into a test
_CONTEXT_PREFIXES = ("LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_", "TENEMENT_", "JOURNAL_STREAM")
#: test-runner settings under those prefixes, kept: they say where things are, not a context
_KEPT = {OVERRIDE, "TENEMENT_SCREENSHOTS"}  # (the dashboard tests' screenshots, for CI)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without systemd's or tenement's variables from the outside."""
    for name in list(os.environ):
        if name.startswith(_CONTEXT_PREFIXES) and name not in _KEPT:
            monkeypatch.delenv(name)


@pytest.fixture
def reference_ten() -> Path:
    """The reference ``ten`` (tenement 0.2.2), found as ``bench.run`` finds it.

    ``./dev test`` fetches it before the tests; a test never downloads (its traffic stays on
    loopback), so without the cache it is skipped, saying how to get it.
    """
    try:
        return reference_binary(download=False)
    except ReferenceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster shared by the session (tests/postgresql.py); each test
    makes its own databases and roles in it. Skips where PostgreSQL or psycopg is missing."""
    try:
        with running_cluster() as cluster:
            yield cluster
    except Unavailable as exc:
        pytest.skip(str(exc))
