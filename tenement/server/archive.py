"""A tenant's data directory as one tar file, to move it to another fleet node.

What the tree holds is copied as what it is: a symbolic link stays a link (never
followed, wherever it points), a device file or FIFO stays one; a socket is left out (it
is an endpoint of a process, not data). Unpacking trusts nothing in the file: a name
that is absolute, climbs with ``..``, or would be written through a link out of the
tree is refused, and set-uid/set-gid bits are cleared. Python's own tar filters do the
same from 3.11.4; the packages' Python may be older, so the check is ours.

Blocking: run these in a thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, cast

import attrs

from tenement.errors import TenementError

#: an archive goes out and comes in in pieces of (at least) this size: a piece is one
#: thread hop, one hash update and one write; tarfile's own 16 KiB and 10 KiB made its
#: copying loops the bulk of a move's time
PIECE_BYTES = 1024 * 1024


class UnsafeArchive(TenementError):
    """A member of the archive would land outside the directory it is unpacked into."""


@attrs.frozen
class Streamed:
    """An archive that went by as a stream: its SHA-256 (hex), size and entries."""

    sha256: str
    size: int
    entries: int


def pack_into(tree: Path, write: Callable[[bytes], object]) -> Streamed:
    """Pack ``tree`` (which may be missing: an empty archive), handing the archive to
    ``write`` in pieces of at least :data:`PIECE_BYTES` (the last may be smaller), hashed
    on the way (one pass over the data)."""
    out = _Out(write)
    with tarfile.open(
        fileobj=cast(IO[bytes], out),
        mode="w",
        format=tarfile.PAX_FORMAT,
        **_PIECES,
    ) as archive:
        entries = _add_tree(archive, tree)
    out.flush()
    return Streamed(out.digest.hexdigest(), out.size, entries)


def _add_tree(archive: tarfile.TarFile, tree: Path) -> int:
    """Add what ``tree`` holds to ``archive``, sockets left out; the number of entries."""
    entries = 0
    if not tree.is_dir():
        return entries
    for top, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = Path(top) / name
            if stat.S_ISSOCK(path.lstat().st_mode):
                continue
            info = archive.gettarinfo(str(path), str(path.relative_to(tree)))
            entries += 1
            if info.isreg():
                with path.open("rb") as data:
                    archive.addfile(info, data)
            else:
                archive.addfile(info)
    return entries


class _Out:
    """Where tarfile writes: gathered into pieces, hashed, handed on (one pass)."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._pending = bytearray()
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if not self._pending and len(data) >= PIECE_BYTES:
            self._hand_on(data)  # a file's piece as tarfile read it: no copy
        else:
            self._pending += data
            if len(self._pending) >= PIECE_BYTES:
                self.flush()
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if self._pending:
            piece = bytes(self._pending)
            self._pending.clear()
            self._hand_on(piece)

    def _hand_on(self, piece: bytes) -> None:
        self.digest.update(piece)
        self._write(piece)


class Incoming:
    """An archive arriving in pieces (``next_pieces`` returns some, none at its end),
    read by tarfile front to back and hashed as it goes, whole: :meth:`drain` takes in
    what tarfile left (the archive's padding, or all that follows a refused member), so
    that the sum is of everything that arrived and a damaged transfer is told from a
    hostile archive. It seeks forward only (tarfile skips padding so); tarfile's own
    stream mode ("r|") copied every piece four times over through its buffer."""

    def __init__(self, next_pieces: Callable[[], Sequence[bytes]]) -> None:
        self._next = next_pieces
        self._pieces: deque[memoryview] = deque()
        self._digest = hashlib.sha256()
        self._ended = False
        #: bytes that arrived; bytes tarfile took (its position)
        self.size = 0
        self._taken = 0

    def _more(self) -> bool:
        while not self._ended:
            pieces = self._next()
            if not pieces:
                self._ended = True
                break
            for piece in pieces:
                self._digest.update(piece)
                self.size += len(piece)
                self._pieces.append(memoryview(piece))
            return True
        return False

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = PIECE_BYTES
        parts: list[memoryview] = []
        want = size
        while want:
            if not self._pieces and not self._more():
                break
            head = self._pieces[0]
            if len(head) <= want:
                parts.append(self._pieces.popleft())
                want -= len(head)
            else:
                parts.append(head[:want])
                self._pieces[0] = head[want:]
                want = 0
        self._taken += size - want
        return b"".join(parts)

    def tell(self) -> int:
        return self._taken

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self._taken:
            raise tarfile.ReadError(
                f"the archive would be read again from byte {offset} (as a hard link whose "
                "target cannot be linked is): it is read once, as it arrives"
            )
        while self._taken < offset and self.read(min(offset - self._taken, PIECE_BYTES)):
            pass
        return self._taken

    def drain(self) -> None:
        self._pieces.clear()
        while self._more():
            self._pieces.clear()

    def sha256(self) -> str:
        return self._digest.hexdigest()


def unpack_from(incoming: Incoming, into: Path) -> int:
    """Unpack the archive as it arrives into the new directory ``into``; the number of
    entries. It is read to its end, even when refused (:meth:`Incoming.drain`).

    Raises:
        UnsafeArchive: a member would land outside ``into`` (nothing is left of it).
        tarfile.TarError: the bytes are not a tar archive.
    """
    into.mkdir(mode=0o700)
    root = os.path.realpath(into)
    entries = 0
    try:
        # read once, front to back, as the pieces come (Incoming seeks forward only)
        with tarfile.TarFile(
            fileobj=cast(IO[bytes], incoming), mode="r", copybufsize=PIECE_BYTES
        ) as archive:
            for member in archive:
                _check(member, root)
                member.mode &= ~(stat.S_ISUID | stat.S_ISGID)
                archive.extract(member, root, set_attrs=True, **_NO_FILTER)
                entries += 1
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise
    finally:
        incoming.drain()
    return entries


def _check(member: tarfile.TarInfo, root: str) -> None:
    name = member.name
    if os.path.isabs(name) or ".." in Path(name).parts or not name.strip("./"):
        raise UnsafeArchive(f"refused the archive: member {name!r} names a path outside it")
    # the parent as it is on disk now: a link unpacked before must not lead out
    parent = os.path.realpath(os.path.join(root, os.path.dirname(name)))
    if os.path.commonpath([root, parent]) != root:
        raise UnsafeArchive(
            f"refused the archive: member {name!r} would be written through a link out of it"
        )
    if os.path.lexists(os.path.join(root, name)):
        # written twice: the second could go through a link the first made
        raise UnsafeArchive(f"refused the archive: member {name!r} appears twice")
    if member.islnk():
        target = os.path.realpath(os.path.join(root, member.linkname))
        if os.path.isabs(member.linkname) or os.path.commonpath([root, target]) != root:
            raise UnsafeArchive(
                f"refused the archive: hard link {name!r} points outside it ({member.linkname!r})"
            )


# files are copied into and out of the archive a piece at a time (tarfile's own
# argument, missing from its typing)
_PIECES: dict[str, Any] = {"copybufsize": PIECE_BYTES}

# our check above is the filter; tell Pythons that have filters not to add theirs
_NO_FILTER: dict[str, Any] = {"filter": "fully_trusted"} if hasattr(tarfile, "tar_filter") else {}
