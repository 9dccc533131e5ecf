"""How client commands print what the server answered: pure functions, no I/O.

Every format here matches `ten` 0.2.2 byte for byte (the reference was run to
settle each one), so scripts that parse its output keep working.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from tenement.shown import shown

#: the ps table: (header, width); the last column is padded too, as the reference does
PS_COLUMNS = (("INSTANCE", 20), ("LISTEN", 20), ("UPTIME", 10), ("IDLE", 10), ("HEALTH", 8))
PS_LAST_COLUMN = ("WEIGHT", 6)
#: the NODE column ``ten ps`` puts first in a fleet
NODE_WIDTH = 12
#: ``ten nodes``: (header, width); the last column is not padded
NODES_COLUMNS = (
    ("NAME", 12),
    ("ADDRESS", 22),
    ("VERSION", 12),
    ("STATE", 6),
    ("LAST-HEARTBEAT", 15),
    ("INSTANCES", 10),
)
NODES_LAST_COLUMN = "MEMORY"


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


def _row(cells: Sequence[str], last: str, node: str | bool = False) -> str:
    head = "".join(f"{cell:<{width}} " for cell, (_, width) in zip(cells, PS_COLUMNS, strict=True))
    if node is not False:
        head = f"{node:<{NODE_WIDTH}} " + head
    return head + f"{last:<{PS_LAST_COLUMN[1]}}"


def _text(value: Any) -> str:
    """A cell: ``-`` for None; control characters escaped (``\\x1b``), since a node row
    comes from whichever host wrote it to the shared database, and an escape sequence in
    it would drive the terminal of whoever runs ``ten nodes`` or ``ten ps``."""
    return "-" if value is None else shown(str(value))


def ps_table(instances: Sequence[Mapping[str, Any]], server: str) -> str:
    """The text of ``ten ps`` for the server's ``GET /api/instances`` answer (no final newline).

    With no instances it is ``No running instances`` and ``Server: <url>``; otherwise a
    header, one row per instance, a blank line and ``N instance(s) running on <url>``.
    """
    if not instances:
        return f"No running instances\nServer: {server}"
    # a fleet node's server names the node of each instance; a single host's does not,
    # and its table stays the reference's, byte for byte
    fleet = any("node" in item for item in instances)
    lines = [_row([name for name, _ in PS_COLUMNS], PS_LAST_COLUMN[0], fleet and "NODE")]
    for item in instances:
        # a tenant being moved: where to, and the move's step in place of its health
        move = item.get("move") if isinstance(item.get("move"), Mapping) else None
        node = _text(item.get("node"))
        cells = [
            _text(item.get("id")),
            _text(item.get("socket")),
            format_duration(item.get("uptime_secs")),
            format_duration(item.get("idle_secs")),
            _text(item.get("health") if move is None else move.get("step")),
        ]
        if move is not None:
            node = f"{node}->{_text(move.get('to'))}"
        lines.append(_row(cells, _text(item.get("weight")), fleet and node))
    lines.append("")
    lines.append(f"{len(instances)} instance(s) running on {server}")
    return "\n".join(lines)


def format_bytes(count: int | None) -> str:
    """``8_589_934_592 -> "8.0G"`` (binary units, one decimal), ``None`` or 0 -> ``-``."""
    if not count:
        return "-"
    if not _is_number(count):
        return _text(count)
    value = float(count)
    for unit in ("B", "K", "M", "G"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"


def nodes_table(answer: Mapping[str, Any], server: str) -> str:
    """The text of ``ten nodes`` for the server's ``GET /api/nodes`` answer (no final
    newline): one row per node; MEMORY is available of total."""
    if not answer.get("fleet"):
        return (
            f"The server at {server} is not in a fleet: its tenement.toml has no [fleet] "
            "section (see docs/fleet.md)"
        )
    nodes = answer.get("nodes") or []
    lines = [_nodes_row([name for name, _ in NODES_COLUMNS], NODES_LAST_COLUMN)]
    for node in nodes:
        silent = node.get("silent_secs")
        cells = [
            _text(node.get("name")),
            _text(node.get("advertise")),
            _text(node.get("version")),
            _text(node.get("state")),
            f"{silent:.1f}s ago" if _is_number(silent) else _text(silent),
            _text(node.get("instances")),
        ]
        memory = (
            f"{format_bytes(node.get('memory_available_bytes'))}/"
            f"{format_bytes(node.get('memory_total_bytes'))}"
        )
        lines.append(_nodes_row(cells, memory))
    up = sum(1 for node in nodes if node.get("state") == "up")
    draining = [node for node in nodes if node.get("state") == "draining"]
    lines.append("")
    counts = f"{len(nodes)} node(s), {up} up" + (f", {len(draining)} draining" if draining else "")
    lines.append(f"{counts}, seen from {_text(answer.get('node'))} ({server})")
    for node in draining:
        left = node.get("instances_held")
        parallel = node.get("drain_parallel")
        at_once = f", {_text(parallel)} at a time" if parallel is not None else ""
        lines.append(
            f"{_text(node.get('name'))} is draining: {_text(left)} instance(s) left to "
            f"move{at_once}"
            if left
            else f"{_text(node.get('name'))} is drained: it holds no instance "
            f"(ten undrain {_text(node.get('name'))} puts it back)"
        )
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _nodes_row(cells: Sequence[str], last: str) -> str:
    widths = NODES_COLUMNS
    return (
        "".join(f"{cell:<{width}} " for cell, (_, width) in zip(cells, widths, strict=True)) + last
    )


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
