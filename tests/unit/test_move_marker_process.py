"""A stateless move's marker records the tenant's process left running during the
overlap (``server/move_journal.py``): read back whole, and stopped only while it is
still that process. And the proxy's holds count what they held (``proxy/moves.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio
import trio.testing

from tenement.proxy.moves import Moves
from tenement.server.move_journal import LeftProcess, read_markers, write_marker
from tenement.supervisor.procfs import read_start_ticks

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def started() -> tuple[subprocess.Popen[bytes], LeftProcess]:
    child = subprocess.Popen(SLEEPER, start_new_session=True)
    ticks = read_start_ticks(child.pid)
    assert ticks is not None
    return child, LeftProcess(child.pid, ticks)


async def test_the_marker_keeps_the_process_and_recover_stops_only_that_one(
    tmp_path: Path,
) -> None:
    child, left = started()
    try:
        write_marker(tmp_path, "web:carol", "b", running=False, tenant=left)
        write_marker(tmp_path, "echo:alice", "b", running=True)
        markers = {m.instance_id: m for m in read_markers(tmp_path)}
        assert markers["web:carol"].tenant == left
        assert markers["echo:alice"].tenant is None  # a persisted move's: as before
        # another process with that pid (a later start time) is never signalled
        other = LeftProcess(left.pid, left.ticks + 1)
        assert not other.alive()
        assert await other.stop() is False
        assert child.poll() is None
        assert left.alive()
        assert await left.stop() is True
        with trio.fail_after(10):
            while child.poll() is None:
                await trio.sleep(0.02)
        assert not left.alive()
        assert await left.stop() is False  # gone: nothing to do
    finally:
        child.kill()
        child.wait()


async def test_holds_are_counted_per_move_and_an_arriving_tenant_is_sent_back() -> None:
    moves = Moves()
    moves.begin("echo:alice")
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(moves.hold, "echo:alice", 10.0)
        await trio.testing.wait_all_tasks_blocked()
        assert moves.end("echo:alice", moved=True) == 3
    assert moves.end("web:carol", moved=True) == 0  # a stateless move: nothing held
    assert moves.moved_recently("web:carol")
    moves.arrive("web:carol", "a", 30.0)
    assert moves.arriving_from("web:carol") == "a"
    moves.arrive("web:dave", "a", -1.0)  # its wait is over: served here
    assert moves.arriving_from("web:dave") is None
    assert moves.arriving_from("web:eve") is None
