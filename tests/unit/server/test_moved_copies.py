"""The copies of moved tenants' data, named with their time, removed once it is up
(tenement/server/moved_copies.py); a real directory tree."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenement.server.moved_copies import aside_name, expires_at, remove_expired

WEEK = 7 * 24 * 3600
MOVED_AT = calendar.timegm((2026, 12, 7, 12, 0, 0))


@given(
    tenant=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,30}", fullmatch=True),
    keep=st.none() | st.integers(0, 10**9),
)
def test_a_name_tells_when_its_copy_goes(tenant: str, keep: int | None) -> None:
    # tenants whose own names end in a time, or in -keepNs, included
    name = aside_name(tenant, keep, now=MOVED_AT)
    assert name.startswith(f"moved-{tenant}-20261207T120000Z")
    assert expires_at(name, WEEK) == MOVED_AT + (WEEK if keep is None else keep)


@pytest.mark.parametrize(
    "name",
    ["moved-", "moved-alice", "moved-alice-2026-12-07", "moved-alice-20261207T120000Z-keep1h",
     "alice-20261207T120000Z", "moved-alice-20261207T120000Zx"],
)  # fmt: skip
def test_a_name_that_is_not_a_copy_s_has_no_time(name: str) -> None:
    assert expires_at(name, WEEK) is None


def test_only_the_copies_whose_time_is_up_are_removed(tmp_path: Path) -> None:
    echo = tmp_path / "echo"
    echo.mkdir()
    names = {
        aside_name("alice", now=MOVED_AT): MOVED_AT + WEEK,
        aside_name("bob", 60, now=MOVED_AT): MOVED_AT + 60,
        aside_name("carol", 0, now=MOVED_AT): MOVED_AT,
        "moved-dave": None,
    }
    for name in names:
        (echo / name / "db").mkdir(parents=True)
        (echo / name / "db" / "file").write_text(name)
    outside = tmp_path / "outside"
    outside.mkdir()
    (echo / aside_name("eve", 0, now=MOVED_AT)).symlink_to(outside)
    (echo / aside_name("frank", 0, now=MOVED_AT)).write_text("a file")
    (echo / "alice").mkdir()  # a tenant's own directory

    assert remove_expired(tmp_path, WEEK, MOVED_AT - 1) == []
    assert remove_expired(tmp_path, WEEK, MOVED_AT + 60) == sorted(
        [echo / aside_name("bob", 60, now=MOVED_AT), echo / aside_name("carol", 0, now=MOVED_AT)]
    )
    assert remove_expired(tmp_path, WEEK, MOVED_AT + WEEK) == [
        echo / aside_name("alice", now=MOVED_AT)
    ]
    left = sorted(path.name for path in echo.iterdir())
    assert left == sorted(
        [
            "alice",
            "moved-dave",
            aside_name("eve", 0, now=MOVED_AT),
            aside_name("frank", 0, now=MOVED_AT),
        ]
    )
    assert outside.is_dir()
