"""A tenant that answers badly (hostile_tenant.py): bad framing, huge or broken heads,
garbage, a close mid-body, no answer at all. Whatever it does, the client that asked gets
502 or 504 (or, once the head went out, a response cut short: never a silent short one),
and the server and every other client are fine."""

from __future__ import annotations

import pytest
import trio

from tests.integration.adversary.adversary_support import (
    HOSTILE_HOST,
    REC_HOST,
    LiveServe,
    exchange,
)

#: answers no HTTP/1.1 recipient may take: 502
REFUSED = [
    "/cl-te",
    "/two-cl",
    "/cl-list",
    "/cl-negative",
    "/cl-plus",
    "/te-gzip",
    "/huge-head",
    "/many-headers",
    "/garbage",
    "/bad-status",
    "/http09",
    "/header-injection",
    "/nul-header",
    "/space-before-colon",
    "/close-now",
]
#: the head went out before the tenant broke off: the client's response is cut short
CUT = ["/close-mid-body", "/close-mid-chunk", "/bad-chunk"]
#: request_timeout of the hostile service
HOSTILE_TIMEOUT = 2


def request(path: str, host: str = HOSTILE_HOST) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


@pytest.mark.parametrize("path", REFUSED)
async def test_a_bad_answer_is_502(serve: LiveServe, path: str) -> None:
    result = await exchange(serve.port, request(path), seconds=HOSTILE_TIMEOUT + 8, responses=1)
    assert result.statuses == [502], result
    assert b"evil" not in result.data, "a header the tenant injected reached the client"
    await serve.assert_serving()


@pytest.mark.parametrize("path", CUT)
async def test_a_body_broken_off_is_cut_short_not_completed(serve: LiveServe, path: str) -> None:
    result = await exchange(serve.port, request(path), seconds=HOSTILE_TIMEOUT + 8)
    assert result.closed, "the client must see the connection end"
    responses = result.responses
    assert responses, "closed with no answer: nothing was sent yet, so it must be 502"
    if responses[0].status == 200:
        assert responses[0].truncated, f"a broken body was passed on as whole: {result}"
    else:
        assert responses[0].status == 502, result
    await serve.assert_serving()


async def test_no_answer_is_504(serve: LiveServe) -> None:
    with trio.fail_after(HOSTILE_TIMEOUT + 15):
        result = await exchange(
            serve.port, request("/never"), seconds=HOSTILE_TIMEOUT + 12, responses=1
        )
    assert result.statuses == [504], result
    await serve.assert_serving()


async def test_a_body_that_stalls_is_streamed_and_stalls_no_one_else(serve: LiveServe) -> None:
    """No deadline applies once the head is in (a tenant may stream for as long as it
    likes: server-sent events, long polls): the client has what came, and others are
    served meanwhile."""
    async with await trio.open_tcp_stream("127.0.0.1", serve.port) as stream:
        await stream.send_all(request("/head-then-never"))
        received = b""
        with trio.fail_after(HOSTILE_TIMEOUT + 10):
            while not received.endswith(b"abc"):
                received += await stream.receive_some(65536)
        assert received.startswith(b"HTTP/1.1 200 "), received
        await serve.assert_serving()


async def test_every_misbehaviour_at_once_leaves_other_clients_served(serve: LiveServe) -> None:
    """All the hostile answers at the same time, and meanwhile well-formed clients of the
    other tenant are served one after another."""
    async with trio.open_nursery() as nursery:
        for path in [*REFUSED, *CUT, "/never"]:
            nursery.start_soon(exchange, serve.port, request(path))
        for _ in range(10):
            result = await exchange(serve.port, request("/fine", REC_HOST), responses=1)
            assert result.statuses == [200], result
    await serve.assert_serving()
    result = await exchange(serve.port, request("/fine"), responses=1)
    assert result.statuses == [200] and result.responses[0].body == b"fine", result
