"""Fixtures every test shares."""

from __future__ import annotations

import os

import pytest

#: variables that would leak a test runner's systemd or tenement context into a test
_CONTEXT_PREFIXES = ("LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_", "TENEMENT_", "JOURNAL_STREAM")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without systemd's or tenement's variables from the outside."""
    for name in list(os.environ):
        if name.startswith(_CONTEXT_PREFIXES):
            monkeypatch.delenv(name)
