"""gzip for large API answers: who gets it, what caches are told, and the loop stays free."""

from __future__ import annotations

import gzip
import os

import pytest
import trio

from tenement.api import http


def scope(accept: str | None) -> dict:
    headers = [] if accept is None else [(b"accept-encoding", accept.encode())]
    return {"type": "http", "headers": headers}


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("*", True),
        ("*;q=0, gzip", True),  # gzip named: its own quality counts, not *'s
        ("gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0000", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("identity", False),
        ("gzip;q=nonsense", False),
        (None, False),
    ],
)
async def test_who_gets_gzip(accept: str | None, gzipped: bool) -> None:
    body = b"x" * (http.COMPRESS_FROM_BYTES + 1)
    answer = await http.compressed(http.Response(200, body, http.JSON), scope(accept))
    assert ((b"content-encoding", b"gzip") in answer.headers) is gzipped
    # a cache must know the answer depends on the header either way
    assert (b"vary", b"accept-encoding") in answer.headers
    assert (gzip.decompress(answer.body) if gzipped else answer.body) == body


async def test_a_small_answer_is_left_alone() -> None:
    response = http.Response(200, b"{}", http.JSON)
    assert await http.compressed(response, scope("gzip")) is response


async def test_a_large_answer_is_compressed_off_the_loop() -> None:
    """A regression: a tenant's log of 167 MB was compressed in the event loop, and
    every other request waited 10 s. Others run while a large body is compressed."""
    body = os.urandom(1024) * (32 * 1024)  # 32 MiB, compressible only so far
    ticks = 0
    done = False

    async def others() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(others)
        await trio.sleep(0)
        answer = await http.compressed(http.Response(200, body, http.JSON), scope("gzip"))
        done = True
    assert gzip.decompress(answer.body) == body
    assert ticks > 100, f"the loop ran {ticks} times while 32 MiB were compressed"
