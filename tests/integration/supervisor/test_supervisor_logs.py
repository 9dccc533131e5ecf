"""Tenant output reaches the logs table and the live feed."""

from __future__ import annotations

import time
from typing import Any

import trio

from tests.integration.supervisor.supervisor_support import http_get, wait_for


async def test_output_is_searchable_and_live(supervisor: Any, store: Any) -> None:
    feed = supervisor.subscribe_logs()
    view = await supervisor.spawn("app", "talker")
    await http_get(view.port, "/say?hello-from-talker")
    with trio.fail_after(10):
        while (entry := await feed.receive()).message != "hello-from-talker":
            pass
    assert (entry.process, entry.instance_id, entry.level) == ("app", "talker", "stdout")
    found = await wait_for(lambda: store.query_logs(search="hello-from-talker"))
    assert len(found) == 1
    stderr = await store.run(
        lambda: store.query_logs(process="app", instance_id="talker", level="stderr")
    )
    assert [e.message for e in stderr] == ["a line on stderr"]


async def test_retention_prunes_old_lines(supervisor: Any, store: Any) -> None:
    from tenement.store import LogEntry
    from tenement.supervisor.lifecycle import LOG_RETENTION_DAYS, prune_logs

    old_ms = int((time.time() - (LOG_RETENTION_DAYS + 1) * 86400) * 1000)
    store.insert_logs([LogEntry(old_ms, "stdout", "app", "ancient", "from long ago")])
    store.insert_logs([LogEntry(int(time.time() * 1000), "stdout", "app", "fresh", "today")])
    assert await prune_logs(supervisor) == 1
    assert [e.message for e in store.query_logs(process="app")] == ["today"]
