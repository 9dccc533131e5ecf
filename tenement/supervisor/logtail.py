"""The log tailer: instances' log files -> the ``logs`` table, and a live feed.

Tenants write stdout and stderr straight to append-only files under ``{data_dir}/logs/``
(never through a pipe to the server, so they outlive it). The tailer polls those files,
inserts complete lines together with the new file offsets in one transaction, and
publishes them to live subscribers. Offsets are per path and inode: after a restart or an
adoption, tailing resumes exactly where it stopped; nothing is lost or indexed twice.

Rotation by size: once a file is fully indexed and larger than ``max_file_bytes``, it is
copied to ``<path>.1`` and truncated in place (the tenant keeps its O_APPEND descriptor and
continues at offset 0). Bytes written between the last read and the truncation, a window of
microseconds, are not indexed. A file whose inode changed or that shrank is read from 0.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping

import attrs
import trio

from tenement.store import LogEntry, Store

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: the most read from one file in one pass, so one chatty tenant cannot starve the others
READ_CHUNK_BYTES = 1 * MIB
#: a line longer than this is cut and indexed in pieces
MAX_LINE_BYTES = 64 * 1024


@attrs.frozen
class LogSource:
    """One log file and whose output it holds."""

    path: str
    level: str
    process: str
    tenant: str


@attrs.frozen
class TailerStatistics:
    files: int
    entries_indexed: int
    entries_dropped: int
    subscribers: int
    rotations: int


@attrs.define
class _FileState:
    source: LogSource
    inode: int | None = None
    offset: int = 0
    loaded: bool = False


class LogTailer:
    """Indexes log files into the store and feeds live subscribers.

    Args:
        store: the :class:`~tenement.store.Store`.
        poll_seconds: the pause between passes when nothing new came in.
        busy_poll_seconds: the pause when the last pass found data.
        max_file_bytes: rotate a file past this size (0 = never).
        subscriber_buffer: entries a subscriber may lag behind before it misses some.
    """

    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float = 0.25,
        busy_poll_seconds: float = 0.02,
        max_file_bytes: int = 10 * MIB,
        subscriber_buffer: int = 1024,
    ) -> None:
        self._store = store
        self._poll_seconds = poll_seconds
        self._busy_poll_seconds = busy_poll_seconds
        self._max_file_bytes = max_file_bytes
        self._subscriber_buffer = subscriber_buffer
        self._files: dict[str, _FileState] = {}
        self._subscribers: list[trio.MemorySendChannel[LogEntry]] = []
        self._lock = trio.Lock()
        self._wakeup = trio.Event()
        self._indexed = 0
        self._dropped = 0
        self._rotations = 0

    def watch(self, source: LogSource) -> None:
        """Tail ``source.path`` from its saved offset (or its start). Idempotent."""
        if source.path not in self._files:
            self._files[source.path] = _FileState(source)

    def kick(self) -> None:
        """Ask for a pass now (e.g. an instance just exited or was stopped)."""
        self._wakeup.set()

    def subscribe(self) -> trio.MemoryReceiveChannel[LogEntry]:
        """A live feed of new entries. Close the channel to unsubscribe.

        A subscriber more than ``subscriber_buffer`` entries behind misses entries; it never
        slows the tailer down.
        """
        send, receive = trio.open_memory_channel[LogEntry](self._subscriber_buffer)
        self._subscribers.append(send)
        return receive

    def statistics(self) -> TailerStatistics:
        return TailerStatistics(
            files=len(self._files),
            entries_indexed=self._indexed,
            entries_dropped=self._dropped,
            subscribers=len(self._subscribers),
            rotations=self._rotations,
        )

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled."""
        task_status.started()
        while True:
            found = await self.poll_once()
            self._wakeup = trio.Event()
            with trio.move_on_after(self._busy_poll_seconds if found else self._poll_seconds):
                await self._wakeup.wait()

    async def poll_once(self) -> int:
        """One pass over every file: index what is new. Returns the entries indexed."""
        async with self._lock:
            return await self._poll_locked()

    async def _poll_locked(self) -> int:
        states = list(self._files.values())
        unloaded = [s for s in states if not s.loaded]
        if unloaded:
            with self._store.outage.tolerated("log offsets"):
                saved = await self._store.run(
                    _load_offsets, self._store, [s.source.path for s in unloaded]
                )
                for state in unloaded:
                    if saved.get(state.source.path) is not None:
                        state.inode, state.offset = saved[state.source.path]
                    state.loaded = True
            if not all(state.loaded for state in unloaded):
                return 0  # a file is read from its saved offset, or not at all
        reads = await trio.to_thread.run_sync(
            _read_all, [(s.source, s.inode, s.offset) for s in states]
        )
        entries: list[LogEntry] = []
        offsets: dict[str, tuple[int, int]] = {}
        for state, (inode, offset, lines) in zip(states, reads, strict=True):
            if inode is None or (inode == state.inode and offset == state.offset):
                continue
            offsets[state.source.path] = (inode, offset)
            entries.extend(_entries(state.source, lines))
        if offsets:
            with self._store.outage.tolerated("log lines"):
                await self._store.run(_insert, self._store, entries, offsets)
                for path, (inode, offset) in offsets.items():
                    self._files[path].inode, self._files[path].offset = inode, offset
                self._indexed += len(entries)
                self._publish(entries)
        await self._rotate_full(states)
        return len(entries)

    async def _rotate_full(self, states: list[_FileState]) -> None:
        if self._max_file_bytes <= 0:
            return
        full = [s for s in states if s.inode is not None and s.offset > self._max_file_bytes]
        for state in full:
            rotated = await trio.to_thread.run_sync(_rotate, state.source.path, state.offset)
            if rotated:
                self._rotations += 1
                # the file is empty now whatever the database says: a saved offset past
                # its end is read as a rotation again, from 0
                state.offset = 0
                with self._store.outage.tolerated("log offsets"):
                    await self._store.run(
                        _save_offsets, self._store, {state.source.path: (state.inode, 0)}
                    )

    def _publish(self, entries: list[LogEntry]) -> None:
        if not entries or not self._subscribers:
            return
        alive = []
        for channel in self._subscribers:
            try:
                for entry in entries:
                    try:
                        channel.send_nowait(entry)
                    except trio.WouldBlock:
                        self._dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue
            alive.append(channel)
        self._subscribers = alive


