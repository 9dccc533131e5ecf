"""wait_accepting: returns once a real listener accepts; keeps polling until then."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from tenement.supervisor.readiness import accepting, wait_accepting


def bound_socket() -> socket.socket:
    """A socket holding a port of its own; it refuses connections until it listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def test_tcp_waits_until_the_port_listens(nursery: trio.Nursery) -> None:
    listener = bound_socket()
    port = listener.getsockname()[1]
    assert not await accepting(port, None)
    listening = trio.Event()

    async def listen_later() -> None:
        await trio.sleep(0.05)
        listener.listen()
        listening.set()

    nursery.start_soon(listen_later)
    try:
        with trio.fail_after(10):
            await wait_accepting(port, None)
        assert listening.is_set()
    finally:
        listener.close()


async def test_a_stale_socket_file_is_not_ready(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # the file exists, nobody listens
    try:
        with trio.move_on_after(0.05) as scope:
            await wait_accepting(None, path)
        assert scope.cancelled_caught
        stale.listen()
        with trio.fail_after(10):
            await wait_accepting(None, path)
    finally:
        stale.close()


async def test_a_missing_socket_file_is_not_ready(tmp_path: Path) -> None:
    assert not await accepting(None, str(tmp_path / "none.sock"))


async def test_the_port_wins_over_the_socket(tmp_path: Path) -> None:
    # the reference's rule: with a port, the TCP port is what is checked
    path = str(tmp_path / "app.sock")
    with socket.socket(socket.AF_UNIX) as unix, bound_socket() as refusing:
        unix.bind(path)
        unix.listen()
        assert not await accepting(refusing.getsockname()[1], path)


async def test_neither_port_nor_socket_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="needs a port or a socket path"):
        await wait_accepting(None, None)
