"""Per-instance disk usage and soft quotas (reference §5.13).

The usage is the sum of file sizes under ``{data_dir}/{service}/{tenant}``. Quotas are soft:
crossing 80 % logs a warning, 100 % an error; nothing is killed or blocked.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

MIB = 1024 * 1024
WARN_RATIO = 0.8


@attrs.frozen
class StorageInfo:
    """Disk usage of one instance's data dir."""

    used_bytes: int
    quota_bytes: int | None
    usage_percent: float
    path: str


def dir_size(path: Path) -> int:
    """Bytes in regular files under ``path`` (symlinks not followed); 0 if it is missing.

    Blocking: call it from a thread.
    """
    total = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            entries = os.scandir(current)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
    return total


def quota_bytes(storage_quota_mb: int | None) -> int | None:
    return None if storage_quota_mb is None else storage_quota_mb * MIB


def usage_percent(used: int, quota: int | None) -> float:
    """``used / quota * 100``; a zero quota is 100 % once anything is used (reference)."""
    if quota is None:
        return 0.0
    if quota == 0:
        return 100.0 if used > 0 else 0.0
    return used / quota * 100.0


def quota_level(used: int, quota: int | None) -> str | None:
    """``"exceeded"`` at 100 %, ``"high"`` from 80 %, else None (also without a quota)."""
    if quota is None:
        return None
    ratio = usage_percent(used, quota) / 100.0
    if ratio >= 1.0:
        return "exceeded"
    if ratio >= WARN_RATIO:
        return "high"
    return None


def storage_info(path: Path, used: int, quota: int | None) -> StorageInfo:
    return StorageInfo(used, quota, usage_percent(used, quota), str(path))
