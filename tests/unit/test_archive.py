"""A tenant's data packed to move it (tenement/server/archive.py): copied as it is, and
an archive that would write outside its directory refused whole."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
from pathlib import Path

import attrs
import pytest

from tenement.server.archive import (
    PIECE_BYTES,
    Incoming,
    Streamed,
    UnsafeArchive,
    pack_into,
    unpack_from,
)


@attrs.frozen
class Packed:
    """An archive written to a file by :func:`pack`, with what the packing told."""

    path: Path
    sha256: str
    size: int
    entries: int


def pack(tree: Path, into: Path) -> Packed:
    """The streamed packing, written to a file (what a move sends, kept to look at)."""
    with into.open("wb") as raw:
        done: Streamed = pack_into(tree, raw.write)
    return Packed(into, done.sha256, done.size, done.entries)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack(archive_path: Path, into: Path) -> int:
    """The streamed unpacking, fed from a file in a move's pieces."""
    with archive_path.open("rb") as source:

        def next_pieces() -> list[bytes]:
            piece = source.read(PIECE_BYTES)
            return [piece] if piece else []

        return unpack_from(Incoming(next_pieces), into)


def test_a_tree_is_copied_as_it_is_links_unfollowed_sockets_left_out(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "sub" / "deeper" / "data.bin").write_bytes(os.urandom(300_000))
    (tree / "empty").mkdir()
    (tree / "plain.txt").write_text("x")
    os.chmod(tree / "plain.txt", 0o640)
    (tree / "in").symlink_to("sub/deeper/data.bin")
    (tree / "out").symlink_to("/etc/passwd")
    (tree / "dangling").symlink_to("../../nowhere")
    os.mkfifo(tree / "fifo")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tree / "app.sock"))
    packed = pack(tree, tmp_path / "t.tar")
    listening.close()
    assert packed.sha256 == file_sha256(tmp_path / "t.tar")
    assert packed.entries == 9  # everything but the socket

    copy = tmp_path / "copy"
    assert unpack(packed.path, copy) == 9
    assert (copy / "sub" / "deeper" / "data.bin").read_bytes() == (
        tree / "sub" / "deeper" / "data.bin"
    ).read_bytes()
    assert os.readlink(copy / "out") == "/etc/passwd"  # a link, not the file it names
    assert os.readlink(copy / "dangling") == "../../nowhere"
    assert os.readlink(copy / "in") == "sub/deeper/data.bin"
    assert (copy / "fifo").is_fifo()
    assert not (copy / "app.sock").exists()
    assert (copy / "empty").is_dir()
    assert (copy / "plain.txt").stat().st_mode & 0o777 == 0o640


def test_a_missing_tree_packs_empty(tmp_path: Path) -> None:
    packed = pack(tmp_path / "none", tmp_path / "t.tar")
    assert packed.entries == 0
    assert unpack(packed.path, tmp_path / "copy") == 0


def _archive(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w") as archive:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _file(name: str, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, b"pwned"


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([_file("../escape")], "outside it"),
        ([_file("/etc/escape")], "outside it"),
        ([_file("a/../../escape")], "outside it"),
        ([_link("l", "/tmp"), _file("l/escape")], "through a link"),
        ([_link("l", ".."), _file("l/escape")], "through a link"),
        ([_file("twice"), _link("twice", "/etc/passwd")], "appears twice"),
        ([_file("x"), _link("h", "/etc/passwd", tarfile.LNKTYPE)], "points outside"),
        ([_link("h", "../outside", tarfile.LNKTYPE)], "points outside"),
    ],
)
def test_an_archive_that_would_write_outside_is_refused_whole(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], why: str
) -> None:
    hostile = _archive(tmp_path / "h.tar", *members)
    with pytest.raises(UnsafeArchive, match=why):
        unpack(hostile, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()  # nothing left of it
    assert not (tmp_path / "escape").exists()


def test_set_uid_bits_are_cleared(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "s.tar", _file("tool", 0o4755))
    unpack(archive, tmp_path / "copy")
    assert (tmp_path / "copy" / "tool").stat().st_mode & 0o7777 == 0o755


def test_what_is_not_a_tar_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(tarfile.TarError):
        unpack(junk, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def _arriving(data: bytes, size: int) -> Incoming:
    """``data`` as it would arrive, in pieces of ``size`` bytes."""
    pieces = iter([[data[i : i + size]] for i in range(0, len(data), size)])
    return Incoming(lambda: next(pieces, []))


def test_an_archive_unpacks_as_it_arrives_in_pieces_of_any_size_hashed_whole(
    tmp_path: Path,
) -> None:
    """The destination of a move unpacks the archive as its pieces arrive: whatever
    their sizes (a hard link and a file of 3 MB, not a multiple of 512, across them),
    the tree is whole, and the sum is of every byte that arrived, the archive's
    padding and anything after it included."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    os.link(tree / "big.bin", tree / "same.bin")
    (tree / "small.txt").write_text("x")
    pieces: list[bytes] = []
    packed = pack_into(tree, pieces.append)
    whole = b"".join(pieces) + b"trailing"
    assert hashlib.sha256(whole[: packed.size]).hexdigest() == packed.sha256
    for size in (511, 4096, 65536, 1024 * 1024 + 3, len(whole)):
        incoming = _arriving(whole, size)
        copy = tmp_path / f"copy-{size}"
        assert unpack_from(incoming, copy) == 3
        assert incoming.sha256() == hashlib.sha256(whole).hexdigest(), size
        assert (copy / "big.bin").read_bytes() == (tree / "big.bin").read_bytes()
        assert (copy / "same.bin").stat().st_ino == (copy / "big.bin").stat().st_ino


def test_a_refused_archive_is_still_read_to_its_end(tmp_path: Path) -> None:
    """So that its sum can tell a damaged transfer from a hostile archive."""
    hostile = _archive(tmp_path / "h.tar", _file("ok"), _file("../escape"))
    data = hostile.read_bytes() + os.urandom(100_000)
    incoming = _arriving(data, 1000)
    with pytest.raises(UnsafeArchive):
        unpack_from(incoming, tmp_path / "copy")
    assert incoming.sha256() == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "copy").exists()
