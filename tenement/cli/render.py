"""How client commands print what the server answered: pure functions, no I/O.

Every format here matches `ten` 0.2.2 byte for byte (the reference was run to
settle each one), so scripts that parse its output keep working.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

#: the ps table: (header, width); the last column is padded too, as the reference does
PS_COLUMNS = (("INSTANCE", 20), ("LISTEN", 20), ("UPTIME", 10), ("IDLE", 10), ("HEALTH", 8))
PS_LAST_COLUMN = ("WEIGHT", 6)


def format_duration(seconds: float | int | None) -> str:
    """``59 -> "59s"``, ``60 -> "1m"``, ``3600 -> "1h"``, ``86400 -> "1d"`` (whole units, floored).

    ``None`` or a negative number prints as ``-``.
    """
    if seconds is None or seconds < 0:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86400:
        return f"{whole // 3600}h"
    return f"{whole // 86400}d"


def _row(cells: Sequence[str], last: str) -> str:
    head = "".join(f"{cell:<{width}} " for cell, (_, width) in zip(cells, PS_COLUMNS, strict=True))
    return head + f"{last:<{PS_LAST_COLUMN[1]}}"


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def ps_table(instances: Sequence[Mapping[str, Any]], server: str) -> str:
    """The text of ``ten ps`` for the server's ``GET /api/instances`` answer (no final newline).

    With no instances it is ``No running instances`` and ``Server: <url>``; otherwise a
    header, one row per instance, a blank line and ``N instance(s) running on <url>``.
    """
    if not instances:
        return f"No running instances\nServer: {server}"
    lines = [_row([name for name, _ in PS_COLUMNS], PS_LAST_COLUMN[0])]
    for item in instances:
        cells = [
            _text(item.get("id")),
            _text(item.get("socket")),
            format_duration(item.get("uptime_secs")),
            format_duration(item.get("idle_secs")),
            _text(item.get("health")),
        ]
        lines.append(_row(cells, _text(item.get("weight"))))
    lines.append("")
    lines.append(f"{len(instances)} instance(s) running on {server}")
    return "\n".join(lines)


def level_tag(level: str | None) -> str:
    """``stderr -> "[ERR]"``, anything else -> ``"[OUT]"``."""
    return "[ERR]" if level == "stderr" else "[OUT]"


def _source(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('process', '')}:{entry.get('instance_id', '')}"


def log_line(entry: Mapping[str, Any]) -> str:
    """One entry of ``ten logs``: ``HH:MM:SS [OUT] api:prod message`` (UTC, from milliseconds)."""
    stamp = dt.datetime.fromtimestamp(int(entry.get("timestamp", 0)) / 1000, tz=dt.UTC)
    return f"{stamp:%H:%M:%S} {follow_line(entry)}"


def follow_line(entry: Mapping[str, Any]) -> str:
    """One entry of ``ten logs -f``: ``[OUT] api:prod message`` (the reference prints no time)."""
    return f"{level_tag(entry.get('level'))} {_source(entry)} {entry.get('message', '')}"
