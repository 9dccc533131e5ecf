"""The log tailer against real files and a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import trio

from tenement.store import Store
from tenement.supervisor.logtail import LogSource, LogTailer


def _source(path: Path, level: str = "stdout") -> LogSource:
    return LogSource(str(path), level, "notes", "alice")


def _messages(store: Store) -> list[str]:
    return [entry.message for entry in store.query_logs(process="notes")]


async def test_complete_lines_are_indexed_once(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "alice.stdout.log"
    path.write_bytes(b"one\ntwo\nthr")
    tailer = LogTailer(store)
    tailer.watch(_source(path))
    assert await tailer.poll_once() == 2
    assert await tailer.poll_once() == 0
    with path.open("ab") as f:
        f.write(b"ee\n")
    assert await tailer.poll_once() == 1
    assert _messages(store) == ["one", "two", "three"]
    entry = store.query_logs(process="notes")[0]
    assert (entry.level, entry.instance_id) == ("stdout", "alice")


async def test_a_new_tailer_resumes_at_the_saved_offset(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "alice.stdout.log"
    path.write_bytes(b"before\n")
    first = LogTailer(store)
    first.watch(_source(path))
    await first.poll_once()
    with path.open("ab") as f:
        f.write(b"while nobody watched\n")
    second = LogTailer(store)
    second.watch(_source(path))
    assert await second.poll_once() == 1
    assert _messages(store) == ["before", "while nobody watched"]


async def test_truncated_or_replaced_file_is_read_from_the_start(
    tmp_path: Path, store: Store
) -> None:
    path = tmp_path / "alice.stderr.log"
    path.write_bytes(b"a long first line\n")
    tailer = LogTailer(store)
    tailer.watch(_source(path, "stderr"))
    await tailer.poll_once()
    path.write_bytes(b"x\n")  # truncated in place: shorter than the offset
    await tailer.poll_once()
    path.rename(tmp_path / "moved-away.log")  # still exists: its inode cannot be reused
    path.write_bytes(b"new file, same name, long enough\n")  # another inode
    await tailer.poll_once()
    assert _messages(store) == ["a long first line", "x", "new file, same name, long enough"]


async def test_rotation_keeps_one_old_generation(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "alice.stdout.log"
    tailer = LogTailer(store, max_file_bytes=10)
    tailer.watch(_source(path))
    path.write_bytes(b"0123456789abc\n")
    await tailer.poll_once()
    assert path.stat().st_size == 0
    assert (tmp_path / "alice.stdout.log.1").read_bytes() == b"0123456789abc\n"
    with path.open("ab") as f:
        f.write(b"after\n")
    await tailer.poll_once()
    assert _messages(store) == ["0123456789abc", "after"]
    assert tailer.statistics().rotations == 1


async def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "alice.stdout.log"
    path.write_bytes(b"bad \xff byte\nnext\r\n")
    tailer = LogTailer(store)
    tailer.watch(_source(path))
    await tailer.poll_once()
    assert _messages(store) == ["bad \ufffd byte", "next"]


async def test_missing_file_is_waited_for(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "later.log"
    tailer = LogTailer(store)
    tailer.watch(_source(path))
    assert await tailer.poll_once() == 0
    path.write_bytes(b"hello\n")
    assert await tailer.poll_once() == 1


async def test_subscribers_get_new_entries_and_a_slow_one_drops(
    tmp_path: Path, store: Store
) -> None:
    path = tmp_path / "alice.stdout.log"
    tailer = LogTailer(store, subscriber_buffer=2)
    tailer.watch(_source(path))
    feed = tailer.subscribe()
    closed = tailer.subscribe()
    await closed.aclose()
    path.write_bytes(b"1\n2\n3\n")
    with trio.fail_after(5):
        await tailer.poll_once()  # never blocks although the feed holds only 2
    assert [feed.receive_nowait().message for _ in range(2)] == ["1", "2"]
    stats = tailer.statistics()
    assert (stats.entries_dropped, stats.subscribers, stats.entries_indexed) == (1, 1, 3)


async def test_serve_polls_in_the_background(
    tmp_path: Path, store: Store, nursery: trio.Nursery
) -> None:
    path = tmp_path / "alice.stdout.log"
    tailer = LogTailer(store, poll_seconds=0.01)
    tailer.watch(_source(path))
    feed = tailer.subscribe()
    await nursery.start(tailer.serve)
    path.write_bytes(b"live\n")
    with trio.fail_after(5):
        assert (await feed.receive()).message == "live"
    nursery.cancel_scope.cancel()
