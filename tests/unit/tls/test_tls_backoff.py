"""tenement.tls.backoff: how long a failed order waits, and backoff.json shared by the
processes of a server (two BackoffFile on one directory stand for two processes)."""

from __future__ import annotations

import time
from pathlib import Path

from tenement.tls.backoff import (
    BACKOFF_MAX_SECONDS,
    BACKOFF_SECONDS,
    RATE_LIMITED_SECONDS,
    BackoffFile,
    next_backoff,
)
from tenement.tls.issuer import IssueError


def test_the_wait_doubles_up_to_the_most_and_a_rate_limit_waits_longer() -> None:
    failed = IssueError("a.example.com", "no")
    waits = []
    backoff = None
    for _ in range(8):
        backoff = next_backoff(backoff, failed)
        waits.append(round(backoff.until - time.time()))
    assert waits[:3] == [BACKOFF_SECONDS, 2 * BACKOFF_SECONDS, 4 * BACKOFF_SECONDS]
    assert waits[-1] == BACKOFF_MAX_SECONDS
    assert backoff is not None and backoff.failures == 8
    limited = next_backoff(None, IssueError("a.example.com", "slow", rate_limited=True))
    assert round(limited.until - time.time()) == RATE_LIMITED_SECONDS
    later = time.time() + 3 * RATE_LIMITED_SECONDS
    named = IssueError("a.example.com", "slow", rate_limited=True, retry_at=later)
    assert next_backoff(None, named).until >= later


def test_processes_keep_each_others_entries(tmp_path: Path) -> None:
    one, other = BackoffFile(tmp_path), BackoffFile(tmp_path)
    failed = next_backoff(None, IssueError("a.example.com", "validation failed"))
    one.write("a.example.com", failed)
    other.write("b.example.com", next_backoff(None, IssueError("b.example.com", "no")))
    assert one.read()["a.example.com"] == failed
    assert sorted(one.read()) == ["a.example.com", "b.example.com"]
    other.write("a.example.com", None)
    assert sorted(one.read()) == ["b.example.com"]
    assert (tmp_path / "backoff.json").stat().st_mode & 0o777 == 0o600


def test_an_unreadable_file_is_no_back_off(tmp_path: Path) -> None:
    (tmp_path / "backoff.json").write_text("{not json")
    assert BackoffFile(tmp_path).read() == {}
