"""The copies of moved tenants' data that a node keeps, and their removal in time.

A move leaves the old node's copy of the tenant's data beside where it was, as
``moved-TENANT-TIME`` (and a destination that finds a directory in the way keeps it
so): the way back if the move turns out wrong. Each copy is removed once it is older
than ``[fleet] keep_moved`` (seconds; 7 days unless set), or than the move's own
``--keep-source``, which its name then carries: ``moved-TENANT-TIME-keepSECONDSs``.
A node's leader looks when it starts and every :data:`SWEEP_SECONDS`; the time is the
one in the name (the moment of the move, UTC), so a restart does not extend it.
"""

from __future__ import annotations

import calendar
import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import trio

log = logging.getLogger(__name__)

#: how often the leader looks for copies whose time is up
SWEEP_SECONDS = 600.0
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"moved-(?P<tenant>.+)-(?P<stamp>[0-9]{8}T[0-9]{6}Z)(?:-keep(?P<keep>[0-9]+)s)?")


def aside_name(tenant: str, keep_s: int | None = None, *, now: float | None = None) -> str:
    """The name a copy of ``tenant``'s data is kept under (the move's own keep time,
    ``keep_s`` seconds, in it when given)."""
    stamp = time.strftime(_STAMP, time.gmtime(time.time() if now is None else now))
    keep = "" if keep_s is None else f"-keep{keep_s}s"
    return f"moved-{tenant}-{stamp}{keep}"


def expires_at(name: str, keep_moved: float) -> float | None:
    """When the copy named ``name`` is to be removed (epoch seconds); None for a name
    that is not such a copy's."""
    found = _NAME.fullmatch(name)
    if found is None:
        return None
    moved_at = calendar.timegm(time.strptime(found["stamp"], _STAMP))
    keep = keep_moved if found["keep"] is None else int(found["keep"])
    return moved_at + keep


def remove_expired(data_dir: Path, keep_moved: float, now: float) -> list[Path]:
    """Remove the kept copies under ``data_dir`` (``SERVICE/moved-…``) whose time is up
    at ``now``; returns them. A symlink, or a file, under such a name is not a copy and
    is left alone."""
    removed: list[Path] = []
    for path in sorted(data_dir.glob("*/moved-*")):
        until = expires_at(path.name, keep_moved)
        if until is None or until > now:
            continue
        try:
            if path.is_symlink() or not path.is_dir():
                continue
            shutil.rmtree(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


async def sweep(data_dir: Callable[[], Path], keep_moved: Callable[[], float]) -> None:
    """Remove the copies whose time is up, now and every :data:`SWEEP_SECONDS`, until
    cancelled (the supervisor's life). A failure is logged; the next look tries again."""
    while True:
        keep = keep_moved()
        try:
            removed = await trio.to_thread.run_sync(remove_expired, data_dir(), keep, time.time())
        except OSError as exc:
            log.error("could not remove the copies of moved tenants' data: %s", exc)
            removed = []
        for path in removed:
            log.info(
                "removed %s: the copy of a moved tenant's data, kept for its time "
                "([fleet] keep_moved = %g s, or the move's --keep-source)",
                path,
                keep,
            )
        await trio.sleep(SWEEP_SECONDS)
