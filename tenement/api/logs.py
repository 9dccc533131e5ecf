"""``GET /api/logs``: captured output from the store, filtered; a tenant sees its own."""

from __future__ import annotations

import functools
from typing import Any

import attrs
import trio

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.api.errors import ApiError
from tenement.types import Send

LEVELS = ("stdout", "stderr")


@attrs.frozen(kw_only=True)
class LogFilter:
    """The query's filters; a tenant token's ``instance_id`` is forced to its tenant."""

    process: str | None = None
    instance_id: str | None = None
    level: str | None = None

    @classmethod
    def from_query(cls, query: dict[str, str], tenant: str | None) -> LogFilter:
        level = query.get("level")
        return cls(
            process=query.get("process") or None,
            instance_id=tenant if tenant is not None else (query.get("id") or None),
            # The reference ignores an unknown level rather than refusing it.
            level=level if level in LEVELS else None,
        )

    def matches(self, entry: Any) -> bool:
        return (
            (self.process is None or entry.process == self.process)
            and (self.instance_id is None or entry.instance_id == self.instance_id)
            and (self.level is None or entry.level == self.level)
        )


def entry_json(entry: Any) -> dict[str, Any]:
    return {
        "timestamp": entry.timestamp_ms,
        "level": entry.level,
        "process": entry.process,
        "instance_id": entry.instance_id,
        "message": entry.message,
    }


#: the largest ``limit`` / ``backlog`` accepted: the reference's (64-bit ``usize``)
MAX_COUNT = http.MAX_INT
#: the most entries one answer (or a stream's backlog) holds: the reference keeps 10,000
#: lines in all, so it never answers more; ``limit`` (or none) beyond it gets the last
#: 10,000
MAX_ENTRIES = 10_000
#: ... and the most characters of message they hold (the newest entries that fit): a
#: tenant decides how long its lines are (up to 64 KiB each), not how large an answer gets
MAX_CHARS = 16 * 1024 * 1024


def count_param(query: dict[str, str], name: str) -> int | None:
    """A query parameter from 0 to :data:`MAX_COUNT`, or None when absent.

    Only ASCII digits count: ``str.isdigit`` also accepts digits such as "²" that
    ``int()`` refuses.

    Raises:
        ApiError: 400 naming the parameter, its value and the range (as the reference,
            with a JSON body).
    """
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    # Leading zeros are fine (as the reference); the length check keeps int() off huge
    # strings (over 4,300 digits it raises).
    digits = raw.lstrip("0") or "0"
    if raw.isascii() and raw.isdigit() and len(digits) <= len(str(MAX_COUNT)):
        value = int(digits)
        if value <= MAX_COUNT:
            return value
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    raise ApiError(
        400, f"Query parameter `{name}` must be an integer from 0 to {MAX_COUNT}, got {shown!r}"
    )


async def query_store(
    store: Any, filters: LogFilter, *, search: str | None, limit: int | None
) -> list[Any]:
    """The last ``limit`` matching entries (at most :data:`MAX_ENTRIES`, holding at most
    :data:`MAX_CHARS`), oldest first, read in a worker thread."""
    call = functools.partial(
        store.query_logs,
        process=filters.process,
        instance_id=filters.instance_id,
        level=filters.level,
        search=search or None,
        limit=MAX_ENTRIES if limit is None else min(limit, MAX_ENTRIES),
        max_chars=MAX_CHARS,
    )
    return await trio.to_thread.run_sync(call)


async def list_logs(api: ApiContext, request: Request, send: Send) -> http.Response:
    query = request.query()
    filters = LogFilter.from_query(query, request.tenant)
    limit = count_param(query, "limit")
    entries = await query_store(api.store, filters, search=query.get("search"), limit=limit)
    # megabytes of JSON take a while to write: not in the loop that serves everyone
    return await trio.to_thread.run_sync(
        lambda: http.json_response([entry_json(entry) for entry in entries])
    )
