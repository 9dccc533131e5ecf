"""h1_reader.RequestReader: bytes in, requests out, whatever pieces the bytes come in.

The reader has no I/O, so these feed it directly: every split of a stream of requests
into reads must give the same requests, bodies and refusals as the stream read whole,
and no input may make it raise.
"""

from __future__ import annotations

import itertools

import h11
from hypothesis import given, settings
from hypothesis import strategies as st

from tenement.server.edge import Refusal
from tenement.server.h1_reader import Next, RequestReader
from tenement.wire import INCOMPLETE, WholeRequest

REQUESTS = [
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /d HTTP/1.1\nHost: x\n\n",
    b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    b"GET /f HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    b"GET /g HTTP/3.0\r\nHost: x\r\n\r\n",
    b"POST /h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n",
    b"GET /i HTTP/1.1\r\n\r\n",
]


def read_all(pieces: list[bytes], *, express: bool) -> list[object]:
    """What a driver would see, reading ``pieces`` one after the other: each request as
    (how it was read, method, target, body), each refusal, each hand-off."""
    reader = RequestReader()
    queue = list(pieces)
    seen: list[object] = []

    def more(feed: bool) -> bool:
        if not queue:
            (reader.feed if feed else reader.pend)(b"")
            return False
        (reader.feed if feed else reader.pend)(queue.pop(0))
        return True

    while True:
        if express:
            while True:
                whole = reader.whole_request()
                if isinstance(whole, WholeRequest) or whole is None or reader.eof:
                    break
                assert whole is INCOMPLETE
                more(feed=False)
            if isinstance(whole, WholeRequest):
                seen.append(("request", whole.method, whole.target, whole.body))
                reader.served(whole)
                assert reader.next_cycle(finished=True, skipped_h11=True)
                continue
        reader.to_h11()
        while (head := reader.next_head()) is None:
            more(feed=True)
        if head is Next.CLOSED:
            return seen
        if isinstance(head, Refusal) or head is Next.HAND_OFF:
            seen.append(head)
            return seen
        assert isinstance(head, h11.Request)
        reader.serving()
        body = b""
        while True:
            message = reader.next_body()
            if message is None:
                more(feed=True)
                continue
            assert isinstance(message, dict)
            if message["type"] == "http.disconnect":
                seen.append(("bad body", reader.bad_body is not None))
                return seen
            body += message["body"]
            if not message["more_body"]:
                break
        seen.append(("request", head.method, head.target, body))
        if not reader.next_cycle(finished=True, skipped_h11=True):
            return seen


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(REQUESTS), min_size=1, max_size=4),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    st.booleans(),
)
def test_any_split_of_the_bytes_reads_the_same(
    requests: list[bytes], cuts: list[int], express: bool
) -> None:
    data = b"".join(requests)
    whole = read_all([data], express=express)
    assert read_all(split(data, cuts), express=express) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=6), st.booleans())
def test_no_input_makes_the_reader_raise(data: bytes, cuts: list[int], express: bool) -> None:
    read_all(split(data, cuts), express=express)


def test_the_express_lane_and_h11_read_whole_requests_alike() -> None:
    data = REQUESTS[0] + REQUESTS[1] + REQUESTS[0]
    assert read_all([data], express=True) == read_all([data], express=False)


def test_ambiguous_heads_are_refusals_not_requests() -> None:
    for data, status in [(REQUESTS[4], 400), (REQUESTS[5], 400), (REQUESTS[6], 505)]:
        (refused,) = read_all([data], express=True)
        assert isinstance(refused, Refusal) and refused.status == status
    assert read_all([REQUESTS[7]], express=True)[-1] == ("bad body", True)
    assert read_all([REQUESTS[8]], express=True) == [Next.HAND_OFF]  # no Host: hypercorn's 400