def _load_offsets(store: Store, paths: list[str]) -> dict[str, tuple[int, int]]:
    return store.log_offsets(paths)


def _insert(store: Store, entries: list[LogEntry], offsets: Mapping[str, tuple[int, int]]) -> None:
    store.insert_logs(entries, offsets)


def _save_offsets(store: Store, offsets: Mapping[str, tuple[int, int]]) -> None:
    store.save_log_offsets(offsets)


def _read_all(
    items: list[tuple[LogSource, int | None, int]],
) -> list[tuple[int | None, int, list[bytes]]]:
    return [_read_new(source.path, inode, offset) for source, inode, offset in items]


def _read_new(path: str, inode: int | None, offset: int) -> tuple[int | None, int, list[bytes]]:
    """Complete lines after ``offset`` -> (inode, new offset, lines); inode None if missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, offset, []
    if st.st_ino == inode and st.st_size == offset:
        return inode, offset, []  # the common case: nothing new, no open()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, offset, []
    try:
        st = os.fstat(fd)
        if st.st_ino != inode or st.st_size < offset:
            offset = 0  # a new file at this path, or truncated behind our back
        if st.st_size == offset:
            return st.st_ino, offset, []
        data = os.pread(fd, min(READ_CHUNK_BYTES, st.st_size - offset), offset)
    finally:
        os.close(fd)
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) < MAX_LINE_BYTES:
        return st.st_ino, offset, []  # an incomplete line: wait for the rest
    if end == 0:
        end = len(data)
    lines = data[:end].splitlines()
    pieces: list[bytes] = []
    for line in lines:
        pieces.extend(
            line[i : i + MAX_LINE_BYTES] for i in range(0, max(len(line), 1), MAX_LINE_BYTES)
        )
    return st.st_ino, offset + end, pieces


def _entries(source: LogSource, lines: list[bytes]) -> list[LogEntry]:
    now_ms = int(time.time() * 1000)
    return [
        LogEntry(
            timestamp_ms=now_ms,
            level=source.level,
            process=source.process,
            instance_id=source.tenant,
            message=line.decode("utf-8", errors="replace").rstrip("\r"),
        )
        for line in lines
    ]


def _rotate(path: str, indexed: int) -> bool:
    """Copy ``path`` to ``path.1`` and truncate it, if nothing new came in since ``indexed``."""
    try:
        if os.stat(path).st_size != indexed:
            return False
        shutil.copyfile(path, path + ".1")
        os.truncate(path, 0)
    except FileNotFoundError:
        return False
    log.info("rotated log file %s (%d bytes)", path, indexed)
    return True
