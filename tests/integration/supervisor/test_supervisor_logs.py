"""Tenant output reaches the logs table and the live feed."""

from __future__ import annotations

from typing import Any

import trio

from tests.integration.supervisor.supervisor_support import http_get, wait_for


async def test_output_is_searchable_and_live(supervisor: Any) -> None:
    feed = supervisor.subscribe_logs()
    view = await supervisor.spawn("app", "talker")
    await http_get(view.port, "/say?hello-from-talker")
    with trio.fail_after(10):
        while (entry := await feed.receive()).message != "hello-from-talker":
            pass
    assert (entry.process, entry.instance_id, entry.level) == ("app", "talker", "stdout")
    found = await wait_for(lambda: supervisor._store.query_logs(search="hello-from-talker"))
    assert len(found) == 1
    stderr = await supervisor.query_logs(process="app", instance_id="talker", level="stderr")
    assert [e.message for e in stderr] == ["a line on stderr"]
