"""Timestamps as the reference stores them: RFC 3339 text in UTC.

The reference writes ``chrono::Utc::now().to_rfc3339()`` (nanoseconds, ``+00:00``);
we write milliseconds with the same ``+00:00`` suffix, so text order is time order
for both and ``timestamp < cutoff`` works in SQL.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"\.(\d+)")


def rfc3339_from_ms(timestamp_ms: int) -> str:
    """Epoch milliseconds -> ``2026-11-26T17:41:21.569+00:00``."""
    seconds, millis = divmod(timestamp_ms, 1000)
    return f"{_whole_second(seconds)}.{millis:03d}+00:00"


@functools.lru_cache(maxsize=64)
def _whole_second(seconds: int) -> str:
    # log lines come in bursts from the same second: format each second once
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 text (any number of fraction digits, ``Z`` or an offset) -> aware datetime."""
    text = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # datetime takes at most 6 fraction digits; the reference writes 9.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def ms_from_rfc3339(text: str) -> int:
    """RFC 3339 text -> epoch milliseconds (truncated)."""
    parsed = parse_rfc3339(text)
    return int(parsed.timestamp()) * 1000 + parsed.microsecond // 1000


def utc_now_rfc3339() -> str:
    """Now, in the reference's format with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
