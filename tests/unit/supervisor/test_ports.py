"""PortAllocator: next-fit with wrap-around over a range, skipping ports in use."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest

from tenement.supervisor.ports import PortAllocator, PortsExhausted, port_is_free


def free_block(size: int) -> int:
    """The first port of ``size`` consecutive free ports in 30000-40000."""
    start = 30000
    while start + size <= 40000:
        if all(port_is_free(p) for p in range(start, start + size)):
            return start
        start += size
    pytest.skip("no block of free ports")


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def hold(port: int, held: list[socket.socket], *, listen: bool = True) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    if listen:
        sock.listen()
    held.append(sock)


def test_next_fit_wraps_around_and_reuses_released_ports() -> None:
    low = free_block(3)
    ports = PortAllocator(low, low + 2)
    assert [ports.allocate() for _ in range(3)] == [low, low + 1, low + 2]
    ports.release(low + 1)
    assert ports.allocate() == low + 1
    ports.release(low)
    ports.release(low + 2)
    # next-fit: continues after the last one handed out, wrapping around
    assert ports.allocate() == low + 2
    assert ports.allocate() == low


def test_a_port_in_use_by_another_process_is_skipped(held: list[socket.socket]) -> None:
    low = free_block(3)
    hold(low, held)
    hold(low + 1, held, listen=False)  # merely bound counts as taken too
    ports = PortAllocator(low, low + 2)
    assert ports.allocate() == low + 2
    assert ports.allocated == {low + 2}


def test_exhaustion_message_matches_the_reference(held: list[socket.socket]) -> None:
    low = free_block(3)
    hold(low + 1, held)
    ports = PortAllocator(low, low + 2)
    ports.allocate()
    ports.allocate()
    with pytest.raises(PortsExhausted) as caught:
        ports.allocate()
    assert str(caught.value) == (
        f"No free ports available in range {low}-{low + 2}. 2 ports allocated."
    )


def test_reserved_ports_are_not_handed_out_until_released() -> None:
    low = free_block(2)
    ports = PortAllocator(low, low + 1)
    ports.reserve(low)
    assert ports.allocate() == low + 1
    with pytest.raises(PortsExhausted):
        ports.allocate()
    ports.release(low)
    ports.release(None)
    assert ports.allocate() == low


def test_default_range_is_the_reference_range() -> None:
    ports = PortAllocator()
    assert (ports.low, ports.high) == (30000, 40000)
    assert 30000 <= ports.allocate() <= 40000


def test_bad_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="bad port range"):
        PortAllocator(40000, 30000)


def test_a_retry_after_a_collision_leaves_the_walk_both_allocators_share(
    held: list[socket.socket],
) -> None:
    """Two tenements on one host walk the range alike: when the other's tenant took the
    port ours was given, next-fit would hand both the same next port again."""
    low = free_block(200)
    ours = PortAllocator(low, low + 199, rng=random.Random(7))
    theirs = PortAllocator(low, low + 199)
    given = ours.allocate()
    assert theirs.allocate() == given
    hold(given, held)  # their tenant bound it first; ours exits at once
    ours.scatter()
    retry = ours.allocate()
    assert retry != theirs.allocate()
    assert low <= retry <= low + 199 and retry != given
