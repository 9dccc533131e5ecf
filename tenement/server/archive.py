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
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import attrs

from tenement.errors import TenementError

#: the file is read back in pieces of this size to be hashed
_HASH_CHUNK = 1024 * 1024


class UnsafeArchive(TenementError):
    """A member of the archive would land outside the directory it is unpacked into."""


@attrs.frozen
class Packed:
    """A tree packed into ``path``: its SHA-256 (hex), size and number of entries."""

    path: Path
    sha256: str
    size: int
    entries: int


def pack(tree: Path, into: Path) -> Packed:
    """Write ``tree`` (which may be missing: an empty archive) into the tar file ``into``,
    hashing it as it is written (one pass over the data)."""
    with into.open("wb") as raw:
        hashing = _Hashing(raw)
        with tarfile.open(
            fileobj=cast(IO[bytes], hashing), mode="w", format=tarfile.PAX_FORMAT
        ) as archive:
            entries = _add_tree(archive, tree)
    return Packed(into, hashing.digest.hexdigest(), into.stat().st_size, entries)


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


class _Hashing:
    """A file being written that hashes what goes into it (one pass over the data)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.raw.write(data)

    def tell(self) -> int:
        return self.raw.tell()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def unpack(archive_path: Path, into: Path) -> int:
    """Unpack ``archive_path`` into the new directory ``into``; the number of entries.

    Raises:
        UnsafeArchive: a member would land outside ``into`` (nothing is left of it).
        tarfile.TarError: the file is not a tar archive.
    """
    into.mkdir(mode=0o700)
    root = os.path.realpath(into)
    entries = 0
    try:
        with tarfile.open(archive_path, "r:") as archive:
            for member in archive:
                _check(member, root)
                member.mode &= ~(stat.S_ISUID | stat.S_ISGID)
                archive.extract(member, root, set_attrs=True, **_NO_FILTER)
                entries += 1
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise
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


# our check above is the filter; tell Pythons that have filters not to add theirs
_NO_FILTER: dict[str, Any] = {"filter": "fully_trusted"} if hasattr(tarfile, "tar_filter") else {}
